/**
 * AMS v2 uploads (docs/providers.md#ams, "Uploads and edits"). The tree is `<asset Name>/<file
 * Name>`: an asset is a folder at the root, its files are the blobs of its container.
 *
 * An upload: a write grant on the asset (write-locators.ts), Put Block of every part through the grant's
 * SAS URL, then Put Block List, `GET CreateFileInfos`, `MERGE Files('id') {ContentFileSize, MimeType,
 * IsPrimary}` and the grant's deletion.
 *
 * Invariants:
 *  - The upload id is `<tag>|<asset id>|<locator id>|<policy id>`: the tag is the block-list session's
 *    (common/azure-blocks.ts), so resume reads the uncommitted block list and keeps the blocks of our tag; the asset id pins the session to the asset it began in; the grant ids let a later run reuse
 *    or delete the grant of a crashed one.
 *  - Nothing is listed before complete(): the provider lists AssetFile entities, and those exist only
 *    after the commit and CreateFileInfos (uncommitted blocks are not even a blob).
 *  - Versions come from the provider's own `fileVersion` of the AssetFile entity, so complete() and
 *    remoteVersion() report exactly the provider's RemoteEntry.version.
 *  - Names follow AMS's name rules (docs/providers.md#ams) (≤ 260 characters, none of !*'();:@&=+$,/?%#[]", and for
 *    files exactly one '.'), checked before anything is sent: EINVAL with the rule in the message.
 *  - Asset names resolve to ids through the Assets listing (first asset of a name in creation order, as
 *    AMS allows duplicates). Hits are cached for NAME_TTL_MS; a cached id the platform no longer knows
 *    (404) drops the cache and the operation runs once more. A missing asset is created by begin() (sync
 *    of a new local folder), one creation per name at a time.
 *  - AMS returns no content hash to check (ContentChecksum is a client-set MD5 at best, the engine hashes
 *    SHA-256): complete() checks the committed blob's size in storage and the AssetFile's size.
 *  - Storage-encrypted assets (Options 1) take no uploads (EACCES): their blobs must be AES ciphertext
 *    made with the asset's content key, and plaintext there would read back as garbage.
 *  - Files cannot be renamed (their Name is the blob's name): EXDEV, so mv copies. Nothing nests inside
 *    an asset: mkdir below an asset is ENOTSUP.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BlockBlobClient, type Pipeline } from '@azure/storage-blob';
import { FsError, NotFoundError } from '../../core/errors.js';
import type { CompletedUpload, ConfirmedPart, UploadTarget, Uploader } from '../../upload/types.js';
import { SessionLostError } from '../../upload/errors.js';
import type { Logger } from '../../util/logger.js';
import { contentTypeOf } from '../../util/content-type.js';
import { BlockListSession, newBlockTag } from '../common/azure-blocks.js';
import { MAX_PARTS, partSizeFor } from '../common/part-size.js';
import { mapCache, retryOnceIfStale } from '../common/stale-retry.js';
import { mapStorageError } from '../errors.js';
import { AMS_MAX_PAGE, fileVersion, keyed, parseEntity, parseSet, toAsset, toFile, type AmsFile, type AmsRest } from './api.js';
import { WriteGrants, type GrantRef, type WriteGrant } from './write-locators.js';
import { type NetBounds } from '../../transports/bounds.js';
import { sasPipeline } from '../azure-blob/api.js';

const MAX_NAME = 260;
const FORBIDDEN = /[!*'();:@&=+$,/?%#[\]"]/;
/** A refused SAS of a live locator younger than this is AMS's propagation delay (30–40 s), not a revocation. */
const PROPAGATION_MS = 60_000;
const PROPAGATION_POLL_MS = 1_000;
/** How long a name → id answer is trusted without listing again (other clients rename assets too). */
const NAME_TTL_MS = 30_000;

