/**
 * Objects whose server ignores Range (locators with `rangeable: false`, e.g. Wordbee downloads): the one
 * whole-body download is cut into cache blocks as it streams, and each block is answered as soon as its
 * bytes have arrived — a reader of block 3 of a large file does not wait for the end of the body.
 *
 * Invariants:
 *  - At most one download per object version at a time. A block the running download has already
 *    passed is read from the cache; if the cache no longer has it, the reader waits for the running
 *    download to end and then starts the next one (never two at once).
 *  - Memory held here: the block being filled, plus blocks handed to waiters; every other finished block
 *    goes straight to the cache (unless `claimed` says a block-source run will store it itself).
 *  - A failed download rejects every waiter of a block it had not reached, and is forgotten, so the
 *    caller's retry (re-locate on ExpiredError, pacer on TransientError) starts a fresh one.
 */
import type { BlockCache, Expectation, ObjectVersion, SignedLocator, Transport } from '../core/types.js';
import { blockCount, blockRange } from '../core/blocks.js';

interface Waiter {
  resolve(b: Buffer): void;
  reject(e: unknown): void;
}

interface Download {
  /** Blocks [0, next) have passed. */
  next: number;
  readonly waiters: Map<number, Waiter[]>;
  readonly done: Promise<void>;
}

export interface WholeStreamOptions {
  cache: BlockCache;
  transport: Transport;
  /** True when a block-source run is waiting for this block and will cache it itself. */
  claimed(obj: ObjectVersion, index: number): boolean;
  /** What a download of `obj` must match (default: its version and size). */
  expect?(obj: ObjectVersion): Expectation;
  /** Called per download started, with its outcome, and per chunk received (statistics). */
  onRequest?(obj: ObjectVersion, done: Promise<void>): void;
  onBytes?(n: number, obj: ObjectVersion): void;
}

const keyOf = (obj: ObjectVersion) => `${obj.source}\0${obj.ref}\0${obj.version}`;

export class WholeObjectStreams {
  private readonly downloads = new Map<string, Download>();

  constructor(private readonly o: WholeStreamOptions) {}

  /** Block `index` of `obj`, from the cache or from the (running or a new) whole-body download. */
  async block(obj: ObjectVersion, loc: SignedLocator, index: number): Promise<Buffer> {
    const size = this.o.cache.blockSize;
    const { start, end } = blockRange(index, size, obj.size);
    for (;;) {
      const running = this.downloads.get(keyOf(obj));
      if (running && index >= running.next) {
        return new Promise<Buffer>((resolve, reject) => {
          const list = running.waiters.get(index) ?? [];
          list.push({ resolve, reject });
          running.waiters.set(index, list);
        });
      }
      const cached = await this.o.cache.get(obj, index);
      if (cached && cached.length === end - start) return cached;
      const now = this.downloads.get(keyOf(obj));
      if (now) {
        if (index >= now.next) continue; // it started meanwhile and has not reached us yet: join it
        await now.done.catch(() => undefined);
        continue;
      }
      this.start(obj, loc);
    }
  }

  activeDownloads(): number {
    return this.downloads.size;
  }

  private start(obj: ObjectVersion, loc: SignedLocator): void {
    const key = keyOf(obj);
    const size = this.o.cache.blockSize;
    const count = blockCount(obj.size, size);
    let current: Buffer | undefined;
    let filled = 0;
    let done!: Promise<void>;
    const dl: Download = { next: 0, waiters: new Map(), get done() { return done; } };
    const finishBlock = (block: Buffer) => {
      const index = dl.next++;
      const waiters = dl.waiters.get(index);
      dl.waiters.delete(index);
      for (const w of waiters ?? []) w.resolve(block);
      if (!this.o.claimed(obj, index)) this.o.cache.put(obj, index, block).catch(() => undefined);
    };
    const onChunk = (chunk: Buffer) => {
      this.o.onBytes?.(chunk.length, obj);
      let at = 0;
      while (at < chunk.length) {
        if (!current) {
          const { start, end } = blockRange(dl.next, size, obj.size);
          current = Buffer.allocUnsafe(end - start);
          filled = 0;
        }
        const n = Math.min(current.length - filled, chunk.length - at);
        chunk.copy(current, filled, at, at + n);
        filled += n;
        at += n;
        if (filled === current.length) {
          const block = current;
          current = undefined;
          finishBlock(block);
        }
      }
    };
    done = this.o.transport.streamWhole(loc, this.o.expect?.(obj) ?? obj, onChunk).then(
      () => {
        if (dl.next !== count) throw new Error(`whole download of ${obj.ref} ended at block ${dl.next} of ${count}`);
      },
    );
    this.o.onRequest?.(obj, done);
    done.catch((e: unknown) => {
      for (const list of dl.waiters.values()) for (const w of list) w.reject(e);
      dl.waiters.clear();
    }).finally(() => {
      if (this.downloads.get(key) === dl) this.downloads.delete(key);
    });
    this.downloads.set(key, dl);
  }
}
