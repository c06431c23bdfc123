/**
 * The filesystem core. Paths in, attributes and bytes out, FsErrors thrown; nothing here knows FUSE.
 *
 *   /                      the configured sources, as directories
 *   /<source>/<names…>     that source's tree, resolved through cached listings (dir-cache.ts)
 *
 * Invariants:
 *  - Every open handle reads exactly one ObjectVersion; if the remote object changes under it
 *    (StaleError) the handle switches to the new version only while it has served no bytes yet,
 *    otherwise the read fails with EIO: a reader never gets half-old, half-new data.
 *  - Writes are refused with EROFS until the upload engine exists (issue 4).
 */
import { constants } from 'node:fs';
import type { Attr, BlockSource, DirEntry, ObjectVersion, Provider, Ref, RemoteEntry, Vfs } from '../core/types.js';
import { FsError, NotFoundError, StaleError, UnavailableError } from '../core/errors.js';
import type { Logger } from '../util/logger.js';
import { Readahead } from '../read/readahead.js';
import { readInto } from '../read/object-reader.js';
import { isMp4Family, locateMoov } from '../read/media-prefetch.js';
import { DirCache } from './dir-cache.js';

const DIR_MODE = 0o40755;
const FILE_MODE = 0o100644;
const O_ACCMODE = 3;

export interface VfsOptions {
  providers: ReadonlyMap<string, Provider>;
  blocks: BlockSource;
  log: Logger;
  metadataTtlMs: number;
  /** Per-source override of the metadata TTL. */
  sourceTtlMs?: (source: string) => number | undefined;
  readaheadMaxBytes: number;
  maxRetryTimeMs: number;
}

type Resolved =
  | { kind: 'root' }
  | { kind: 'source'; provider: Provider }
  | { kind: 'entry'; provider: Provider; entry: RemoteEntry; parentRef: Ref };

interface FileHandle {
  provider: Provider;
  obj: ObjectVersion;
  parentRef: Ref;
  path: string;
  readahead: Readahead;
  served: number;
}

export class AssetVfs implements Vfs {
  private readonly dirs: DirCache;
  private readonly handles = new Map<number, FileHandle>();
  private nextFh = 1;
  private readonly startedAt = Date.now();

  constructor(private readonly o: VfsOptions) {
    this.dirs = new DirCache({ maxRetryTimeMs: o.maxRetryTimeMs });
  }

  private ttl(source: string): number {
    return this.o.sourceTtlMs?.(source) ?? this.o.metadataTtlMs;
  }

  private async resolve(path: string): Promise<Resolved> {
    const parts = path.split('/').filter((p) => p !== '');
    if (parts.length === 0) return { kind: 'root' };
    const provider = this.o.providers.get(parts[0]!);
    if (!provider) throw new NotFoundError(`no source named ${parts[0]}`);
    if (parts.length === 1) return { kind: 'source', provider };
    let dirRef: Ref = '';
    let entry: RemoteEntry | undefined;
    for (let i = 1; i < parts.length; i++) {
      if (entry && entry.kind !== 'dir') throw new FsError('ENOTDIR', `${parts.slice(0, i).join('/')} is not a directory`);
      if (entry) dirRef = entry.ref;
      const listing = await this.dirs.get(provider, dirRef, this.ttl(provider.name));
      entry = listing.get(parts[i]!);
      if (!entry) throw new NotFoundError(`${path} not found`);
    }
    return { kind: 'entry', provider, entry: entry!, parentRef: dirRef };
  }

  private dirAttr(mtimeMs = this.startedAt): Attr {
    return { kind: 'dir', size: 4096, mtimeMs, mode: DIR_MODE };
  }

  private entryAttr(e: RemoteEntry): Attr {
    return e.kind === 'dir'
      ? this.dirAttr(e.mtimeMs || this.startedAt)
      : { kind: 'file', size: e.size, mtimeMs: e.mtimeMs, mode: FILE_MODE };
  }

  async getattr(path: string): Promise<Attr> {
    const r = await this.resolve(path);
    return r.kind === 'entry' ? this.entryAttr(r.entry) : this.dirAttr();
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const r = await this.resolve(path);
    if (r.kind === 'root') return [...this.o.providers.keys()].map((name) => ({ name, attr: this.dirAttr() }));
    if (r.kind === 'entry' && r.entry.kind !== 'dir') throw new FsError('ENOTDIR', `${path} is not a directory`);
    const ref = r.kind === 'entry' ? r.entry.ref : '';
    const listing = await this.dirs.get(r.provider, ref, this.ttl(r.provider.name));
    return [...listing].map(([name, e]) => ({ name, attr: this.entryAttr(e) }));
  }

