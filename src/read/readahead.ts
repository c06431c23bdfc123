/**
 * Per-handle sequential-read detector (after mountpoint-s3's prefetcher): it decides which blocks to
 * prefetch, and never fetches anything itself.
 *
 * Invariants:
 *  - A stream starts with a read at offset 0, or with a read that continues where the previous one
 *    ended. Its window starts at `initialWindow` and doubles with each new request, up to `maxWindow`.
 *  - A read inside what is already requested (a small forward seek, or the kernel's slightly out-of-order
 *    reads) keeps the stream. A backward seek, or a jump beyond what is requested, ends it: random
 *    reads then fetch only the blocks they touch.
 *  - The pipeline stays full: once the reader has consumed one step (a GET part, at most half the
 *    window) of what lay ahead, the window is topped up again. Each request is therefore at least a
 *    step long (part-sized ranged GETs, not a trickle of blocks), and about a window of bytes is always
 *    requested ahead of the reader. (Waiting until half the window is consumed, then asking for half
 *    a window at once, leaves the network idle while the reader drains it: measured at 0.3× curl.)
 *  - Requested ranges never overlap and never pass the end of the object.
 *  - passed() names each block once per stream, after the stream has read the whole block and moved
 *    on by more than BACKWARD_TOLERANCE (so the kernel's late out-of-order reads still find it).
 */
import { DEFAULT_PART_BYTES, blockIndex } from '../core/blocks.js';

export interface ReadaheadOptions {
  blockSize: number;
  /** Largest window in bytes. Default 64 MiB. */
  maxWindow?: number;
  /** Bytes beyond the read that a new stream prefetches. Default 1 MiB (at least one block). */
  initialWindow?: number;
  /** Smallest top-up once streaming (the GET part size). Default DEFAULT_PART_BYTES, capped at half the window. */
  step?: number;
}

/**
 * How far back of the previous read's end a read may start and still count as the same stream. The
 * kernel sends a readahead window's requests in parallel, and they reach us out of order: with
 * read_ahead_kb raised to 1 MiB (sysfs), 256 KiB here turned most of a sequential read into "random"
 * demand reads, at 0.6 × the throughput.
 */
const BACKWARD_TOLERANCE = 2 * 1024 * 1024;

export class Readahead {
  private readonly blockSize: number;
  private readonly maxWindow: number;
  private readonly initialWindow: number;
  private readonly step: number;
  /** End of the previous read, or -1 before the first read. */
  private lastEnd = -1;
  /** Current window in bytes; 0 when not streaming. */
  private window = 0;
  /** Exclusive end of the bytes already requested (block-aligned, or the object size). */
  private requestedEnd = 0;
  /** First block the current stream may still report as passed. */
  private passedFrom = 0;

  constructor(opts: ReadaheadOptions) {
    if (!(opts.blockSize > 0)) throw new Error('blockSize must be positive');
    this.blockSize = opts.blockSize;
    this.initialWindow = Math.max(opts.initialWindow ?? 1024 * 1024, opts.blockSize);
    this.maxWindow = Math.max(opts.maxWindow ?? 64 * 1024 * 1024, this.initialWindow);
    this.step = Math.max(opts.step ?? DEFAULT_PART_BYTES, opts.blockSize);
  }

  /** Record a read; returns the blocks to prefetch now, if any (inclusive indices). */
  onRead(position: number, length: number, size: number): { first: number; last: number } | undefined {
    const end = Math.min(position + length, size);
    if (length <= 0 || position >= end) return undefined;
    const previousEnd = this.lastEnd;

    if (this.window > 0) {
      const inStream = position >= previousEnd - BACKWARD_TOLERANCE && position <= Math.max(previousEnd, this.requestedEnd);
      if (!inStream) return this.stop(end);
      this.lastEnd = Math.max(previousEnd, end);
      if (this.requestedEnd - this.lastEnd > this.window - Math.min(this.step, this.window / 2)) return undefined;
      this.window = Math.min(this.window * 2, this.maxWindow);
      return this.request(position, this.lastEnd + this.window, size);
    }

    this.lastEnd = end;
    if (position !== 0 && position !== previousEnd) return undefined;
    this.window = this.initialWindow;
    this.requestedEnd = 0;
    this.passedFrom = Math.ceil(position / this.blockSize);
    return this.request(position, end + this.window, size);
  }

  /**
   * Blocks the stream has read whole and left behind since the last call (inclusive indices), if any:
   * a sequential reader will not come back for them, and the kernel's page cache holds their bytes.
   */
  passed(): { first: number; last: number } | undefined {
    if (this.window === 0) return undefined;
    const upTo = Math.floor((this.lastEnd - BACKWARD_TOLERANCE) / this.blockSize);
    if (upTo <= this.passedFrom) return undefined;
    const first = this.passedFrom;
    this.passedFrom = upTo;
    return { first, last: upTo - 1 };
  }

  /** Forget the stream (the object changed, or the handle was reopened). */
  reset(): void {
    this.lastEnd = -1;
    this.window = 0;
    this.requestedEnd = 0;
  }

  private stop(end: number): undefined {
    this.window = 0;
    this.requestedEnd = 0;
    this.lastEnd = end;
    return undefined;
  }

  /** Blocks covering [max(from, requestedEnd), to), clamped to the object; advances requestedEnd. */
  private request(from: number, to: number, size: number): { first: number; last: number } | undefined {
    const start = Math.max(from, this.requestedEnd);
    const stop = Math.min(to, size);
    if (start >= stop) return undefined;
    const first = blockIndex(start, this.blockSize);
    const last = blockIndex(stop - 1, this.blockSize);
    this.requestedEnd = Math.min((last + 1) * this.blockSize, size);
    return { first, last };
  }
}

/**
 * The readahead window and prefetch budget a memory tier of `memoryBytes` can hold. Prefetched blocks
 * wait in the memory tier until they are read, so a window larger than the tier evicts them before the
 * reader gets there, and every block is read twice (measured: a 64 MiB tier with the 64 MiB default
 * window streamed a disk-cached file at 0.4 × the speed of a 640 MiB tier). A window is kept to a
 * quarter of the tier (several streams fit), and all prefetch in flight to half of it.
 */
export function fitReadahead(r: { max: number; budget: number }, memoryBytes: number): { max: number; budget: number } {
  return { max: Math.min(r.max, Math.floor(memoryBytes / 4)), budget: Math.min(r.budget, Math.floor(memoryBytes / 2)) };
}
