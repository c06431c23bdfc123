/**
 * `ams`: Azure Media Services v2 REST (docs/providers.md#ams). Tree: `<asset Name>/<file Name>`, two levels,
 * assets flat. Reads go through SAS locators on the asset's storage container (locators.ts).
 *
 * Refs (ids only, never names): '' the root; `<asset Id>/` an asset; `<asset Id>/<file Id>` a file.
 * Version of a file: its ContentChecksum when the platform gives one, else `Id:ContentFileSize:LastModified`.
 * Auth: a static bearer `token`, or Azure AD client credentials (`tokenUrl`, `clientId`, `clientSecret`,
 * `resource`) through a TokenSession (one login at a time, reused until near expiry, again on 401).
 * Files whose bytes are storage-encrypted are listed but unreadable (EACCES): storage holds ciphertext.
 * Uploads, mkdir, rmdir, rename (assets) and remove: upload.ts, through `uploader()` unless readOnly.
 */
import type { ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../core/types.js';
import { AuthError, FsError, NotFoundError, StaleError, UnavailableError } from '../../core/errors.js';
import type { SourceConfigOf } from '../../config/schema.js';
import type { Logger } from '../../util/logger.js';
import { ApiClient, TokenSession, type ApiMeter, type Authenticator } from '../common/api-client.js';
import { DEFAULT_BOUNDS, type NetBounds } from '../../transports/bounds.js';
import type { ListingLimits } from '../common/paging.js';
import { LocatorPool } from './locators.js';
import { AMS_MAX_PAGE, AmsRest, fileVersion, keyed, parseEntity, toAsset, toFile, type AmsAsset, type AmsFile } from './rest.js';
import { AmsUploader } from './upload.js';
import { EntryNumbers } from '../common/entry-numbers.js';

export interface AmsProviderDeps {
  log: Logger;
  /** Timeouts, deadline and answer cap of every call (retry.* in the config). Default DEFAULT_BOUNDS. */
  net?: NetBounds;
  /** Counts API requests (assetfs_origin_requests_total{kind="api"}). */
  meter?: ApiMeter;
  /** Entities per listing page (AMS returns at most 1000). */
  listPageSize?: number;
  /** Bounds of every listing (config `listing`). */
  listing?: ListingLimits;
}

const ROOT: RemoteEntry = { name: '', kind: 'dir', ref: '', size: 0, mtimeMs: 0, version: '' };
const ID = /^nb:cid:UUID:[0-9a-fA-F-]{36}$/;
/** Asset `State` values (2, Deleted, is never shown). */
const STATES: Record<number, string> = { 0: 'Initialized', 1: 'Published', 2: 'Deleted' };

/** `ref` → its asset and file ids; undefined when it is not one of our refs. */
export function parseRef(ref: Ref): { asset: string; file?: string } | undefined {
  const slash = ref.indexOf('/');
  if (slash < 0) return undefined;
  const asset = ref.slice(0, slash);
  const file = ref.slice(slash + 1);
  if (!ID.test(asset) || (file !== '' && !ID.test(file))) return undefined;
  return file ? { asset, file } : { asset };
}

export { fileVersion };

export class AmsProvider implements Provider {
  readonly type = 'ams';
  readonly name: string;
  readonly caps: { upload: boolean };
  /** The OData client; the upload engine reuses it (and its session). */
  readonly rest: AmsRest;
  private readonly api: ApiClient;
  private readonly locators: LocatorPool;
  private readonly pageSize: number;
  private readonly log: Logger;
  private readonly numbers: EntryNumbers;
  private readonly net: NetBounds;
  private readonly listing: ListingLimits | undefined;
  private up: AmsUploader | undefined;
  /** Ids of the assets the last complete root listing showed: byId() asks Assets, not Files, for them. */
  private assetIds = new Set<string>();

  constructor(
    private readonly cfg: SourceConfigOf<'ams'>,
    deps: AmsProviderDeps,
  ) {
    this.name = cfg.name;
    this.caps = { upload: !cfg.readOnly };
    this.log = deps.log.child({ c: 'ams', source: cfg.name });
    this.listing = deps.listing;
    const what = `ams source "${cfg.name}"`;
    this.numbers = new EntryNumbers({ log: this.log, what });
    this.net = deps.net ?? DEFAULT_BOUNDS;
    this.api = new ApiClient({ baseUrl: cfg.restUrl, what, auth: this.authenticator(what), bounds: this.net, meter: deps.meter });
    this.rest = new AmsRest(this.api, cfg.restUrl);
    this.pageSize = Math.min(AMS_MAX_PAGE, deps.listPageSize ?? AMS_MAX_PAGE);
    this.locators = new LocatorPool(this.rest, { ttlMs: cfg.urlTtl, log: this.log, what });
  }

  private authenticator(what: string): Authenticator {
    const { token, tokenUrl, clientId, clientSecret, resource } = this.cfg;
    if (tokenUrl && clientId && clientSecret) {
      return new TokenSession(async (signal) => {
        const form = { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, resource };
        const r = await this.api.json<{ access_token?: string; expires_in?: string | number }>({ method: 'POST', path: tokenUrl, form, login: true, signal });
        if (!r?.access_token) throw new AuthError(`${what}: the token endpoint answered without an access_token`);
        const secs = Number(r.expires_in);
        return { token: r.access_token, expiresInMs: Number.isFinite(secs) && secs > 0 ? secs * 1000 : undefined };
      }, (t) => ({ authorization: `Bearer ${t}` }));
    }
    if (token) return { headers: async () => ({ authorization: `Bearer ${token}` }), invalidate: () => undefined };
    throw new FsError('EINVAL', `${what}: needs either token, or tokenUrl with clientId and clientSecret`);
  }

  async *list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry> {
    if (dir === '') {
      const ids = new Set<string>();
      for await (const j of this.rest.pages('Assets', this.pageSize, signal, this.bounds('assets'))) {
        const a = toAsset(j);
        if (a.State !== 2) yield this.assetEntry(a); // 2 = Deleted
        ids.add(a.Id);
      }
      this.assetIds = ids;
      return;
    }
    const r = parseRef(dir);
    if (!r) throw new NotFoundError(`${this.name}: no such folder ${dir}`);
    if (r.file) throw new FsError('ENOTDIR', `${this.name}: ${dir} is a file`);
    for await (const j of this.rest.pages(`${keyed('Assets', r.asset)}/Files`, this.pageSize, signal, this.bounds(`files of asset ${r.asset}`))) {
      yield this.fileEntry(r.asset, toFile(j));
    }
  }

  async stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry> {
    if (ref === '') return ROOT;
    const r = parseRef(ref);
    if (!r) throw new NotFoundError(`${this.name}: no such entry ${ref}`);
    if (!r.file) {
      const a = toAsset(await this.rest.entity(keyed('Assets', r.asset), signal));
      if (a.State === 2) throw new NotFoundError(`${this.name}: asset ${r.asset} is deleted`);
      return this.assetEntry(a);
    }
    return this.fileEntry(r.asset, await this.file(r.asset, r.file, signal));
  }

  async locate(obj: ObjectVersion, signal?: AbortSignal): Promise<SignedLocator> {
    const r = parseRef(obj.ref);
    if (!r?.file) throw new FsError('EISDIR', `${this.name}: ${obj.ref} is not a file`);
    const f = await this.file(r.asset, r.file, signal);
    const entry = this.fileEntry(r.asset, f);
    if (entry.unreadable) throw new UnavailableError(entry.unreadable.code, `${this.name}/${f.Name}: ${entry.unreadable.reason}`);
    if (entry.version !== obj.version) throw new StaleError(`${this.name}/${f.Name} changed (version ${obj.version} is gone)`);
    const loc = await this.locators.get(r.asset, signal);
    // The version is an AMS revision (checked against a fresh stat just above), not the blob's ETag:
    // downloads are compared only with each other (core/etag.ts).
    return { url: `${loc.BaseUri}/${encodeURIComponent(f.Name)}${loc.ContentAccessComponent}`, expiresAt: loc.ExpirationDateTime };
  }

  /** An asset's `Id` on its folder, an AssetFile's `Id` on its file. */
  idOf(entry: RemoteEntry): string | undefined {
    const r = parseRef(entry.ref);
    return r?.file ?? r?.asset;
  }

  /**
   * `GET Files('id')`, whose ParentAssetId places the file; an asset's id answers 404 there and is asked
   * of `Assets('id')` next (AMS gives assets and files ids of one form). Ids of assets the root listing
   * showed go to `Assets('id')` at once: one call either way, once the root was listed.
   */
  async byId(id: string, signal?: AbortSignal): Promise<RemoteEntry> {
    if (!ID.test(id)) throw new NotFoundError(`${this.name}: ${id} is not an AMS id (nb:cid:UUID:…)`);
    if (!this.assetIds.has(id)) {
      try {
        const f = toFile(await this.rest.entity(keyed('Files', id), signal));
        if (!f.ParentAssetId) throw new FsError('EIO', `${this.name}: AMS did not say which asset holds file ${id}`);
        return this.fileEntry(f.ParentAssetId, f);
      } catch (e) {
        if (!(e instanceof NotFoundError)) throw e;
      }
    }
    return this.stat(`${id}/`, signal);
  }

  async ancestry(entry: RemoteEntry): Promise<Ref[]> {
    const r = parseRef(entry.ref);
    return r?.file ? [`${r.asset}/`] : [];
  }

  refused(obj: ObjectVersion, loc: SignedLocator): void {
    const r = parseRef(obj.ref);
    if (r) this.locators.refused(r.asset, loc.url);
  }

  /** Locators of ours alive for an asset (tests and status). */
  liveLocators(assetRef: Ref): number {
    const r = parseRef(assetRef);
    return r ? this.locators.count(r.asset) : 0;
  }

  /** The uploader (upload.ts): one per provider, so close() can delete the write locators it holds. */
  uploader(): AmsUploader {
    this.up ??= new AmsUploader(this.rest, { what: `ams source "${this.name}"`, log: this.log, net: this.net });
    return this.up;
  }

  async close(): Promise<void> {
    try {
      await Promise.allSettled([this.up?.close(), this.locators.close()]);
    } finally {
      await this.api.close();
    }
  }

  private bounds(folder: string) {
    return { what: `ams source "${this.name}": ${folder}`, log: this.log, limits: this.listing };
  }

  private async file(assetId: string, fileId: string, signal?: AbortSignal): Promise<AmsFile> {
    const f = toFile(parseEntity(await this.rest.json({ path: keyed('Files', fileId), signal })));
    if (f.ParentAssetId !== undefined && f.ParentAssetId !== assetId) throw new NotFoundError(`${this.name}: file ${fileId} is not in asset ${assetId}`);
    return f;
  }

  private assetEntry(a: AmsAsset): RemoteEntry {
    return { name: a.Name, kind: 'dir', ref: `${a.Id}/`, size: 0, mtimeMs: this.numbers.mtime(`${a.Id}/`, a.Name, a.LastModified), version: '', id: a.Id,
      status: STATES[a.State] ?? String(a.State) };
  }

  private fileEntry(assetId: string, f: AmsFile): RemoteEntry {
    const ref = `${assetId}/${f.Id}`;
    const e = { name: f.Name, kind: 'file' as const, ref, ...this.numbers.file(ref, f.Name, { size: f.ContentFileSize, mtime: f.LastModified }), version: fileVersion(f), id: f.Id,
      contentType: f.MimeType };
    if (!f.IsEncrypted) return e;
    return { ...e, unreadable: { code: 'EACCES', reason: `storage-encrypted (${f.EncryptionScheme ?? 'encrypted'}): the stored bytes are ciphertext` } };
  }
}