export interface AmsUploaderOptions {
  what: string;
  log: Logger;
  /** Part size floor; default 8 MiB (growing to keep ≤ 50,000 blocks). */
  partSize?: number;
  /** Life of a write locator; replaced when it runs out mid-upload. Default 2 h. */
  writeTtlMs?: number;
  /** Bounds of the storage calls (transports/bounds.ts). Default DEFAULT_BOUNDS. */
  net?: NetBounds;
}

interface Session extends GrantRef {
  readonly tag: string;
  readonly assetId: string;
}

function parseSession(id: string): Session | undefined {
  const [tag, assetId, locatorId, policyId, ...rest] = id.split('|');
  if (!tag || !/^[0-9a-f]{16}$/.test(tag) || !assetId || !locatorId || !policyId || rest.length) return undefined;
  return { tag, assetId, locatorId, policyId };
}

/** AMS's name rules (docs/providers.md#ams) as an EINVAL naming the broken rule. */
export function checkName(kind: 'asset' | 'file', name: string): void {
  const bad = (why: string) => new FsError('EINVAL', `ams: ${kind} name "${name.slice(0, 80)}${name.length > 80 ? '…' : ''}" ${why}`);
  if (!name) throw bad('is empty');
  if (name.length > MAX_NAME) throw bad(`is ${name.length} characters long; AMS allows at most ${MAX_NAME}`);
  const c = FORBIDDEN.exec(name);
  if (c) throw bad(`contains "${c[0]}"; AMS names cannot contain any of !*'();:@&=+$,/?%#[]"`);
  if (kind === 'file' && name.split('.').length !== 2) throw bad('must contain exactly one "." (AMS file names are <name>.<extension>)');
}

const storageCode = (e: unknown) => (e as { code?: string }).code ?? '';
const refused = (e: unknown) => (e as { statusCode?: number }).statusCode === 403 || /AuthenticationFailed|AuthorizationFailure|AuthorizationPermissionMismatch/.test(storageCode(e));

export class AmsUploader implements Uploader {
  /** AMS file names hold exactly one dot, so conflict copies are `name-conflict-<host>-<time>.ext`. */
  readonly conflictMark = '-conflict-';
  private readonly grants: WriteGrants;
  /** Bounded storage calls, no retries of the SDK's own: the upload engine retries parts. */
  private readonly pipeline: Pipeline;
  /** Asset name → id (hits only). */
  private readonly assetIds = new Map<string, string>();
  /** Ids of storage-encrypted assets (Options bit 1): their blobs must be ciphertext made with AMS keys. */
  private readonly encrypted = new Set<string>();
  private readonly creating = new Map<string, Promise<string>>();
  private listedAt = 0;

  constructor(
    private readonly rest: AmsRest,
    private readonly opts: AmsUploaderOptions,
  ) {
    this.pipeline = sasPipeline(opts.net);
    this.grants = new WriteGrants(rest, { what: opts.what, log: opts.log, ttlMs: opts.writeTtlMs ?? 2 * 3_600_000 });
  }

  partSize(size: number): number {
    return partSizeFor(size, MAX_PARTS.azureBlocks, this.opts.partSize);
  }

  /** Write grants alive (tests and status). */
  liveGrants(): number {
    return this.grants.count();
  }

  async close(): Promise<void> {
    await this.grants.close();
  }

  // ---- names -------------------------------------------------------------------------------------

  /** `<asset>/<file>` of a file target, names checked. */
  private fileTarget(t: UploadTarget, what: string): { asset: string; file: string } {
    if (t.path.length > 2) throw new FsError('ENOTSUP', `${this.opts.what}: ${what} ${t.path.join('/')}: AMS assets are flat, files cannot be in subfolders`);
    const [asset, file] = t.path;
    if (!asset || !file) throw new FsError('EINVAL', `${this.opts.what}: ${what} ${t.path.join('/')}: files live inside an asset (<asset>/<file>)`);
    checkName('asset', asset);
    checkName('file', file);
    return { asset, file };
  }

