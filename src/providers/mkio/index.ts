/**
 * `mkio`: a MediaKind MK.IO project (docs/providers.md#mkio). Tree: `<asset name>/<file path below the
 * asset's subPath>` (docs/providers.md#common-to-every-source). Assets come from the paged asset list; an asset's folders
 * and files from its storage listing (`…/storage/`, nested folders with `?path=`, a GUESS); bytes are
 * read straight from the asset's Azure/S3 storage with what getFileAccessInfo hands out (access.ts).
 *
 * Refs (opaque to callers): '' the project; `${enc(asset)}/` an asset; `${enc(asset)}/${path}/` a
 * folder in it; `${enc(asset)}/${path}` a file, `path` relative to the subPath, enc = encodeURIComponent.
 *
 * Versions: MK.IO's storage listing gives a file's name and size only, and storage is written behind
 * MK.IO's back (it never sees uploads), so neither the size nor the asset's lastModified tells a
 * rewritten file apart. A file's version is therefore its storage ETag: taken from the listing row
 * when a server adds one, else from a HEAD of the file with the access of one getFileAccessInfo per
 * listed folder. Only a HEAD's ETag is of the same kind as the ETag a GET of the file carries, so only
 * those versions are compared with downloads' ETags (`etagIsVersion`, remembered per ref); a listing
 * row's etag is MK.IO's statement and, like `size-mtime` (storage gives no ETag) and `size:N` (storage
 * cannot be reached at all: unreadable), is compared with nothing but itself (core/etag.ts).
 *
 * A server that ignores `?path=` would answer the top level for every nested folder: we notice (it
 * does not echo `spec.path`, and its answer equals the top level) and list such folders as empty
 * rather than recurse forever, with one warning.
 */
