/**
 * An open remote file: one ObjectVersion, read through the block source with its own readahead.
 *
 * Invariants:
 *  - The handle reads exactly one ObjectVersion. If the remote object changes under it (StaleError),
 *    it switches to the new version only while it has served no bytes yet; otherwise the read fails
 *    with EIO: a reader never gets half-old, half-new data.
 *  - A 404 for a block of an open file means the object was deleted: its cached blocks still read
 *    (keyed by version, they are never another object's), a read needing others fails with EIO, and
 *    the parent's listing is forgotten so new lookups see the name gone.
 *  - Every read the kernel sends is noted once per attempt (page-cache bookkeeping, readahead,
 *    demotion of what a sequential stream left behind) before it is served.
 */
import type { BlockSource, ObjectVersion, Provider, Ref } from '../core/types.js';
import { FsError, NotFoundError, StaleError } from '../core/errors.js';
import type { Logger } from '../util/logger.js';
import { Readahead } from '../read/readahead.js';
import { readInto, readIntoCached } from '../read/object-reader.js';
import { isMp4Family, locateMoov } from '../read/media-prefetch.js';
import type { PageCacheVersions } from './page-cache-versions.js';

export interface RemoteFileDeps {
  blocks: BlockSource;
  log: Logger;
  pageCache: PageCacheVersions;
  readaheadMaxBytes: number;
  /** Smallest readahead top-up: the GET part size. */
  readaheadStepBytes?: number;
  /** The listing of folder `parentRef` of `source` is stale. */
  invalidateDir(source: string, parentRef: Ref): void;
}

export class RemoteFile {
  readonly kind = 'remote';
  /** Bytes served to the kernel so far (a changed object may replace `obj` only while this is 0). */
  private served = 0;
  private readonly readahead: Readahead;

  constructor(
    private readonly deps: RemoteFileDeps,
    private readonly provider: Provider,
    private obj: ObjectVersion,
    private readonly parentRef: Ref,
    readonly path: string,
  ) {
    this.readahead = new Readahead({ blockSize: deps.blocks.blockSize, maxWindow: deps.readaheadMaxBytes, step: deps.readaheadStepBytes });
  }

  /** At open: an MP4-family file (by its name) gets its head and moov box fetched in the background. */
  prefetchMedia(name: string): void {
    if (isMp4Family(name) && this.obj.size > this.deps.blocks.blockSize) void this.prefetchMoov();
  }

  /**
   * A number when the read could be answered at once (every block it touches in memory), else a
   * promise. Never throws: errors reject the promise.
   */
  read(into: Buffer, length: number, position: number): number | Promise<number> {
    this.noteRead(position, length);
    const n = readIntoCached(this.deps.blocks, this.obj, into, length, position);
    if (n === undefined) return this.readRemote(into, length, position);
    this.served += n;
    return n;
  }

  /** Fetch the head and the moov box of an MP4-family file before the player asks (media-prefetch.ts). */
  private async prefetchMoov(): Promise<void> {
    const obj = this.obj;
    const { blocks, log } = this.deps;
    try {
      const readAt = async (position: number, length: number) => {
        const buf = Buffer.allocUnsafe(length);
        const n = await readInto(blocks, obj, buf, length, position);
        return buf.subarray(0, n);
      };
      const moov = await locateMoov(readAt, obj.size);
      if (!moov) return;
      const bs = blocks.blockSize;
      blocks.prefetch(obj, Math.floor(moov.start / bs), Math.floor((moov.end - 1) / bs));
      log.debug({ path: this.path, moov }, 'prefetched the moov box');
    } catch (e) {
      log.debug({ path: this.path, err: e }, 'moov prefetch skipped');
    }
  }

  /** A read the kernel sent, about to be served from `obj` (also again after a switch to a new version). */
  private noteRead(position: number, length: number): void {
    const { blocks, pageCache } = this.deps;
    pageCache.served(this.path, this.obj.version);
    const ahead = this.readahead.onRead(position, length, this.obj.size);
    if (ahead) blocks.prefetch(this.obj, ahead.first, ahead.last);
    const passed = this.readahead.passed();
    if (passed) blocks.demote?.(this.obj, passed.first, passed.last);
  }

  /** A read some of whose blocks are not in memory; read() has already noted it. */
  private async readRemote(into: Buffer, length: number, position: number): Promise<number> {
    const { log } = this.deps;
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt > 0) this.noteRead(position, length);
        const n = await readInto(this.deps.blocks, this.obj, into, length, position);
        this.served += n;
        return n;
      } catch (e) {
        if (e instanceof NotFoundError) {
          this.deps.invalidateDir(this.obj.source, this.parentRef);
          log.warn({ path: this.path }, 'remote object removed while open; failing the read');
          throw new FsError('EIO', `${this.path} was removed remotely while open`, { cause: e });
        }
        if (!(e instanceof StaleError)) throw e;
        this.deps.invalidateDir(this.obj.source, this.parentRef);
        await this.deps.blocks.invalidate(this.obj.source, this.obj.ref);
        if (this.served > 0 || attempt > 0) {
          log.warn({ path: this.path }, 'remote object changed while open; failing the read');
          throw new FsError('EIO', `${this.path} changed remotely while open; reopen it`, { cause: e });
        }
        const fresh = await this.provider.stat(this.obj.ref);
        this.obj = { source: this.obj.source, ref: fresh.ref, version: fresh.version, size: fresh.size };
        this.readahead.reset();
        log.info({ path: this.path }, 'remote object changed before the first read; reading the new version');
      }
    }
  }
}