  /** The id of the asset named `name` (from the cache while it is younger than NAME_TTL_MS). */
  private async assetId(name: string, signal?: AbortSignal): Promise<string | undefined> {
    if (Date.now() - this.listedAt > NAME_TTL_MS) this.assetIds.clear(); // others rename and delete too
    const hit = this.assetIds.get(name);
    if (hit) return hit;
    const ids = new Map<string, string>();
    for await (const j of this.rest.pages('Assets', AMS_MAX_PAGE, signal)) {
      const a = toAsset(j);
      if (a.State === 2 || ids.has(a.Name)) continue; // the first of a name wins
      ids.set(a.Name, a.Id);
      if (a.Options & 1) this.encrypted.add(a.Id);
      else this.encrypted.delete(a.Id);
    }
    this.assetIds.clear();
    for (const [k, v] of ids) this.assetIds.set(k, v);
    this.listedAt = Date.now();
    return ids.get(name);
  }

  /** Runs `fn`, once more with the asset-id cache forgotten when a cached id went stale (common/stale-retry.ts). */
  private fresh<T>(fn: () => Promise<T>): Promise<T> {
    return retryOnceIfStale(mapCache(this.assetIds), fn);
  }

  private createAsset(name: string, signal?: AbortSignal): Promise<string> {
    let p = this.creating.get(name);
    if (!p) {
      p = (async () => {
        const existing = await this.assetId(name, signal);
        if (existing) return existing;
        const id = toAsset(parseEntity(await this.rest.json({ method: 'POST', path: 'Assets', json: { Name: name }, signal }))).Id;
        this.assetIds.set(name, id);
        return id;
      })().finally(() => this.creating.delete(name));
      this.creating.set(name, p);
    }
    return p;
  }

  private async files(assetId: string, signal?: AbortSignal): Promise<{ f: AmsFile; primary: boolean }[]> {
    const out = [];
    for await (const j of this.rest.pages(`${keyed('Assets', assetId)}/Files`, AMS_MAX_PAGE, signal)) out.push({ f: toFile(j), primary: j.IsPrimary === true || j.IsPrimary === 'true' });
    return out;
  }

  private async file(assetId: string, name: string, signal?: AbortSignal): Promise<AmsFile | undefined> {
    return (await this.files(assetId, signal)).find((x) => x.f.Name === name)?.f;
  }

  // ---- storage through the grant -----------------------------------------------------------------

  private blob(g: WriteGrant, name: string): BlockBlobClient {
    return new BlockBlobClient(`${g.baseUri}/${encodeURIComponent(name)}${g.sas}`, this.pipeline);
  }

  /**
   * Runs a storage call with the session's grant. A refused SAS of a locator that still exists and is
   * younger than PROPAGATION_MS is AMS's propagation delay: the call waits and is tried again. Otherwise
   * the grant was revoked, expired or its keys rolled: it is replaced, once.
   */
  private async withGrant<T>(s: Session, signal: AbortSignal | undefined, fn: (g: WriteGrant) => Promise<T>): Promise<T> {
    let g = await this.grants.acquire(s.assetId, s.tag, s, signal);
    let replaced = false;
    for (;;) {
      try {
        return await fn(g);
      } catch (e) {
        if (!refused(e)) throw e;
        const wait = g.createdAt + PROPAGATION_MS - Date.now();
        if (wait > 0 && (await this.grants.exists(g, signal))) {
          await sleep(Math.min(PROPAGATION_POLL_MS, wait), undefined, { signal });
          continue;
        }
        if (replaced) throw e;
        g = await this.grants.replace(s.assetId, s.tag, g, signal);
        replaced = true;
      }
    }
  }

  private session(uploadId: string): Session {
    const s = parseSession(uploadId);
    if (!s) throw new SessionLostError(`${this.opts.what}: "${uploadId}" is not an AMS upload id`);
    return s;
  }

  // ---- upload ------------------------------------------------------------------------------------

