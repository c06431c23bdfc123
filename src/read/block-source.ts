/**
 * Blocks on demand: the cache, else one ranged GET on a signed locator, shared by every reader.
 *
 * Invariants:
 *  - Single flight: a block is fetched at most once at a time. A block being fetched, on demand or by
 *    prefetch, is in `inflight` from the moment the fetch is decided (synchronously) until it is in the
 *    cache, so a reader either joins that fetch or finds the block cached.
 *  - Prefetch turns runs of consecutive missing blocks into one GET each (≤ partSize), runs in parallel.
 *    The body lands in one buffer per block, recycled by the cache (takeBuffer) when it offers them, so
 *    a long read allocates nothing once the memory tier is full. Prefetched bytes in flight never exceed
 *    `prefetchBudgetBytes`: over budget, prefetch skips blocks rather than wait. Demand reads are never
 *    bounded by it.
 *  - Errors: ExpiredError → the locator is forgotten and re-minted (≤ MAX_REMINTS per fetch);
 *    TransientError → retried by the pacer for up to maxRetryTimeMs, then rethrown; StaleError → never
 *    retried: the object's blocks and locators are dropped and the error rethrown (the VFS re-stats).
 *  - A locator with `rangeable: false` (the server always sends the whole object) costs one whole
 *    download per object version at a time, streamed into blocks (whole-stream.ts).
 *  - Every download of one object version is checked against the ETag the first of them carried
 *    (core/etag.ts): blocks cached under one version are all of the same bytes, even where the version
 *    is the platform's own and says nothing about storage ETags. The pins go with invalidate().
 *  - A failed fetch leaves nothing behind: its blocks leave `inflight` before their waiters hear of it,
 *    their buffers go back to the cache, and a demand reader that had joined a failed prefetch tries
 *    once more with its own fetch. A retried fetch asks only for the blocks not answered yet.
 */
import { LRUCache } from 'lru-cache';
import type { BlockCache, BlockSource, ByteRange, Expectation, ObjectVersion, Provider, Ref, SignedLocator, Transport } from '../core/types.js';
import { DownloadEtag } from '../core/etag.js';
import { DEFAULT_PART_BYTES, blockCount, blockKey, blockRange } from '../core/blocks.js';
import { ExpiredError, FsError, StaleError, TransientError } from '../core/errors.js';
import { retry } from '../util/pacer.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { abortable, type LocatorCache } from './locator-cache.js';
import type { SourceMeter } from '../metrics/metrics.js';
import { WholeObjectStreams } from './whole-stream.js';

/** Re-mints of a locator refused with 401/403 within one fetch, before the ExpiredError is final. */
const MAX_REMINTS = 3;

export interface NetworkBlockSourceOptions {
  cache: BlockCache;
  transport: Transport;
  locators: LocatorCache;
  providerFor(source: string): Provider;
  /** Bytes per ranged GET when several blocks go together. Default DEFAULT_PART_BYTES. */
  partSize?: number;
  /** How long transient faults are retried before a read fails. */
  maxRetryTimeMs: number;
  /** Global cap on prefetched bytes in flight. Default 256 MiB. */
  prefetchBudgetBytes?: number;
  /** First backoff step of the pacer. Default 100 ms. */
  retryBaseDelayMs?: number;
  log?: Logger;
  /** Counts each GET (assetfs_origin_requests_total{kind="read"}), its first byte and its bytes. */
  meterFor?(source: string): SourceMeter | undefined;
  /** Told the final outcome of every fetch (after retries and re-mints): the sources' health. */
  health?: { ok(source: string): void; failed(source: string, e: unknown): unknown };
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

interface Pending {
  readonly promise: Promise<Buffer>;
  resolve(block: Buffer): void;
  reject(e: unknown): void;
  /** Started by prefetch (so a joined demand reader may retry on its failure). */
  readonly prefetch: boolean;
  /** Bytes held against the prefetch budget until the block settles. */
  budgetBytes: number;
}


export class NetworkBlockSource implements BlockSource {
  readonly blockSize: number;
  private readonly partSize: number;
  private readonly budget: number;
  private readonly log: Logger;
  private readonly inflight = new Map<string, Pending>();
  private readonly whole: WholeObjectStreams;
  private prefetchBytes = 0;
  /** `source\0ref` → the version being read and the ETag its downloads carried (bounded: a pin only sharpens checks). */
  private readonly etags = new LRUCache<string, { version: string; seen: DownloadEtag }>({ max: 16_384 });
  private counters = { requests: 0, bytesFetched: 0, retries: 0, remints: 0, prefetchedBlocks: 0, prefetchSkippedBlocks: 0 };

