/**
 * Nomad uploads (docs/providers.md#nomad): `upload/start` with chunkSize = our part size, each part PUT to its
 * presigned S3 URL and confirmed with `part/{id}/complete {etag}`, then `upload/{id}/complete`;
 * `upload/{id}/cancel` aborts. Folders: create-folder, PATCH (rename), move, DELETE.
 *
 * Invariants:
 *  - The server cuts the file into parts. We ask for chunkSize = partSize(size) and check every part's
 *    range against the bytes the engine hands us; a mismatch fails loudly rather than storing a file
 *    with bytes in the wrong places.
 *  - A part counts as sent only once the platform recorded its ETag (part/complete answered). An
 *    expired part URL (403) is replaced once from the upload query and the PUT retried.
 *  - Resume asks the upload query `GET /api/asset/upload/{id}` (GUESS: undocumented). 404 means the
 *    session is gone (a platform without that route also answers 404, and then every resume begins
 *    anew: slower, never wrong); parts without ETags in the answer make it 'unknown'.
 *  - complete() re-stats the asset through the provider, so the version it returns is the provider's
 *    RemoteEntry.version; remoteVersion() reads the same listing the provider serves.
 *  - Paths are remote names below the source root, resolved by listing (the provider's own list(), so
 *    names match what the mount shows). Folder ids are cached; a cached id that the platform no longer
 *    knows (404) drops the cache and the call is tried once more.
 *  - Folders missing below the deepest existing one go into `relativePath` and are made by Nomad at
 *    completion (sync of new local folders); the catalog root (buckets) takes no files or folders.
 *  - rmdir checks emptiness first (Nomad's DELETE of a folder is recursive); a file uploaded into the
 *    folder between that check and the DELETE would go with it.
 *  - rename over an existing file deletes that file first (POSIX replaces it; Nomad refuses taken
 *    names): not atomic, a crash in between loses the destination's old version.
 */
import { createHash } from 'node:crypto';
import type { Ref, RemoteEntry } from '../../core/types.js';
import { FsError, NotFoundError, TransientError } from '../../core/errors.js';
import { normalizeEtag } from '../../core/etag.js';
import type { CompletedUpload, ConfirmedPart, UploadTarget, Uploader } from '../../upload/types.js';
import { SessionLostError } from '../../upload/errors.js';
import { errorMessage } from '../common/api-client.js';
import type { NomadClient, NomadUploadPart, NomadUploadSession } from './api.js';
import { MAX_PARTS, partSizeFor } from '../common/part-size.js';
import { mapCache, retryOnceIfStale } from '../common/stale-retry.js';


/** What the uploader needs of the provider: its listing and stat (one truth for names and versions). */
export interface NomadTree {
  list(ref: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry>;
  stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry>;
}

export interface NomadUploaderOptions {
  /** The source root folder; without it the root lists buckets. */
  rootFolderId?: string;
  /** Fixed part size (tests); default 8 MiB, growing to keep ≤ 10,000 parts. At least 5 MiB (S3). */
  partSize?: number;
}

interface KnownPart {
  id: string;
  url: string;
  start: number;
  end: number;
}

export class NomadUploader implements Uploader {
  /**
   * Remote dir path → folder ref (positive answers only), keyed by the path's segments as JSON: a
   * folder named `AC/DC` and the folders `AC` then `DC` are different paths ('/'-joining merged them).
   */
  private readonly dirs = new Map<string, string>();
  /** Upload id → part number → where it goes (fresh from start or the upload query). */
  private readonly sessions = new Map<string, { assetId?: string; parts: Map<number, KnownPart> }>();
  private readonly refreshing = new Map<string, Promise<Map<number, KnownPart>>>();

  constructor(
    private readonly client: NomadClient,
    private readonly tree: NomadTree,
    private readonly opts: NomadUploaderOptions = {},
  ) {}

  partSize(size: number): number {
    return partSizeFor(size, MAX_PARTS.s3, this.opts.partSize);
  }

  /** Holds nothing of its own (the provider owns the clients): nothing to release. */
  close(): void {}

  // ---- paths -------------------------------------------------------------------------------------

  /** The platform id of a folder ref ('' = the source root). */
  private idOf(ref: Ref): string | undefined {
    return ref === '' ? this.opts.rootFolderId : ref;
  }

  private async child(dir: Ref, name: string, signal?: AbortSignal): Promise<RemoteEntry | undefined> {
    for await (const e of this.tree.list(dir, signal)) if (e.name === name) return e;
    return undefined;
  }