import pLimit from 'p-limit';
import { LRUCache } from 'lru-cache';
import type { ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../core/types.js';
import { ExpiredError, FsError, NotFoundError, UnavailableError } from '../../core/errors.js';
import { normalizeEtag } from '../../core/etag.js';
import type { SourceConfigOf } from '../../config/schema.js';
import type { Logger } from '../../util/logger.js';
import type { ApiMeter } from '../common/api-client.js';
import type { NetBounds } from '../../transports/bounds.js';
import { capListing, type ListingLimits } from '../common/paging.js';
import { MkioApi, type MkioAsset, type StorageFileRow, type StorageListing } from './api.js';
import { AccessCache } from './access.js';
import { MkioUploader } from './upload.js';
import { EntryNumbers } from '../common/entry-numbers.js';
import { slashAncestry } from '../common/ids.js';

export interface MkioProviderDeps {
  log: Logger;
  /** Timeouts, deadline and answer cap of every call (retry.* in the config). Default DEFAULT_BOUNDS. */
  net?: NetBounds;
  /** Counts API requests (assetfs_origin_requests_total{kind="api"}). */
  meter?: ApiMeter;
  /** Assets per listing page (`$top`; MK.IO's maximum is 1000). */
  listPageSize?: number;
  /** Bounds of every listing (config `listing`). */
  listing?: ListingLimits;
}

interface ParsedRef {
  asset: string;
  /** Below the asset's subPath, no leading or trailing '/'; '' for the asset itself. */
  path: string;
  dir: boolean;
}

type Folder = { files: StorageFileRow[]; folders: { name: string }[] };

const join = (...parts: string[]) => parts.filter(Boolean).join('/');
const leaf = (path: string) => path.slice(path.lastIndexOf('/') + 1);
const childRef = (asset: string, path: string, dir: boolean) => `${encodeURIComponent(asset)}/${path}${dir && path ? '/' : ''}`;

export class MkioProvider implements Provider {
  readonly type = 'mkio';
  readonly name: string;
  /** Uploads write straight to the asset's storage, so they need the source's `storage:` credential. */
  readonly caps: { upload: boolean };
  readonly api: MkioApi;
  private readonly access: AccessCache;
  private up: MkioUploader | undefined;
  private warnedPath = false;
  private readonly numbers: EntryNumbers;
  /** ref → its version, when that version is the ETag a HEAD of the file on storage answered. */
  private readonly headEtags = new LRUCache<string, string>({ max: 65_536 });

  constructor(
    private readonly cfg: SourceConfigOf<'mkio'>,
    private readonly deps: MkioProviderDeps,
  ) {
    this.name = cfg.name;
    this.caps = { upload: !cfg.readOnly && !!cfg.storage };
    this.api = new MkioApi({ baseUrl: cfg.baseUrl, project: cfg.project, token: cfg.token, what: `mkio source "${cfg.name}"`, bounds: deps.net, meter: deps.meter });
    this.access = new AccessCache(this.api, `mkio ${cfg.name}`, deps.net);
    this.numbers = new EntryNumbers({ log: deps.log, what: `mkio source "${cfg.name}"` });
  }

  private parse(ref: Ref): ParsedRef {
    const i = ref.indexOf('/');
    let asset: string | undefined;
    try {
      asset = i > 0 ? decodeURIComponent(ref.slice(0, i)) : undefined;
    } catch { /* not one of our refs */ }
    const rest = ref.slice(i + 1);
    if (!asset || rest.startsWith('/') || rest.split('/').some((s) => s === '.' || s === '..')) throw new NotFoundError(`${this.name}: no entry ${JSON.stringify(ref)}`);
    return { asset, path: rest.replace(/\/$/, ''), dir: rest === '' || rest.endsWith('/') };
  }

  private assetEntry(a: MkioAsset): RemoteEntry {
    const p = a.properties ?? {};
    const ref = childRef(a.name, '', true);
    return { name: a.name, kind: 'dir', ref, size: 0, mtimeMs: this.numbers.mtime(ref, a.name, p.lastModified ?? p.created), version: '', id: p.assetId ?? a.name };
  }

  /** The listing of a folder; undefined when the server cannot list nested folders (see above). */
  private async folder(asset: string, path: string, signal?: AbortSignal): Promise<Folder | undefined> {
    const spec = (await this.api.storage(asset, path, signal))?.spec ?? {};
    const rows = { files: spec.files ?? [], folders: spec.folders ?? [] };
    if (path) {
      const echoed = typeof spec.path === 'string' ? spec.path.replace(/^\/+|\/+$/g, '') : undefined;
      let ignored = echoed !== undefined && echoed !== path;
      if (echoed === undefined) {
        const top: StorageListing['spec'] = (await this.api.storage(asset, '', signal))?.spec ?? {};
        ignored = JSON.stringify([top.files ?? [], top.folders ?? []]) === JSON.stringify([rows.files, rows.folders]);
      }
      if (ignored) {
        if (!this.warnedPath) this.deps.log.warn({ source: this.name }, 'MK.IO ignores ?path= on the storage listing: nested folders are shown empty');
        this.warnedPath = true;
        return undefined;
      }
      if (!rows.files.length && !rows.folders.length) throw new NotFoundError(`${this.name}: ${asset}/${path}/ not found`);
    }
    // Leaf names; a server answering paths relative to the subPath gets them cut to the leaf.
    const cut = <T extends { name: string }>(xs: T[]) =>
      xs.map((x) => ({ ...x, name: path && x.name.startsWith(`${path}/`) ? x.name.slice(path.length + 1) : x.name })).filter((x) => x.name && !x.name.includes('/') && x.name !== '.' && x.name !== '..');
    return { files: cut(rows.files), folders: cut(rows.folders) };
  }

  private async probe(asset: string, path: string, signal?: AbortSignal) {
    for (let attempt = 0; ; attempt++) {
      const a = await this.access.get(asset);
      try {
        return await this.access.probe(a, path, signal);
      } catch (e) {
        if (!(e instanceof ExpiredError) || attempt > 0) throw e;
        this.access.drop(asset, this.access.locator(a, path)); // refused before its expiry: ask MK.IO again
      }
    }
  }

  /**
   * A file's entry. With a listing row: undefined when the file vanished since. `denied` says storage
   * cannot be reached for this asset (then the row is all we know). Without a row (stat): undefined
   * when storage cannot tell, so the caller looks the file up in its folder's listing.
   */
  private async fileEntry(asset: string, path: string, row: StorageFileRow | undefined, signal?: AbortSignal, denied?: string): Promise<RemoteEntry | undefined> {
    const base = { name: leaf(path), kind: 'file' as const, ref: childRef(asset, path, false) };
    const fromRow = () => this.numbers.file(base.ref, base.name, { size: row?.size, mtime: row?.lastModified });
    const rowEtag = normalizeEtag(row?.etag ?? row?.eTag);
    if (row && rowEtag) return { ...base, ...fromRow(), version: rowEtag };
    let why = denied;
    if (why === undefined) {
      try {
        const p = await this.probe(asset, path, signal);
        if (p?.etag) this.headEtags.set(base.ref, p.etag);
        else this.headEtags.delete(base.ref);
        if (p) return { ...base, ...this.numbers.file(base.ref, base.name, { size: p.size, mtime: p.mtimeMs || row?.lastModified }), version: p.etag || `${p.size}-${p.mtimeMs}` };
        why = 'MK.IO hands out a presigned URL of another file of this asset only';
      } catch (e) {
        if (e instanceof NotFoundError && row) return undefined;
        if (!(e instanceof UnavailableError)) throw e;
        why = e.message;
      }
    }
    if (!row) return undefined;
    const n = fromRow();
    return { ...base, ...n, version: `size:${n.size}`, unreadable: { code: 'EACCES', reason: why } };
  }

  async *list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry> {
    if (dir === '') {
      for await (const a of this.api.assets(this.deps.listPageSize ?? 1000, { log: this.deps.log, limits: this.deps.listing, signal })) yield this.assetEntry(a);
      return;
    }
    const r = this.parse(dir);
    if (!r.dir) throw new FsError('ENOTDIR', `${this.name}: ${r.asset}/${r.path} is a file`);
    const whole = await this.folder(r.asset, r.path, signal);
    if (!whole) return;
    // One answer, no paging: the entry cap applies to folders and files together (folders first).
    const kept = capListing([...whole.folders.map((d) => ({ d })), ...whole.files.map((file) => ({ file }))], { what: `mkio ${this.name}: ${r.asset}/${r.path}`, limits: this.deps.listing, log: this.deps.log });
    const f = { folders: kept.flatMap((x) => ('d' in x ? [x.d] : [])), files: kept.flatMap((x) => ('file' in x ? [x.file] : [])) };
    for (const d of f.folders) yield { name: d.name, kind: 'dir', ref: childRef(r.asset, join(r.path, d.name), true), size: 0, mtimeMs: 0, version: '' };
    // One access answer for the whole folder; a refusal of storage access marks every file unreadable.
    let denied: string | undefined;
    if (f.files.some((row) => !normalizeEtag(row.etag ?? row.eTag))) {
      denied = await this.access.get(r.asset).then(
        () => undefined,
        (e: unknown) => { if (e instanceof UnavailableError) return e.message; throw e; },
      );
    }
    const limit = pLimit(8);
    const entries = await Promise.all(f.files.map((row) => limit(() => this.fileEntry(r.asset, join(r.path, row.name), row, signal, denied))));
    for (const e of entries) if (e) yield e;
  }

  async stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry> {
    if (ref === '') return { name: '', kind: 'dir', ref: '', size: 0, mtimeMs: 0, version: '' };
    const r = this.parse(ref);
    if (r.dir && !r.path) return this.assetEntry(await this.api.asset(r.asset, signal));
    if (r.dir) {
      await this.folder(r.asset, r.path, signal);
      return { name: leaf(r.path), kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' };
    }
    const e = await this.fileEntry(r.asset, r.path, undefined, signal);
    if (e) return e;
    // Storage cannot tell us (access refused, or a presigned URL of another file): the listing can.
    const parent = r.path.includes('/') ? r.path.slice(0, r.path.lastIndexOf('/')) : '';
    const row = (await this.folder(r.asset, parent, signal))?.files.find((f) => f.name === leaf(r.path));
    if (!row) throw new NotFoundError(`${this.name}: ${r.asset}/${r.path} not found`);
    const denied = await this.access.get(r.asset).then(
      (a) => (this.access.serves(a, r.path) ? undefined : 'MK.IO hands out a presigned URL of another file of this asset only'),
      (err: unknown) => (err instanceof UnavailableError ? err.message : Promise.reject(err)),
    );
    return (await this.fileEntry(r.asset, r.path, row, signal, denied ?? 'storage did not answer for this file'))!;
  }

  async locate(obj: ObjectVersion): Promise<SignedLocator> {
    const r = this.parse(obj.ref);
    if (r.dir) throw new FsError('EISDIR', `${this.name}: ${obj.ref} is a folder`);
    const a = await this.access.get(r.asset);
    if (!this.access.serves(a, r.path)) throw new UnavailableError('EACCES', `${this.name}: ${r.asset}/${r.path}: MK.IO hands out a presigned URL of another file of this asset only`);
    const loc = this.access.locator(a, r.path);
    return this.headEtags.get(obj.ref) === obj.version ? { ...loc, etagIsVersion: true } : loc;
  }

  /** An asset's id is its name (MK.IO's key for it); the files and folders in its storage have none. */
  idOf(entry: RemoteEntry): string | undefined {
    if (entry.ref === '') return undefined;
    const r = this.parse(entry.ref);
    return r.dir && !r.path ? r.asset : undefined;
  }

  /** `GET …/assets/{name}`. */
  async byId(id: string, signal?: AbortSignal): Promise<RemoteEntry> {
    if (!id || id.includes('/')) throw new NotFoundError(`${this.name}: no asset named ${JSON.stringify(id)}`);
    return this.assetEntry(await this.api.asset(id, signal));
  }

  async ancestry(entry: RemoteEntry): Promise<Ref[]> {
    const r = this.parse(entry.ref);
    if (r.dir && !r.path) return [];
    const asset = childRef(r.asset, '', true);
    return [asset, ...slashAncestry(entry.ref, asset)];
  }

  /** The jwt (or presigned URL) of `loc` was refused: the next locate asks getFileAccessInfo again. */
  refused(obj: ObjectVersion, loc: SignedLocator): void {
    try {
      this.access.drop(this.parse(obj.ref).asset, loc);
    } catch { /* not our ref: nothing cached for it */ }
  }

  /** One uploader per provider (it caches asset lookups and holds the storage client). */
  uploader(): MkioUploader {
    if (!this.cfg.storage) throw new FsError('EROFS', `${this.name}: MK.IO takes uploads only with a \`storage:\` credential`);
    return (this.up ??= new MkioUploader(this.api, this.cfg.storage, `mkio ${this.name}`, this.deps.net));
  }

  async close(): Promise<void> {
    this.up?.close();
    await Promise.all([this.api.close(), this.access.close()]);
  }
}