  async begin(t: UploadTarget, _size: number, signal?: AbortSignal): Promise<string> {
    const { asset } = this.fileTarget(t, 'upload');
    const tag = newBlockTag();
    return this.fresh(async () => {
      const assetId = (await this.assetId(asset, signal)) ?? (await this.createAsset(asset, signal));
      if (this.encrypted.has(assetId)) {
        throw new FsError('EACCES', `${this.opts.what}: asset "${asset}" is storage-encrypted; uploading into it needs AMS client-side encryption, which assetfs does not do`);
      }
      const g = await this.grants.acquire(assetId, tag, undefined, signal);
      return [tag, assetId, g.locatorId, g.policyId].join('|');
    });
  }

  async confirmed(t: UploadTarget, uploadId: string, signal?: AbortSignal): Promise<ConfirmedPart[] | undefined> {
    const s = parseSession(uploadId);
    if (!s) return undefined;
    const { file } = this.fileTarget(t, 'resume');
    try {
      return await this.withGrant(s, signal, (g) => new BlockListSession(s.tag).staged(this.blob(g, file), signal));
    } catch (e) {
      if (storageCode(e) === 'BlobNotFound') return []; // no block staged yet
      const m = mapStorageError(e, `${this.opts.what}: block list of ${t.path.join('/')}`);
      if (m instanceof NotFoundError) {
        await this.grants.release(s.assetId, s.tag, s);
        return undefined; // the asset (and its container) is gone
      }
      throw m;
    }
  }

  async part(t: UploadTarget, uploadId: string, number: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    const s = this.session(uploadId);
    const { file } = this.fileTarget(t, 'upload');
    try {
      return await this.withGrant(s, signal, (g) => new BlockListSession(s.tag).stage(this.blob(g, file), number, data, signal));
    } catch (e) {
      const m = mapStorageError(e, `${this.opts.what}: block ${number} of ${t.path.join('/')}`);
      if (m instanceof NotFoundError) throw new SessionLostError(`${this.opts.what}: the asset of ${t.path.join('/')} is gone: ${m.message}`);
      throw m;
    }
  }

  async complete(t: UploadTarget, uploadId: string, parts: readonly ConfirmedPart[], info: { size: number }, signal?: AbortSignal): Promise<CompletedUpload> {
    const s = this.session(uploadId);
    const { file } = this.fileTarget(t, 'upload');
    const where = `${this.opts.what}: ${t.path.join('/')}`;
    const blocks = new BlockListSession(s.tag);
    const ids = blocks.blockList(parts);
    if (!ids) {
      await this.grants.release(s.assetId, s.tag, s);
      throw new SessionLostError(`${where}: the journal does not hold every block in order`);
    }
    // 1. Put Block List, then check what storage holds.
    await this.withGrant(s, signal, (g) => blocks.commit(this.blob(g, file), ids, { name: file, size: info.size, signal })).catch(async (e: unknown) => {
      if (storageCode(e) === 'InvalidBlockList' || mapStorageError(e, where) instanceof NotFoundError) {
        await this.grants.release(s.assetId, s.tag, s);
        throw new SessionLostError(`${where}: a block (or the asset) is missing at commit`);
      }
      throw mapStorageError(e, `${where}: commit`);
    });
    // 2. The AssetFile entity: created by CreateFileInfos (a new name), then its size and type set.
    await this.rest.call({ path: 'CreateFileInfos', query: { assetid: `'${s.assetId}'` }, signal });
    const all = await this.files(s.assetId, signal);
    const mine = all.find((x) => x.f.Name === file);
    if (!mine) throw new FsError('EIO', `${where}: CreateFileInfos made no AssetFile for the committed blob`);
    const primary = mine.primary || !all.some((x) => x.primary);
    const json = { ContentFileSize: String(info.size), MimeType: contentTypeOf(file), IsPrimary: primary };
    await this.rest.call({ method: 'MERGE', path: keyed('Files', mine.f.Id), json, signal });
    const f = toFile(parseEntity(await this.rest.json({ path: keyed('Files', mine.f.Id), signal })));
    if (f.ContentFileSize !== info.size) throw new FsError('EIO', `${where}: the AssetFile says ${f.ContentFileSize} bytes, expected ${info.size}`);
    // 3. The session is over: its grant goes when no other upload into the asset uses it.
    await this.grants.release(s.assetId, s.tag, s);
    return { version: fileVersion(f), size: f.ContentFileSize };
  }