  /** The ref of the folder at `path`, undefined when a segment is missing; ENOTDIR through a file. */
  private async dirRef(path: readonly string[], signal?: AbortSignal): Promise<Ref | undefined> {
    let ref: Ref = '';
    for (let i = 0; i < path.length; i++) {
      const key = JSON.stringify(path.slice(0, i + 1));
      const hit = this.dirs.get(key);
      if (hit !== undefined) {
        ref = hit;
        continue;
      }
      const e = await this.child(ref, path[i]!, signal);
      if (!e) return undefined;
      if (e.kind !== 'dir') throw new FsError('ENOTDIR', `nomad: "${path.slice(0, i + 1).join('/')}" is a file, not a folder`);
      this.dirs.set(key, e.ref);
      ref = e.ref;
    }
    return ref;
  }

  private async entry(path: readonly string[], signal?: AbortSignal): Promise<RemoteEntry | undefined> {
    const parent = await this.dirRef(path.slice(0, -1), signal);
    const name = path.at(-1);
    return parent === undefined || name === undefined ? undefined : this.child(parent, name, signal);
  }

  /** Runs `fn`, once more with the folder-id cache forgotten when a cached id went stale (common/stale-retry.ts). */
  private fresh<T>(fn: () => Promise<T>): Promise<T> {
    return retryOnceIfStale(mapCache(this.dirs), fn);
  }

  private noRoot(what: string): never {
    throw new FsError('EPERM', `nomad: ${what}: the catalog root holds buckets only (set rootFolderId to write at the top)`);
  }

  // ---- upload ------------------------------------------------------------------------------------

  async begin(t: UploadTarget, size: number, signal?: AbortSignal): Promise<string> {
    const name = t.path.at(-1);
    if (!name) throw new FsError('EINVAL', 'nomad: an upload needs a file name');
    return this.fresh(async () => {
      // The deepest existing folder is the parentId; the folders below it travel in relativePath.
      const dirs = t.path.slice(0, -1);
      let depth = dirs.length;
      let parent = await this.dirRef(dirs, signal);
      while (parent === undefined && depth > 0) parent = await this.dirRef(dirs.slice(0, --depth), signal);
      const parentId = this.idOf(parent ?? '');
      if (!parentId) this.noRoot(`cannot upload ${t.path.join('/')}`);
      const s = await this.client.startUpload(
        {
          displayName: name, relativePath: [...dirs.slice(depth), name].join('/'), parentId, contentLength: size, chunkSize: this.partSize(size),
          uploadOverwriteOption: 'Replace', existingAssetId: null, languageId: null,
        },
        signal,
      );
      if (!s?.id) throw new FsError('EIO', 'nomad: upload/start answered no upload id');
      this.sessions.set(s.id, { assetId: s.assetId, parts: partsOf(s) });
      return s.id;
    });
  }

  /** Fresh part URLs from the upload query (one request at a time per upload); SessionLostError on 404. */
  private refresh(uploadId: string, signal?: AbortSignal): Promise<Map<number, KnownPart>> {
    let p = this.refreshing.get(uploadId);
    if (!p) {
      p = this.client
        .getUpload(uploadId, signal)
        .then((s) => {
          const parts = partsOf(s);
          this.sessions.set(uploadId, { assetId: s?.assetId ?? this.sessions.get(uploadId)?.assetId, parts });
          return parts;
        }, (e: unknown) => {
          if (e instanceof NotFoundError) throw new SessionLostError(`nomad: upload ${uploadId} is gone (${e.message})`);
          throw e;
        })
        .finally(() => this.refreshing.delete(uploadId));
      this.refreshing.set(uploadId, p);
    }
    return p;
  }

  async confirmed(_t: UploadTarget, uploadId: string, signal?: AbortSignal): Promise<ConfirmedPart[] | undefined | 'unknown'> {
    let s: NomadUploadSession;
    try {
      s = await this.client.getUpload(uploadId, signal);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      if (e instanceof TransientError || !(e instanceof FsError) || e.code === 'EACCES') throw e;
      return 'unknown'; // the platform cannot answer this question
    }
    this.sessions.set(uploadId, { assetId: s?.assetId, parts: partsOf(s) });
    const done = (s?.parts ?? []).filter((p) => p.isCompleted);
    if (done.some((p) => !p.etag)) return 'unknown';
    return done.map((p) => ({ number: p.partNumber, etag: normalizeEtag(p.etag), size: p.endingPosition - p.startingPosition + 1 }));
  }