  async open(path: string, flags: number): Promise<number> {
    if ((flags & O_ACCMODE) !== constants.O_RDONLY || flags & constants.O_TRUNC) {
      throw new FsError('EROFS', `${path}: writing into the mount is not supported yet`);
    }
    const r = await this.resolve(path);
    if (r.kind !== 'entry') throw new FsError('EISDIR', `${path} is a directory`);
    const { entry, provider } = r;
    if (entry.kind === 'dir') throw new FsError('EISDIR', `${path} is a directory`);
    if (entry.unreadable) {
      this.o.log.warn({ path, reason: entry.unreadable.reason }, 'file is listed but cannot be read now');
      throw new UnavailableError(entry.unreadable.code, `${path}: ${entry.unreadable.reason}`);
    }
    const fh = this.nextFh++;
    if (this.nextFh > 0xfffffff0) this.nextFh = 1;
    this.handles.set(fh, {
      provider,
      obj: { source: provider.name, ref: entry.ref, version: entry.version, size: entry.size },
      parentRef: r.parentRef,
      path,
      readahead: new Readahead({ blockSize: this.o.blocks.blockSize, maxWindow: this.o.readaheadMaxBytes }),
      served: 0,
    });
    if (isMp4Family(entry.name) && entry.size > this.o.blocks.blockSize) void this.prefetchMoov(this.handles.get(fh)!);
    return fh;
  }

  /** Fetch the head and the moov box of an MP4-family file before the player asks (media-prefetch.ts). */
  private async prefetchMoov(h: FileHandle): Promise<void> {
    const obj = h.obj;
    try {
      const readAt = async (position: number, length: number) => {
        const buf = Buffer.allocUnsafe(length);
        const n = await readInto(this.o.blocks, obj, buf, length, position);
        return buf.subarray(0, n);
      };
      const moov = await locateMoov(readAt, obj.size);
      if (!moov) return;
      const bs = this.o.blocks.blockSize;
      this.o.blocks.prefetch(obj, Math.floor(moov.start / bs), Math.floor((moov.end - 1) / bs));
      this.o.log.debug({ path: h.path, moov }, 'prefetched the moov box');
    } catch (e) {
      this.o.log.debug({ path: h.path, err: e }, 'moov prefetch skipped');
    }
  }

  private handle(fh: number): FileHandle {
    const h = this.handles.get(fh);
    if (!h) throw new FsError('EBADF', `no open file with handle ${fh}`);
    return h;
  }

  async read(fh: number, into: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fh);
    for (let attempt = 0; ; attempt++) {
      try {
        const ahead = h.readahead.onRead(position, length, h.obj.size);
        if (ahead) this.o.blocks.prefetch(h.obj, ahead.first, ahead.last);
        const n = await readInto(this.o.blocks, h.obj, into, length, position);
        h.served += n;
        return n;
      } catch (e) {
        if (!(e instanceof StaleError)) throw e;
        await this.forgetObject(h);
        if (h.served > 0 || attempt > 0) {
          this.o.log.warn({ path: h.path }, 'remote object changed while open; failing the read');
          throw new FsError('EIO', `${h.path} changed remotely while open; reopen it`, { cause: e });
        }
        const fresh = await h.provider.stat(h.obj.ref);
        h.obj = { source: h.obj.source, ref: fresh.ref, version: fresh.version, size: fresh.size };
        h.readahead.reset();
        this.o.log.info({ path: h.path }, 'remote object changed before the first read; reading the new version');
      }
    }
  }

  private async forgetObject(h: FileHandle): Promise<void> {
    this.dirs.invalidate(h.obj.source, h.parentRef);
    await this.o.blocks.invalidate(h.obj.source, h.obj.ref);
  }

  async release(fh: number): Promise<void> {
    this.handles.delete(fh);
  }

  get openFiles(): number {
    return this.handles.size;
  }

  async statfs() {
    return { blockSize: 4096, blocks: 1 << 30, free: 1 << 29, files: 1 << 20 };
  }

  invalidate(path: string): void {
    const parts = path.split('/').filter((p) => p !== '');
    if (parts.length === 0) {
      this.dirs.clear();
      return;
    }
    this.dirs.invalidate(parts[0]!);
  }

  async close(): Promise<void> {
    this.handles.clear();
    this.dirs.clear();
  }
}
