/**
 * `mediahub`: an Xvid MediaHub account (docs/providers.md#mediahub). Tree `<pipeline id>/<object_key path…>`,
 * files without an object key under `<pipeline id>/_files/`, archives as folders of their items
 * (refs: tree.ts). Reads go through presigned S3 URLs from `GET /files/downloads`.
 *
 * The listing API is flat and paged, so folders come from one snapshot of the whole catalog:
 *  - one listing pass at a time, shared by every list/stat that needs it (single flight);
 *  - reused while younger than `snapshotMaxAgeMs` (default 5 s: a `find` over the tree costs one pass);
 *  - a folder missing from the snapshot triggers one fresh pass (a file just added), unless the
 *    snapshot was taken after the call began or less than a second ago (bounds passes under repeated misses).
 * Files, archives and items are stat'ed through `GET /files/{id}`: always fresh, so a changed file
 * shows its new version at once. Uploads: upload.ts (`uploader()`, `caps.upload` unless readOnly).
 */
import type { ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../core/types.js';
import { FsError, NotFoundError, TransientError, UnavailableError } from '../../core/errors.js';
import type { SourceConfigOf } from '../../config/schema.js';
import type { Logger } from '../../util/logger.js';
import type { ApiMeter } from '../common/api-client.js';
import type { NetBounds } from '../../transports/bounds.js';
import { MediahubApi, type MhFile } from './api.js';
import type { ListingLimits } from '../common/paging.js';
import { Tree, ancestorRefs, archiveEntry, archiveRef, fileEntry, folderEntry, itemEntries, parseRef } from './tree.js';
import { MediahubUploader, type MediahubUploaderOptions } from './upload.js';
import { EntryNumbers } from '../common/entry-numbers.js';

export { MediahubApi } from './api.js';
export { MediahubUploader, splitUploadId } from './upload.js';

export interface MediahubProviderDeps {
  log: Logger;
  /** Timeouts, deadline and answer cap of every call (retry.* in the config). Default DEFAULT_BOUNDS. */
  net?: NetBounds;
  /** Counts API requests (assetfs_origin_requests_total{kind="api"}). */
  meter?: ApiMeter;
  /** Records per listing page (`limit`, at most 5000; default 1000, the API's default). */
  listPageSize?: number;
  /** Ask for download links with `redirect=true` and take the 302's Location (default: the JSON answer). */
  redirectDownloads?: boolean;
  /** How long a catalog snapshot serves list/stat of folders. Default 5 s. */
  snapshotMaxAgeMs?: number;
  /** Bounds of every listing (config `listing`); the flat catalog listing is one listing. */
  listing?: ListingLimits;
}

const MISS_REFRESH_MIN_AGE_MS = 1000;

/** `p`, or the signal's reason as soon as it aborts (the shared work itself goes on for other callers). */
function race<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class MediahubProvider implements Provider {
  readonly type = 'mediahub';
  readonly name: string;
  readonly caps: { upload: boolean };
  /** The API client and its session: the upload engine reuses them. */
  readonly api: MediahubApi;
  private snap: { tree: Tree; startedAt: number } | undefined;
  private loading: Promise<Tree> | undefined;
  private readonly numbers: EntryNumbers;
  /** When our uploader last changed the catalog: passes started before it do not become the snapshot. */
  private changedAt = 0;

  constructor(
    private readonly cfg: SourceConfigOf<'mediahub'>,
    private readonly deps: MediahubProviderDeps,
  ) {
    this.name = cfg.name;
    this.api = new MediahubApi(cfg, { bounds: deps.net, meter: deps.meter });
    this.caps = { upload: !cfg.readOnly };
    this.numbers = new EntryNumbers({ log: deps.log, what: `mediahub source "${cfg.name}"` });
  }

  /** The uploader (upload.ts); its changes drop the listing snapshot, so new files list at once. */
  uploader(opts: Omit<MediahubUploaderOptions, 'name' | 'onChange'> = {}): MediahubUploader {
    return new MediahubUploader(this.api, { ...opts, name: this.name, onChange: () => {
      this.snap = undefined;
      this.changedAt = Date.now();
    } });
  }

  /** A fresh snapshot pass, or the one already under way. */
  private load(signal?: AbortSignal): Promise<Tree> {
    if (!this.loading) {
      const startedAt = Date.now();
      this.loading = (async () => {
        const records: MhFile[] = [];
        // The flat listing is one listing of the whole catalog: its entry cap bounds the records kept.
        for await (const f of this.api.listAll(this.deps.listPageSize ?? 1000, undefined, undefined, { log: this.deps.log, limits: this.deps.listing })) records.push(f);
        const tree = new Tree(records, this.numbers);
        if ((!this.snap || this.snap.startedAt <= startedAt) && startedAt >= this.changedAt) this.snap = { tree, startedAt };
        this.deps.log.debug({ source: this.name, records: tree.count, ms: Date.now() - startedAt }, 'mediahub catalog listed');
        return tree;
      })().finally(() => (this.loading = undefined));
    }
    return race(this.loading, signal);
  }

  private async tree(signal?: AbortSignal): Promise<Tree> {
    const maxAge = this.deps.snapshotMaxAgeMs ?? 5000;
    if (this.snap && Date.now() - this.snap.startedAt < maxAge) return this.snap.tree;
    return this.load(signal);
  }

  /** The folder node of a root/path/archive ref, with one fresh pass on a miss. */
  private async dir(ref: Ref, signal?: AbortSignal) {
    const calledAt = Date.now();
    let node = (await this.tree(signal)).get(ref);
    const snap = this.snap;
    if (!node && snap && snap.startedAt < calledAt && calledAt - snap.startedAt >= MISS_REFRESH_MIN_AGE_MS) {
      node = (await this.load(signal)).get(ref);
    }
    if (!node) throw new NotFoundError(`${this.name}: folder ${ref} not found`);
    return node;
  }

  async *list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry> {
    const p = parseRef(dir);
    if (p.kind === 'file' || p.kind === 'item') throw new FsError('ENOTDIR', `${this.name}: ${dir} is a file`);
    if (p.kind === 'bad') throw new NotFoundError(`${this.name}: no folder ${dir}`);
    const node = await this.dir(dir, signal);
    yield* [...node.children];
  }

  async stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry> {
    const p = parseRef(ref);
    switch (p.kind) {
      case 'root':
      case 'dir':
        return { ...(await this.dir(ref, signal)).entry };
      case 'file': {
        const f = await this.api.getFile(p.id, signal);
        if (f.type && f.type !== 'file') throw new NotFoundError(`${this.name}: ${ref} is no longer a file`);
        return fileEntry(f, this.numbers);
      }
      case 'archive': {
        const f = await this.api.getFile(p.id, signal);
        if (f.type !== 'archive') throw new NotFoundError(`${this.name}: ${ref} is no longer an archive`);
        return archiveEntry(f, this.numbers);
      }
      case 'item': {
        const f = await this.api.getFile(p.id, signal);
        const it = f.type === 'archive' ? itemEntries(f, this.numbers)[p.index] : undefined;
        if (!it) throw new NotFoundError(`${this.name}: archive item ${ref} not found`);
        return it;
      }
      default:
        throw new NotFoundError(`${this.name}: no entry ${ref}`);
    }
  }

  /** A file's or an archive's record `id`; archive items and the folders of the tree have none. */
  idOf(entry: RemoteEntry): string | undefined {
    const p = parseRef(entry.ref);
    return p.kind === 'file' || p.kind === 'archive' ? p.id : undefined;
  }

  /** `GET /files/{id}`: a file, an archive (a folder of its items) or a folder record. */
  async byId(id: string, signal?: AbortSignal): Promise<RemoteEntry> {
    const f = await this.api.getFile(id, signal);
    const type = (f.type ?? 'file').toLowerCase();
    if (type === 'file') return fileEntry(f);
    if (type === 'archive') return archiveEntry(f);
    if (type === 'folder') return folderEntry(f, this.numbers);
    throw new NotFoundError(`${this.name}: record ${id} is a ${f.type}, not shown in the mount`);
  }

  /** From the record (one `GET /files/{id}`) for files and archives; from the ref itself for folders. */
  async ancestry(entry: RemoteEntry, signal?: AbortSignal): Promise<Ref[]> {
    const p = parseRef(entry.ref);
    if (p.kind === 'dir') {
      const segs = p.ref.slice(2, -1).split('/');
      return segs.slice(0, -1).map((_, i) => `d:${segs.slice(0, i + 1).join('/')}/`);
    }
    if (p.kind !== 'file' && p.kind !== 'archive' && p.kind !== 'item') return [];
    const refs = ancestorRefs(await this.api.getFile(p.id, signal));
    return p.kind === 'item' ? [...refs, archiveRef(p.id)] : refs;
  }

  /** Throws UnavailableError when the entry is known (from the snapshot, or fetched) to be unreadable. */
  private async assertReadable(ref: Ref, fetch: boolean, signal?: AbortSignal): Promise<void> {
    const known = fetch ? await this.stat(ref, signal) : this.snap?.tree.files.get(ref);
    if (known?.unreadable) {
      this.deps.log.info({ source: this.name, ref, reason: known.unreadable.reason }, 'mediahub file not readable');
      throw new UnavailableError(known.unreadable.code, `${this.name}: ${known.unreadable.reason}`);
    }
  }

  async locate(obj: ObjectVersion, signal?: AbortSignal): Promise<SignedLocator> {
    const p = parseRef(obj.ref);
    if (p.kind !== 'file' && p.kind !== 'item') throw new FsError('EISDIR', `${this.name}: ${obj.ref} is not a file`);
    await this.assertReadable(obj.ref, false, signal);
    // Whole seconds, never later than our own urlTtl, and at least a second ahead.
    const nowSec = Math.ceil(Date.now() / 1000);
    const expirySec = Math.max(nowSec + 1, Math.floor((Date.now() + this.cfg.urlTtl) / 1000));
    let urls: string[];
    try {
      urls = await this.api.downloadUrls(p.id, expirySec, { redirect: p.kind === 'file' && this.deps.redirectDownloads, signal });
    } catch (e) {
      // A refused download of a file that is not ready: say why (the listing may have been older).
      if (e instanceof FsError && e.code === 'EIO' && !(e instanceof TransientError)) {
        await this.assertReadable(obj.ref, true, signal).catch((why: unknown) => {
          if (why instanceof UnavailableError) throw why;
        });
      }
      throw e;
    }
    const url = p.kind === 'item' ? urls[p.index] : urls[0];
    if (!url) throw new NotFoundError(`${this.name}: no download URL for ${obj.ref}`);
    // The version is the record's etag/md5 field or id/size/time: MediaHub's own listing, never an ETag
    // a storage GET was seen to carry, so downloads are compared only with each other (core/etag.ts).
    return { url, expiresAt: expirySec * 1000 };
  }

  async close(): Promise<void> {
    await this.api.close();
  }
}