  async part(t: UploadTarget, uploadId: string, number: number, data: Buffer, signal?: AbortSignal): Promise<string> {
    let parts = this.sessions.get(uploadId)?.parts ?? (await this.refresh(uploadId, signal));
    let p = parts.get(number);
    if (!p) throw new FsError('EIO', `nomad: upload ${uploadId} of ${t.path.join('/')} has no part ${number}`);
    if (p.end - p.start + 1 !== data.length) {
      throw new FsError('EIO', `nomad: part ${number} of ${t.path.join('/')} covers bytes ${p.start}–${p.end} on the platform, but ${data.length} bytes were given (the platform cut the file differently)`);
    }
    let r = await this.client.putPart(p.url, data, signal);
    if (r.status === 403) {
      // Presigned part URLs expire: get fresh ones and try once more.
      parts = await this.refresh(uploadId, signal);
      p = parts.get(number) ?? p;
      r = await this.client.putPart(p.url, data, signal);
    }
    const what = `nomad: PUT part ${number} of ${t.path.join('/')}`;
    if (r.status === 404 && /NoSuchUpload/.test(r.text)) throw new SessionLostError(`${what}: the storage upload is gone`);
    if (r.status === 408 || r.status === 429 || r.status >= 500) throw new TransientError(`${what}: HTTP ${r.status}: ${errorMessage(r.text)}`, { status: r.status });
    if (r.status < 200 || r.status >= 300) throw new FsError('EIO', `${what}: HTTP ${r.status}: ${errorMessage(r.text)}`);
    if (!r.etag) throw new FsError('EIO', `${what}: the storage answered no ETag`);
    try {
      await this.client.completePart(p.id, r.etag, signal);
    } catch (e) {
      if (e instanceof NotFoundError) throw new SessionLostError(`nomad: upload ${uploadId} is gone (${e.message})`);
      throw e;
    }
    return normalizeEtag(r.etag);
  }

  async complete(t: UploadTarget, uploadId: string, parts: readonly ConfirmedPart[], info: { size: number }, signal?: AbortSignal): Promise<CompletedUpload> {
    // Every journaled part must be the one the platform recorded; anything else means a new session.
    let s: NomadUploadSession;
    try {
      s = await this.client.getUpload(uploadId, signal);
    } catch (e) {
      if (e instanceof NotFoundError) throw new SessionLostError(`nomad: upload ${uploadId} is gone (${e.message})`);
      throw e;
    }
    const ours = new Map(parts.map((p) => [p.number, p.etag]));
    for (const p of s?.parts ?? []) {
      const etag = ours.get(p.partNumber);
      if (!p.isCompleted || etag === undefined || (p.etag && normalizeEtag(p.etag) !== etag)) {
        throw new SessionLostError(`nomad: part ${p.partNumber} of ${t.path.join('/')} is not recorded as we sent it`);
      }
    }
    let done: Awaited<ReturnType<NomadClient['completeUpload']>>;
    try {
      done = await this.client.completeUpload(uploadId, signal);
    } catch (e) {
      if (e instanceof NotFoundError) throw new SessionLostError(`nomad: upload ${uploadId} is gone (${e.message})`);
      throw e;
    }
    const assetId = done?.items?.[0]?.id ?? s?.assetId ?? this.sessions.get(uploadId)?.assetId;
    this.sessions.delete(uploadId);
    const e = assetId ? await this.tree.stat(assetId, signal) : await this.entry(t.path, signal);
    if (!e || e.kind !== 'file') throw new FsError('EIO', `nomad: ${t.path.join('/')} is not a file after its upload`);
    if (e.size !== info.size) throw new FsError('EIO', `nomad: ${t.path.join('/')} has ${e.size} bytes after its upload, expected ${info.size}`);
    const m = /^([0-9a-f]{32})-(\d+)$/i.exec(e.version);
    if (m && Number(m[2]) === parts.length && multipartEtag(parts) !== m[1]!.toLowerCase()) {
      throw new FsError('EIO', `nomad: ${t.path.join('/')}: the stored object's ETag does not match the parts we sent`);
    }
    return { version: e.version, size: e.size };
  }

  async abort(_t: UploadTarget, uploadId: string): Promise<void> {
    this.sessions.delete(uploadId);
    await this.client.cancelUpload(uploadId, 'cancelled by assetfs').catch(() => undefined);
  }

  async remoteVersion(t: UploadTarget, signal?: AbortSignal): Promise<string | undefined> {
    let e: RemoteEntry | undefined;
    try {
      e = await this.entry(t.path, signal);
    } catch (err) {
      if (err instanceof FsError && err.code === 'ENOTDIR') return undefined;
      throw err;
    }
    return e?.kind === 'file' ? e.version : undefined;
  }

