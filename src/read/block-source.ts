/**
 * Blocks on demand: the cache, else one ranged GET on a signed locator, shared by every reader.
 *
 * Invariants:
 *  - Single flight: a block is fetched at most once at a time. A block being fetched, on demand or by
 *    prefetch, is in `inflight` from the moment the fetch is decided (synchronously) until it is in the
 *    cache, so a reader either joins that fetch or finds the block cached.
 *  - Prefetch turns runs of consecutive missing blocks into one GET each (≤ partSize), runs in parallel;
 *    the run's Buffer is split into subarray views (no copy). Prefetched bytes in flight never exceed
 *    `prefetchBudgetBytes`: over budget, prefetch skips blocks rather than wait. Demand reads are never
 *    bounded by it.
 *  - Errors: ExpiredError → the locator is forgotten and re-minted (≤ MAX_REMINTS per fetch);
 *    TransientError → retried by the pacer for up to maxRetryTimeMs, then rethrown; StaleError → never
 *    retried: the object's blocks and locators are dropped and the error rethrown (the VFS re-stats).
 *  - A locator with `rangeable: false` (the server always sends the whole object) costs one whole
 *    download per object version at a time, streamed into blocks (whole-stream.ts).
 *  - A failed fetch leaves nothing behind: its blocks leave `inflight` before their waiters hear of it,
 *    and a demand reader that had joined a failed prefetch tries once more with its own fetch.
 */
import type { BlockCache, BlockSource, ByteRange, ObjectVersion, Progress, Provider, Ref, SignedLocator, Transport } from '../core/types.js';
import { blockCount, blockRange } from '../core/blocks.js';
import { ExpiredError, FsError, StaleError, TransientError } from '../core/errors.js';
import { retry } from '../util/pacer.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { abortable, type LocatorCache } from './locator-cache.js';
import { WholeObjectStreams } from './whole-stream.js';

/** Re-mints of a locator refused with 401/403 within one fetch, before the ExpiredError is final. */
const MAX_REMINTS = 3;

export interface NetworkBlockSourceOptions {
  cache: BlockCache;
  transport: Transport;
  locators: LocatorCache;
  providerFor(source: string): Provider;
  /** Bytes per ranged GET when several blocks go together. Default 8 MiB. */
  partSize?: number;
  /** How long transient faults are retried before a read fails. */
  maxRetryTimeMs: number;
  /** Global cap on prefetched bytes in flight. Default 256 MiB. */
  prefetchBudgetBytes?: number;
  /** First backoff step of the pacer. Default 100 ms. */
  retryBaseDelayMs?: number;
  log?: Logger;
}

export interface BlockSourceStats {
  /** Ranged GETs issued, retries included. */
  readonly requests: number;
  readonly bytesFetched: number;
  readonly retries: number;
  readonly remints: number;
  readonly prefetchedBlocks: number;
  /** Blocks a prefetch left out because the budget was spent. */
  readonly prefetchSkippedBlocks: number;
  readonly inflightBlocks: number;
  readonly prefetchBytesInFlight: number;
}

/** Bytes fetched for a run: `data` starts at byte `offset` of the object. */
interface Fetched {
  readonly data: Buffer;
  readonly offset: number;
}

interface Pending {
  readonly promise: Promise<Buffer>;
  resolve(block: Buffer): void;
  reject(e: unknown): void;
  /** Started by prefetch (so a joined demand reader may retry on its failure). */
  readonly prefetch: boolean;
  /** Bytes held against the prefetch budget until the block settles. */
  budgetBytes: number;
}

const blockKey = (obj: ObjectVersion, index: number) => `${obj.source}\0${obj.ref}\0${obj.version}\0${index}`;

export class NetworkBlockSource implements BlockSource {
  readonly blockSize: number;
  private readonly partSize: number;
  private readonly budget: number;
  private readonly log: Logger;
  private readonly inflight = new Map<string, Pending>();
  private readonly whole: WholeObjectStreams;
  private prefetchBytes = 0;
  private counters = { requests: 0, bytesFetched: 0, retries: 0, remints: 0, prefetchedBlocks: 0, prefetchSkippedBlocks: 0 };

  constructor(private readonly o: NetworkBlockSourceOptions) {
    this.blockSize = o.cache.blockSize;
    this.partSize = Math.max(o.partSize ?? 8 * 1024 * 1024, this.blockSize);
    this.budget = o.prefetchBudgetBytes ?? 256 * 1024 * 1024;
    this.log = o.log ?? silentLogger;
    this.whole = new WholeObjectStreams({
      cache: o.cache,
      transport: o.transport,
      claimed: (obj, index) => this.inflight.has(blockKey(obj, index)),
      onRequest: () => this.counters.requests++,
      onBytes: (n) => (this.counters.bytesFetched += n),
    });
  }

