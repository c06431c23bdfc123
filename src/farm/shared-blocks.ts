/**
 * The shared block tier and its "one fetch for the whole farm" protocol, over any SharedStore.
 *
 * Keys: `<prefix>b:<object hash>:<index>` holds a block's frame (block-frame.ts), keyed by (source,
 * ref, version, index) like every other tier: a new version has new keys and can never hit old bytes.
 * `<prefix>bl:<object hash>:<index>` is the claim of the host fetching that block from the origin.
 *
 * Invariants:
 *  - lookup() answers a block only after its frame checked; a frame that does not check is deleted
 *    (so the next fetch rewrites it) and is a miss.
 *  - On a miss the host claims the block (SET NX PX lockTtl). Holding the claim (or already holding
 *    it: the value is this host's owner id), it fetches from the origin; otherwise it waits for the
 *    block, polling briefly, and takes the claim over if the holder's lapses without the block.
 *    After `lockTtl` of waiting it fetches the block itself: a slow or dead holder costs time, never
 *    a failed read. Before it waits it calls `onWait`: the caller starts the fetches of the blocks it
 *    claimed before this one (two hosts each waiting for a block the other claimed but has not
 *    started to fetch would otherwise both wait `lockTtl`, then both fetch).
 *  - Whatever the shared tier does (down, slow, full), lookup() resolves — to undefined at worst —
 *    and share() never throws: the caller then reads from the origin / keeps its own copy.
 *  - share() copies the block into its frame at once (the caller's buffer may be recycled) and
 *    writes it in the background; queued frames never exceed `writeQueueBytes` (past it the block is
 *    simply not shared). The claim is dropped once the block is stored.
 */
import type { ObjectVersion } from '../core/types.js';
import type { Logger } from '../util/logger.js';
import { decodeFrame, encodeFrame, identityOf, objectHash } from './block-frame.js';
import { quiet, type GuardedStore } from './guarded-store.js';
import type { SharedBlockStats } from './types.js';

export interface SharedBlocksOptions {
  store: GuardedStore;
  keyPrefix: string;
  /** This daemon's id: the value of its claims. */
  owner: string;
  lockTtlMs: number;
  writeQueueBytes: number;
  log: Logger;
  /** First and longest pause between two polls of a waiter. */
  pollMs?: { first: number; max: number };
}

export class SharedBlocks {
  private pendingBytes = 0;
  private idle: Array<() => void> = [];
  private counters = { hits: 0, misses: 0, waits: 0, waitHits: 0, corrupt: 0, writes: 0, bytesWritten: 0, bytesRead: 0, skippedWrites: 0 };

  constructor(private readonly opts: SharedBlocksOptions) {}

  private keys(obj: ObjectVersion, index: number): { block: string; claim: string } {
    const h = objectHash(obj);
    return { block: `${this.opts.keyPrefix}b:${h}:${index}`, claim: `${this.opts.keyPrefix}bl:${h}:${index}` };
  }