  async abort(_t: UploadTarget, uploadId: string): Promise<void> {
    // Uncommitted blocks are dropped by storage (after a week, or at the blob's next commit).
    const s = parseSession(uploadId);
    if (s) await this.grants.release(s.assetId, s.tag, s);
  }

  async remoteVersion(t: UploadTarget, signal?: AbortSignal): Promise<string | undefined> {
    const [asset, file, ...rest] = t.path;
    if (!asset || !file || rest.length) return undefined;
    return this.fresh(async () => {
      const id = await this.assetId(asset, signal);
      const f = id === undefined ? undefined : await this.file(id, file, signal);
      return f && fileVersion(f);
    });
  }

  // ---- folders and deletes -----------------------------------------------------------------------

  async remove(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    const [asset, file, ...rest] = t.path;
    if (!asset || !file || rest.length) throw new FsError('EISDIR', `${this.opts.what}: ${t.path.join('/')} is not a file`);
    await this.fresh(async () => {
      const id = await this.assetId(asset, signal);
      const f = id === undefined ? undefined : await this.file(id, file, signal);
      if (!f) throw new NotFoundError(`${this.opts.what}: ${t.path.join('/')} not found`);
      await this.rest.call({ method: 'DELETE', path: keyed('Files', f.Id), signal });
    });
  }

  async mkdir(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    const [name, ...rest] = t.path;
    if (!name) throw new FsError('EEXIST', `${this.opts.what}: the root exists`);
    if (rest.length) throw new FsError('ENOTSUP', `${this.opts.what}: ${t.path.join('/')}: AMS assets are flat; folders exist only at the top (one asset each)`);
    checkName('asset', name);
    if (await this.assetId(name, signal)) throw new FsError('EEXIST', `${this.opts.what}: asset "${name}" exists`);
    await this.createAsset(name, signal);
  }

  async rmdir(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    const [name, ...rest] = t.path;
    if (!name || rest.length) throw new FsError('ENOTDIR', `${this.opts.what}: ${t.path.join('/')} is not an asset`);
    await this.fresh(async () => {
      const id = await this.assetId(name, signal);
      if (!id) throw new NotFoundError(`${this.opts.what}: asset "${name}" not found`);
      await this.deleteEmptyAsset(name, id, signal);
    });
  }

  private async deleteEmptyAsset(name: string, id: string, signal?: AbortSignal): Promise<void> {
    const { items } = parseSet(await this.rest.json({ path: `${keyed('Assets', id)}/Files`, query: { $top: 1 }, signal }));
    if (items.length) throw new FsError('ENOTEMPTY', `${this.opts.what}: asset "${name}" is not empty`);
    await this.grants.forgetAsset(id);
    await this.rest.call({ method: 'DELETE', path: keyed('Assets', id), signal });
    this.assetIds.delete(name);
  }

  /** Assets rename in place (MERGE Name); files cannot (EXDEV: mv copies and deletes). */
  async rename(from: UploadTarget, to: UploadTarget, signal?: AbortSignal): Promise<void> {
    if (from.path.length !== 1 || to.path.length !== 1) {
      throw new FsError('EXDEV', `${this.opts.what}: AMS renames assets only; a file's Name is its blob's name (${from.path.join('/')} → ${to.path.join('/')} needs copy and delete)`);
    }
    const [src, dst] = [from.path[0]!, to.path[0]!];
    checkName('asset', dst);
    if (src === dst) return;
    await this.fresh(async () => {
      const id = await this.assetId(src, signal);
      if (!id) throw new NotFoundError(`${this.opts.what}: asset "${src}" not found`);
      const taken = await this.assetId(dst, signal);
      if (taken) await this.deleteEmptyAsset(dst, taken, signal); // POSIX: an empty target folder is replaced
      await this.rest.call({ method: 'MERGE', path: keyed('Assets', id), json: { Name: dst }, signal });
      this.assetIds.delete(src);
      this.assetIds.set(dst, id);
    });
  }
}