  async readBlock(obj: ObjectVersion, index: number, signal?: AbortSignal): Promise<Buffer> {
    const { start, end } = this.rangeOf(obj, index);
    const key = blockKey(obj, index);
    for (let joinedFailedPrefetch = false; ; ) {
      let pending = this.inflight.get(key);
      if (!pending) {
        const cached = await this.o.cache.get(obj, index);
        if (cached && cached.length === end - start) return cached;
        // The cache lookup awaited: someone may have started this block meanwhile.
        pending = this.inflight.get(key) ?? this.startDemandFetch(obj, index);
      }
      try {
        return await (signal ? abortable(pending.promise, signal) : pending.promise);
      } catch (e) {
        const retryOwn = pending.prefetch && !joinedFailedPrefetch && !(e instanceof StaleError) && !signal?.aborted;
        if (!retryOwn) throw e;
        joinedFailedPrefetch = true;
      }
    }
  }

  prefetch(obj: ObjectVersion, first: number, last: number): void {
    const from = Math.max(0, first);
    const to = Math.min(last, blockCount(obj.size, this.blockSize) - 1);
    const wanted: Array<{ index: number; pending: Pending }> = [];
    for (let index = from; index <= to; index++) {
      if (this.inflight.has(blockKey(obj, index))) continue;
      const { start, end } = blockRange(index, this.blockSize, obj.size);
      if (this.prefetchBytes + (end - start) > this.budget) {
        this.counters.prefetchSkippedBlocks += to - index + 1;
        break;
      }
      this.prefetchBytes += end - start;
      this.o.cache.reserve?.(obj, index, end - start);
      wanted.push({ index, pending: this.register(obj, index, true, end - start) });
    }
    if (wanted.length === 0) return;
    this.counters.prefetchedBlocks += wanted.length;
    void this.prefetchMissing(obj, wanted).catch((e: unknown) => {
      this.log.warn({ err: e, source: obj.source }, 'prefetch failed unexpectedly');
    });
  }

  async invalidate(source: string, ref: Ref): Promise<void> {
    this.o.locators.invalidateRef(source, ref);
    await this.o.cache.dropObject(source, ref);
  }

  stats(): BlockSourceStats {
    return { ...this.counters, inflightBlocks: this.inflight.size, prefetchBytesInFlight: this.prefetchBytes };
  }

  /**
   * Blocks already cached settle from the cache; the rest go out as runs of consecutive blocks.
   * The lookups run in parallel but are taken in order, and a cached block is settled as soon as its
   * own lookup answers: no block is held while waiting on another's I/O (the memory tier recycles
   * the buffers of evicted disk-read blocks, see memory-cache.ts).
   */
  private async prefetchMissing(obj: ObjectVersion, wanted: Array<{ index: number; pending: Pending }>): Promise<void> {
    const lookups = wanted.map(({ index }) => this.o.cache.get(obj, index).catch(() => undefined));
    const maxBlocks = Math.max(1, Math.floor(this.partSize / this.blockSize));
    let run: Array<{ index: number; pending: Pending }> = [];
    const flush = () => {
      if (run.length > 0) void this.fetchRun(obj, run);
      run = [];
    };
    for (let i = 0; i < wanted.length; i++) {
      const item = wanted[i]!;
      const block = await lookups[i];
      const { start, end } = this.rangeOf(obj, item.index);
      if (block && block.length === end - start) {
        this.settle(obj, item.index, item.pending, block, false);
        continue;
      }
      const previous = run[run.length - 1];
      if (previous && (previous.index !== item.index - 1 || run.length >= maxBlocks)) flush();
      run.push(item);
    }
    flush();
  }

  private startDemandFetch(obj: ObjectVersion, index: number): Pending {
    const pending = this.register(obj, index, false);
    void this.fetchRun(obj, [{ index, pending }]);
    return pending;
  }

  private register(obj: ObjectVersion, index: number, prefetch: boolean, budgetBytes = 0): Pending {
    let resolve!: (b: Buffer) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<Buffer>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Waiters see the rejection; a prefetch nobody waits for must not be an unhandled rejection.
    promise.catch(() => undefined);
    const pending: Pending = { promise, resolve, reject, prefetch, budgetBytes };
    this.inflight.set(blockKey(obj, index), pending);
    return pending;
  }

