/**
 * `nomad`: a Nomad Media catalog (docs/providers.md#nomad). The tree is Nomad's folder tree from the buckets
 * down (or from the children of `rootFolderId`); a ref is the asset id, '' is the source root.
 *
 * Invariants:
 *  - Listing is `POST /api/admin/search` on `parentId` (buckets: `assetType` Bucket), paged by page
 *    index; stat is `GET /api/admin/asset/{id}` (its detail only when the size is missing).
 *  - locate() fetches the asset again every time, so a URL refused with 403 is replaced by a freshly
 *    presigned one on the next locate; the URL's own X-Amz-Date + X-Amz-Expires bound its use.
 *  - Assets whose status is not Available/Restored are listed with `unreadable` (entries.ts), and
 *    locate() refuses them with UnavailableError naming the status, logging why.
 *  - The client (client.ts) keeps the session; the uploader (upload.ts) shares it and resolves
 *    names through this provider's list()/stat(), so its versions are the listed ones.
 *  - caps.upload is `!readOnly`: Nomad takes multipart uploads and folder edits.
 */
import type { ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../core/types.js';
import { FsError, NotFoundError, UnavailableError } from '../../core/errors.js';
import type { SourceConfigOf } from '../../config/schema.js';
import type { Logger } from '../../util/logger.js';
import type { ApiMeter } from '../common/api-client.js';
import type { NetBounds } from '../../transports/bounds.js';
import { NomadClient, type SearchFilter } from './client.js';
import type { ListingLimits } from '../common/paging.js';
import { factsOfAsset, factsOfItem, isDir, presignedExpiry, toEntry, unreadableFor } from './entries.js';
import { NomadUploader } from './upload.js';
import { EntryNumbers } from '../common/entry-numbers.js';

export interface NomadProviderDeps {
  log: Logger;
  /** Timeouts, deadline and answer cap of every call (retry.* in the config). Default DEFAULT_BOUNDS. */
  net?: NetBounds;
  /** Counts API requests (assetfs_origin_requests_total{kind="api"}). */
  meter?: ApiMeter;
  /** Items per search page. Default 100 (the documented example). */
  listPageSize?: number;
  /** Bounds of every listing (config `listing`). */
  listing?: ListingLimits;
}

export class NomadProvider implements Provider {
  readonly type = 'nomad';
  readonly name: string;
  readonly caps: { upload: boolean };
  readonly client: NomadClient;
  private readonly log: Logger;
  private readonly numbers: EntryNumbers;

  constructor(
    private readonly cfg: SourceConfigOf<'nomad'>,
    private readonly deps: NomadProviderDeps,
  ) {
    this.name = cfg.name;
    this.caps = { upload: !cfg.readOnly };
    this.log = deps.log.child({ c: 'nomad', source: cfg.name });
    this.numbers = new EntryNumbers({ log: this.log, what: `nomad source "${cfg.name}"` });
    this.client = new NomadClient(
      { name: cfg.name, baseUrl: cfg.baseUrl, username: cfg.username, password: cfg.password, applicationId: cfg.applicationId },
      this.log,
      deps.net,
      deps.meter,
    );
  }

  private filtersFor(dir: Ref): SearchFilter[] {
    const parent = dir || this.cfg.rootFolderId;
    if (parent) return [{ fieldName: 'parentId', operator: 'Equals', values: parent }];
    return [{ fieldName: 'assetType', operator: 'Equals', values: 'Bucket' }];
  }

  async *list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry> {
    const parent = dir || this.cfg.rootFolderId;
    const bounds = { what: parent ? `folder ${parent}` : 'buckets', limits: this.deps.listing };
    for await (const item of this.client.searchAll(this.filtersFor(dir), this.deps.listPageSize ?? 100, undefined, signal, bounds)) {
      if (item.id === parent) continue; // a folder is never its own child
      yield toEntry(factsOfItem(item), this.numbers);
    }
  }

  async stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry> {
    if (ref === '') return { name: '', kind: 'dir', ref: '', size: 0, mtimeMs: 0, version: '' };
    const facts = factsOfAsset(ref, await this.client.getAsset(ref, signal));
    if (!isDir(facts) && facts.size === undefined) {
      // The documented stat shape has no size: the detail's assetStats has it.
      const d = await this.client.getDetail(ref, signal);
      const n = Number(d.assetStats?.totalContentLength);
      if (Number.isFinite(n) && n >= 0) facts.size = n;
      if (d.assetStats?.totalContentLength !== undefined) facts.rawSize = d.assetStats.totalContentLength;
    }
    return toEntry(facts, this.numbers);
  }

  async locate(obj: ObjectVersion, signal?: AbortSignal): Promise<SignedLocator> {
    const facts = factsOfAsset(obj.ref, await this.client.getAsset(obj.ref, signal));
    if (isDir(facts)) throw new FsError('EISDIR', `${this.name}: "${facts.name}" is a folder`);
    const unreadable = unreadableFor(facts.name, facts.status);
    if (unreadable) {
      this.log.warn({ ref: obj.ref, status: facts.status, code: unreadable.code }, `cannot read: ${unreadable.reason}`);
      throw new UnavailableError(unreadable.code, `${this.name}: ${unreadable.reason}`);
    }
    if (!facts.fullUrl) {
      // A readable file without a URL: Nomad is still preparing it (or hides it); waiting may help.
      const reason = `${this.name}: "${facts.name}" has no download URL yet (assetStatus ${facts.status ?? 'unknown'})`;
      this.log.warn({ ref: obj.ref, status: facts.status }, reason);
      throw new UnavailableError('EAGAIN', reason);
    }
    // The lifetime is not documented: trust the presigned URL's own expiry, else our configured urlTtl.
    // The version comes from Nomad's own answers (an eTag field, or a revision), never from the S3 GET
    // itself: downloads are compared only with each other (core/etag.ts).
    return { url: facts.fullUrl, expiresAt: presignedExpiry(facts.fullUrl) ?? Date.now() + this.cfg.urlTtl };
  }

  /** Every asset's id is its ref: buckets, folders and files alike. */
  idOf(entry: RemoteEntry): string | undefined {
    return entry.ref || undefined;
  }

  /** `GET /api/admin/asset/{id}` (its detail too when the answer has no size: see stat). */
  async byId(id: string, signal?: AbortSignal): Promise<RemoteEntry> {
    if (!id) throw new NotFoundError(`${this.name}: an empty id`);
    return this.stat(id, signal);
  }

  /**
   * Up the `parentId` chain, one `GET /api/admin/asset/{id}` per level, to a bucket (the root lists the
   * buckets) or to `rootFolderId`. An asset outside that folder has no path in this source.
   */
  async ancestry(entry: RemoteEntry, signal?: AbortSignal): Promise<Ref[]> {
    const root = this.cfg.rootFolderId;
    const chain: Ref[] = [];
    let a = await this.client.getAsset(entry.ref, signal);
    for (let depth = 0; ; depth++) {
      const parent = typeof a.parentId === 'string' && a.parentId ? a.parentId : undefined;
      if (!root && (/^bucket$/i.test(String(a.assetType ?? '')) || !parent)) return chain;
      if (parent === root) return chain;
      if (!parent || depth >= 64 || chain.includes(parent)) {
        throw new NotFoundError(`${this.name}: "${entry.name}" is not inside ${root ? `the root folder ${root}` : 'a bucket'}`);
      }
      chain.unshift(parent);
      a = await this.client.getAsset(parent, signal);
    }
  }

  /** A fresh uploader (its own folder-id cache) on this provider's session; `partSize` for tests. */
  uploader(opts: { partSize?: number } = {}): NomadUploader {
    return new NomadUploader(this.client, this, { rootFolderId: this.cfg.rootFolderId, partSize: opts.partSize });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