  /**
   * The block from the shared tier, or undefined when this host is to fetch it from the origin (it
   * holds the claim, the wait ran out, or the shared tier is unavailable).
   */
  async lookup(obj: ObjectVersion, index: number, length: number, onWait?: () => void): Promise<Buffer | undefined> {
    const { store } = this.opts;
    if (!store.available) return undefined;
    const keys = this.keys(obj, index);
    const identity = identityOf(obj);
    const found = await this.read(keys.block, identity, index, length);
    if (found) {
      this.counters.hits++;
      return found;
    }
    const first = await this.claimOrArrived(keys, identity, index, length);
    if (first !== 'waiting') {
      this.counters[first ? 'hits' : 'misses']++;
      return first;
    }
    this.counters.misses++;
    this.counters.waits++;
    onWait?.();
    const deadline = Date.now() + this.opts.lockTtlMs;
    let pause = this.opts.pollMs?.first ?? 10;
    while (Date.now() < deadline && store.available) {
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 1.5, this.opts.pollMs?.max ?? 100);
      const arrived = await this.read(keys.block, identity, index, length);
      if (arrived) {
        this.counters.misses--;
        this.counters.hits++;
        this.counters.waitHits++;
        return arrived;
      }
      // The holder's claim lapsed (it died, or its fetch failed) without the block: take it over.
      if (await quiet(store.exists(keys.claim), true)) continue;
      const late = await this.claimOrArrived(keys, identity, index, length);
      if (late === 'waiting') continue;
      if (late) {
        this.counters.misses--;
        this.counters.hits++;
        this.counters.waitHits++;
      }
      return late;
    }
    this.opts.log.debug({ source: obj.source, index }, 'shared tier: gave up waiting for another host\'s fetch');
    return undefined;
  }

  /** Stores the block for the other hosts, in the background; never throws. */
  share(obj: ObjectVersion, index: number, data: Buffer): void {
    const { store } = this.opts;
    const keys = this.keys(obj, index);
    // Not shared: drop this host's claim at once, so that waiting hosts fetch it now, not after lockTtl.
    const release = () => void quiet(store.deleteIf(keys.claim, this.opts.owner), false);
    if (!store.available || this.pendingBytes + data.length > this.opts.writeQueueBytes) {
      this.counters.skippedWrites++;
      if (store.available) release();
      return;
    }
    const frame = encodeFrame(identityOf(obj), index, data);
    this.pendingBytes += frame.length;
    void store
      .set(keys.block, frame)
      .then(
        () => {
          this.counters.writes++;
          this.counters.bytesWritten += data.length;
          return store.del(keys.claim);
        },
        () => {
          this.counters.skippedWrites++;
          release();
        },
      )
      .catch(() => undefined)
      .finally(() => {
        this.pendingBytes -= frame.length;
        if (this.pendingBytes === 0) for (const f of this.idle.splice(0)) f();
      });
  }

  /** Resolves when no block write is queued (tests, shutdown). */
  flushed(): Promise<void> {
    return this.pendingBytes === 0 ? Promise.resolve() : new Promise((r) => this.idle.push(r));
  }

  stats(): SharedBlockStats & { queuedBytes: number } {
    return { ...this.counters, queuedBytes: this.pendingBytes };
  }

  /** The checked block at `key`; a stored frame that does not check is deleted and is a miss. */
  private async read(key: string, identity: Buffer, index: number, length: number): Promise<Buffer | undefined> {
    const frame = await quiet(this.opts.store.getBytes(key), undefined);
    if (!frame) return undefined;
    const data = decodeFrame(frame, identity, index, length);
    if (data) {
      this.counters.bytesRead += data.length;
      return data;
    }
    this.counters.corrupt++;
    this.opts.log.warn({ key }, 'shared tier: a stored block failed its check; dropped and fetched again');
    await quiet(this.opts.store.del(key), undefined);
    return undefined;
  }

  /**
   * Claims the block: 'waiting' when another host holds the claim; undefined when this host now holds
   * it (fetch from the origin); the block when it arrived just before the claim was taken (its holder
   * stores it, then drops its claim: a read that missed it a moment ago must not fetch it again).
   */
  private async claimOrArrived(keys: { block: string; claim: string }, identity: Buffer, index: number, length: number): Promise<Buffer | undefined | 'waiting'> {
    if (!(await this.claim(keys.claim))) return 'waiting';
    const arrived = await this.read(keys.block, identity, index, length);
    if (!arrived) return undefined;
    await quiet(this.opts.store.deleteIf(keys.claim, this.opts.owner), false);
    return arrived;
  }

  /** True when this host holds the claim on a block (just taken, or taken before by this daemon). */
  private async claim(key: string): Promise<boolean> {
    const { store, owner, lockTtlMs } = this.opts;
    // Unavailable: nobody to coordinate with; this host fetches.
    const taken = await quiet(store.setIfAbsent(key, owner, lockTtlMs), true);
    if (taken) return true;
    return (await quiet(store.getText(key), owner)) === owner;
  }
}