  // ---- folders and names -------------------------------------------------------------------------

  async mkdir(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    const name = t.path.at(-1);
    if (!name) throw new FsError('EEXIST', 'nomad: the source root exists');
    await this.fresh(async () => {
      const parent = await this.dirRef(t.path.slice(0, -1), signal);
      if (parent === undefined) throw new NotFoundError(`nomad: the parent of ${t.path.join('/')} does not exist`);
      const parentId = this.idOf(parent);
      if (!parentId) this.noRoot(`cannot create ${name}`);
      await this.client.createFolder(parentId, name, signal);
    });
  }

  async rmdir(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    const e = await this.entry(t.path, signal);
    if (!e) throw new NotFoundError(`nomad: ${t.path.join('/')} not found`);
    if (e.kind !== 'dir') throw new FsError('ENOTDIR', `nomad: ${t.path.join('/')} is not a folder`);
    if (t.path.length === 1 && !this.opts.rootFolderId) this.noRoot(`cannot delete the bucket ${e.name}`);
    for await (const _ of this.tree.list(e.ref, signal)) throw new FsError('ENOTEMPTY', `nomad: ${t.path.join('/')} is not empty`);
    await this.client.deleteAsset(e.ref, signal);
    this.dirs.clear();
  }

  async remove(t: UploadTarget, signal?: AbortSignal): Promise<void> {
    const e = await this.entry(t.path, signal);
    if (!e) throw new NotFoundError(`nomad: ${t.path.join('/')} not found`);
    if (e.kind === 'dir') throw new FsError('EISDIR', `nomad: ${t.path.join('/')} is a folder`);
    await this.client.deleteAsset(e.ref, signal);
  }

  async rename(from: UploadTarget, to: UploadTarget, signal?: AbortSignal): Promise<void> {
    const name = to.path.at(-1);
    if (!name) throw new FsError('EINVAL', 'nomad: cannot rename onto the source root');
    const src = await this.entry(from.path, signal);
    if (!src) throw new NotFoundError(`nomad: ${from.path.join('/')} not found`);
    if (JSON.stringify(from.path) === JSON.stringify(to.path)) return;
    if (from.path.length === 1 && !this.opts.rootFolderId) this.noRoot(`cannot rename the bucket ${src.name}`);
    const fromParent = await this.dirRef(from.path.slice(0, -1), signal);
    const toParent = await this.dirRef(to.path.slice(0, -1), signal);
    if (toParent === undefined) throw new NotFoundError(`nomad: the folder of ${to.path.join('/')} does not exist`);
    const destId = this.idOf(toParent);
    if (!destId) this.noRoot(`cannot move ${src.name} to the top`);
    const dst = await this.child(toParent, name, signal);
    if (dst && dst.ref !== src.ref) {
      if (src.kind === 'file' && dst.kind === 'dir') throw new FsError('EISDIR', `nomad: ${to.path.join('/')} is a folder`);
      if (src.kind === 'dir' && dst.kind === 'file') throw new FsError('ENOTDIR', `nomad: ${to.path.join('/')} is a file`);
      if (dst.kind === 'dir') for await (const _ of this.tree.list(dst.ref, signal)) throw new FsError('ENOTEMPTY', `nomad: ${to.path.join('/')} is not empty`);
      await this.client.deleteAsset(dst.ref, signal);
    }
    if (fromParent === toParent) await this.client.renameAsset(src.ref, name, signal);
    else await this.client.moveAsset(src.ref, destId, name === src.name ? null : name, signal);
    this.dirs.clear();
  }
}

function partsOf(s: NomadUploadSession | undefined): Map<number, KnownPart> {
  const out = new Map<number, KnownPart>();
  for (const p of (s?.parts ?? []) as NomadUploadPart[]) {
    if (p && typeof p.id === 'string' && typeof p.url === 'string') out.set(Number(p.partNumber), { id: p.id, url: p.url, start: Number(p.startingPosition), end: Number(p.endingPosition) });
  }
  return out;
}

/** S3's ETag of a multipart object: MD5 over the binary MD5s of its parts (then `-<count>`). */
function multipartEtag(parts: readonly ConfirmedPart[]): string {
  const h = createHash('md5');
  for (const p of [...parts].sort((a, b) => a.number - b.number)) h.update(Buffer.from(p.etag, 'hex'));
  return h.digest('hex');
}