  constructor(private readonly o: NetworkBlockSourceOptions) {
    this.blockSize = o.cache.blockSize;
    this.partSize = Math.max(o.partSize ?? DEFAULT_PART_BYTES, this.blockSize);
    this.budget = o.prefetchBudgetBytes ?? 256 * 1024 * 1024;
    this.log = o.log ?? silentLogger;
    this.whole = new WholeObjectStreams({
      cache: o.cache,
      transport: o.transport,
      claimed: (obj, index) => this.inflight.has(blockKey(obj, index)),
      expect: (obj) => this.expectation(obj),
      onRequest: (obj, done) => {
        this.counters.requests++;
        const meter = o.meterFor?.(obj.source);
        if (meter) done.then(() => meter.request('read'), (e: unknown) => meter.request('read', e));
      },
      onBytes: (n, obj) => {
        this.counters.bytesFetched += n;
        o.meterFor?.(obj.source)?.bytes('in', n);
      },
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

  peekBlock(obj: ObjectVersion, index: number): Buffer | undefined {
    if (!Number.isInteger(index) || index < 0 || index * this.blockSize >= obj.size) return undefined;
    const { start, end } = blockRange(index, this.blockSize, obj.size);
    const block = this.o.cache.peek?.(obj, index);
    return block && block.length === end - start ? block : undefined;
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

  demote(obj: ObjectVersion, first: number, last: number): void {
    const demote = this.o.cache.demote?.bind(this.o.cache);
    if (demote) for (let index = first; index <= last; index++) demote(obj, index);
  }

  async invalidate(source: string, ref: Ref): Promise<void> {
    this.etags.delete(`${source}\0${ref}`);
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
    // A lookup that is about to wait for another host's fetch (the shared tier) says so: the run of
    // blocks gathered so far (claimed by this host) goes out before we wait, never held hostage by it.
    const cache = this.o.cache;
    const waits: Array<() => void> = [];
    const waiting = wanted.map((_, i) => new Promise<'wait'>((r) => (waits[i] = () => r('wait'))));
    const lookups = wanted.map(({ index }, i) => (cache.getOrWait ? cache.getOrWait(obj, index, waits[i]!) : cache.get(obj, index)).catch(() => undefined));
    const maxBlocks = Math.max(1, Math.floor(this.partSize / this.blockSize));
    let run: Array<{ index: number; pending: Pending }> = [];
    const flush = () => {
      if (run.length > 0) void this.fetchRun(obj, run);
      run = [];
    };
    for (let i = 0; i < wanted.length; i++) {
      const item = wanted[i]!;
      if ((await Promise.race([lookups[i], waiting[i]!])) === 'wait') flush();
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
   * One GET for consecutive blocks, each landing in its own buffer (recycled by the cache when it can
   * give one); each block is cached and its waiters answered as soon as its bytes have arrived, not
   * when the whole run has: with several runs in flight the reader would otherwise wait for a whole
   * part before each one (pipeline bubbles). A retry fetches only the blocks not yet settled: a
   * settled block's buffer belongs to the cache, which may already have recycled it.
   */
  private async fetchRun(obj: ObjectVersion, run: Array<{ index: number; pending: Pending }>): Promise<void> {
    const ranges = run.map(({ index }) => this.rangeOf(obj, index));
    const buffers = this.buffersFor(ranges.map((r) => r.end - r.start));
    const start = ranges[0]!.start;
    const end = ranges[ranges.length - 1]!.end;
    let next = 0; // run[next] is the first block not settled yet
    const settleUpTo = (filledTo: number) => {
      for (; next < run.length && ranges[next]!.end <= filledTo; next++) {
        const { data, owned } = buffers[next]!;
        this.settle(obj, run[next]!.index, run[next]!.pending, data, owned ?? true);
      }
    };
    try {
      await this.fetchRange(obj, end, () => ({ start: ranges[next]!.start, into: buffers.slice(next).map((b) => b.data) }), settleUpTo);
      settleUpTo(end);
      this.o.health?.ok(obj.source);
    } catch (e) {
      this.o.health?.failed(obj.source, e);
      for (let i = next; i < run.length; i++) {
        this.fail(obj, run[i]!.index, run[i]!.pending, e);
        const owned = buffers[i]!.owned;
        if (owned) this.o.cache.giveBack?.(owned);
      }
      const level = e instanceof StaleError ? 'info' : 'warn';
      this.log[level]({ err: e, source: obj.source, blocks: [run[0]!.index, run[run.length - 1]!.index], bytes: [start, end], prefetch: run[0]!.pending.prefetch }, 'block fetch failed');
    }
  }

  /** A buffer per block: recycled ones from the cache, else views of one new run buffer. Never throws. */
  private buffersFor(lengths: number[]): Array<{ data: Buffer; owned?: Buffer }> {
    const cache = this.o.cache;
    if (cache.takeBuffer && cache.putOwned && cache.giveBack) {
      return lengths.map((len) => {
        const owned = cache.takeBuffer!();
        if (owned.length >= len) return { data: owned.subarray(0, len), owned };
        cache.giveBack!(owned); // a block larger than the cache's buffers: not one of ours to recycle
        return { data: Buffer.allocUnsafe(len) };
      });
    }
    const whole = Buffer.allocUnsafe(lengths.reduce((a, b) => a + b, 0));
    let at = 0;
    return lengths.map((len) => ({ data: whole.subarray(at, (at += len)) }));
  }

  /**
   * Answer a block's waiters, cache it (when fetched: `store` is true, or the recycled buffer `block`
   * is a view of), and only then let it leave `inflight`.
   */
  private settle(obj: ObjectVersion, index: number, pending: Pending, block: Buffer, store: boolean | Buffer): void {
    pending.resolve(block);
    this.releaseBudget(pending);
    const key = blockKey(obj, index);
    const done = () => {
      if (this.inflight.get(key) === pending) this.inflight.delete(key);
    };
    if (store === false) return done();
    if (store !== true) {
      this.o.cache.putOwned!(obj, index, block, store);
      return done();
    }
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
   * Bytes of `obj` up to `end` (from a locator that cannot do ranges: out of its whole download), into
   * the buffers `remaining()` names from the offset it names, re-locating on expiry and retrying
   * transient faults. `onProgress(to)`: bytes before offset `to` of the object have arrived.
   */
  private async fetchRange(obj: ObjectVersion, end: number, remaining: () => { start: number; into: Buffer[] }, onProgress: (to: number) => void): Promise<void> {
    const provider = this.o.providerFor(obj.source);
    const meter = this.o.meterFor?.(obj.source);
    let remints = 0;
    try {
      await retry(
        async () => {
          for (;;) {
            const loc = await this.o.locators.get(provider, obj);
            const { start, into } = remaining();
            try {
              if (loc.rangeable === false) return await this.fetchFromWhole(obj, loc, start, into, onProgress);
              this.counters.requests++;
              const get = (progress: (filled: number) => void) => this.o.transport.readRangeInto(loc, { start, end }, this.expectation(obj), into, progress);
              const forward = (filled: number) => onProgress(start + filled);
              await (meter ? meter.rangedGet(end - start, forward, get) : get(forward));
              this.counters.bytesFetched += end - start;
              return;
            } catch (e) {
              if (!(e instanceof ExpiredError) || remints >= MAX_REMINTS) throw e;
              remints++;
              this.counters.remints++;
              meter?.urlRefresh('refused');
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

  /** Blocks from `start` on (block-aligned), one per buffer of `into`, out of the whole-body download of a server that ignores Range. */
  private async fetchFromWhole(obj: ObjectVersion, loc: SignedLocator, start: number, into: Buffer[], onProgress: (to: number) => void): Promise<void> {
    const first = Math.floor(start / this.blockSize);
    for (let i = 0; i < into.length; i++) {
      const block = await this.whole.block(obj, loc, first + i);
      if (block.length !== into[i]!.length) throw new FsError('EIO', `block ${first + i} of ${obj.source}:${obj.ref} has ${block.length} bytes, expected ${into[i]!.length}`);
      block.copy(into[i]!);
      onProgress(this.rangeOf(obj, first + i).end);
    }
  }

  /** What a download of `obj` must match: its version and size, and the ETag earlier downloads of it carried. */
  private expectation(obj: ObjectVersion): Expectation {
    const key = `${obj.source}\0${obj.ref}`;
    let pin = this.etags.get(key);
    if (pin?.version !== obj.version) {
      pin = { version: obj.version, seen: new DownloadEtag() };
      this.etags.set(key, pin);
    }
    return { version: obj.version, size: obj.size, downloadEtag: pin.seen };
  }

  private rangeOf(obj: ObjectVersion, index: number): ByteRange {
    if (!Number.isInteger(index) || index < 0 || index * this.blockSize >= obj.size) {
      throw new FsError('EINVAL', `block ${index} is outside ${obj.source}:${obj.ref} (${obj.size} bytes)`);
    }
    return blockRange(index, this.blockSize, obj.size);
  }
}