  /**
   * One GET for consecutive blocks; each block is cached and its waiters answered as the run lands.
   * When the GET brought the whole object (a server that ignores Range), the other blocks are cached too.
   */
  private async fetchRun(obj: ObjectVersion, run: Array<{ index: number; pending: Pending }>): Promise<void> {
    const first = run[0]!.index;
    const last = run[run.length - 1]!.index;
    const range: ByteRange = { start: this.rangeOf(obj, first).start, end: this.rangeOf(obj, last).end };
    // Blocks are answered as soon as their bytes have arrived, not when the whole run has: with several
    // runs in flight the reader would otherwise wait for a whole part before each one (pipeline bubbles).
    const settled = new Set<number>();
    const onProgress = (data: Buffer, filled: number) => {
      for (const { index, pending } of run) {
        if (settled.has(index)) continue;
        const { start, end } = this.rangeOf(obj, index);
        if (end - range.start > filled) break;
        settled.add(index);
        this.settle(obj, index, pending, data.subarray(start - range.start, end - range.start), true);
      }
    };
    let fetched: Fetched;
    try {
      fetched = await this.fetchRange(obj, range, onProgress);
    } catch (e) {
      for (const { index, pending } of run) if (!settled.has(index)) this.fail(obj, index, pending, e);
      const level = e instanceof StaleError ? 'info' : 'warn';
      this.log[level]({ err: e, source: obj.source, blocks: [first, last], prefetch: run[0]!.pending.prefetch }, 'block fetch failed');
      return;
    }
    const view = (index: number) => {
      const { start, end } = this.rangeOf(obj, index);
      return fetched.data.subarray(start - fetched.offset, end - fetched.offset);
    };
    for (const { index, pending } of run) if (!settled.has(index)) this.settle(obj, index, pending, view(index), true);
    if (fetched.data.length === range.end - range.start) return;
    const count = blockCount(obj.size, this.blockSize);
    for (let index = 0; index < count; index++) {
      if (index >= first && index <= last) continue;
      if (this.inflight.has(blockKey(obj, index))) continue;
      this.o.cache.put(obj, index, view(index)).catch(() => undefined);
    }
  }

  /** Answer a block's waiters, cache it (when fetched), and only then let it leave `inflight`. */
  private settle(obj: ObjectVersion, index: number, pending: Pending, block: Buffer, store: boolean): void {
    pending.resolve(block);
    this.releaseBudget(pending);
    const key = blockKey(obj, index);
    const done = () => {
      if (this.inflight.get(key) === pending) this.inflight.delete(key);
    };
    if (!store) return done();
    this.o.cache.put(obj, index, block).then(done, (e: unknown) => {
      this.log.debug({ err: e }, 'cache put failed');
      done();
    });
  }

  private fail(obj: ObjectVersion, index: number, pending: Pending, e: unknown): void {
    const key = blockKey(obj, index);
    if (pending.prefetch) this.o.cache.unreserve?.(obj, index);
    if (this.inflight.get(key) === pending) this.inflight.delete(key);
    this.releaseBudget(pending);
    pending.reject(e);
  }

  private releaseBudget(pending: Pending): void {
    this.prefetchBytes -= pending.budgetBytes;
    pending.budgetBytes = 0;
  }

  /**
   * Bytes [range.start, range.end) of `obj` (or all of it, from a locator that cannot do ranges),
   * re-locating on expiry and retrying transient faults.
   */
  private async fetchRange(obj: ObjectVersion, range: ByteRange, onProgress?: Progress): Promise<Fetched> {
    const provider = this.o.providerFor(obj.source);
    let remints = 0;
    try {
      return await retry(
        async () => {
          for (;;) {
            const loc = await this.o.locators.get(provider, obj);
            try {
              if (loc.rangeable === false) return await this.fetchFromWhole(obj, loc, range, onProgress);
              this.counters.requests++;
              const data = await this.o.transport.readRange(loc, range, obj, undefined, onProgress);
              this.counters.bytesFetched += data.length;
              return { data, offset: range.start };
            } catch (e) {
              if (!(e instanceof ExpiredError) || remints >= MAX_REMINTS) throw e;
              remints++;
              this.counters.remints++;
              this.o.locators.invalidate(obj, loc);
              provider.refused?.(obj, loc);
            }
          }
        },
        {
          maxTimeMs: this.o.maxRetryTimeMs,
          baseDelayMs: this.o.retryBaseDelayMs,
          retryable: (e) => e instanceof TransientError,
          onRetry: (e, attempt, delayMs) => {
            this.counters.retries++;
            this.log.debug({ err: e, source: obj.source, attempt, delayMs }, 'retrying block fetch');
          },
        },
      );
    } catch (e) {
      if (e instanceof StaleError) await this.invalidate(obj.source, obj.ref).catch(() => undefined);
      throw e;
    }
  }

  /** Bytes of `range` from the whole-body download of a server that ignores Range, answered block by block. */
  private async fetchFromWhole(obj: ObjectVersion, loc: SignedLocator, range: ByteRange, onProgress?: Progress): Promise<Fetched> {
    const out = Buffer.allocUnsafe(range.end - range.start);
    const first = Math.floor(range.start / this.blockSize);
    const last = Math.floor((range.end - 1) / this.blockSize);
    for (let index = first; index <= last; index++) {
      const block = await this.whole.block(obj, loc, index);
      const { start } = this.rangeOf(obj, index);
      block.copy(out, start - range.start);
      onProgress?.(out, start - range.start + block.length);
    }
    return { data: out, offset: range.start };
  }

  private rangeOf(obj: ObjectVersion, index: number): ByteRange {
    if (!Number.isInteger(index) || index < 0 || index * this.blockSize >= obj.size) {
      throw new FsError('EINVAL', `block ${index} is outside ${obj.source}:${obj.ref} (${obj.size} bytes)`);
    }
    return blockRange(index, this.blockSize, obj.size);
  }
}
