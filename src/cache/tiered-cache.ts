/**
 * Memory in front of disk, itself a BlockCache: get() tries memory, then disk (promoting a disk hit
 * into memory); put() stores in memory at once and writes to disk in the background, so a cold read
 * never waits for the disk. A block between the two (evicted from memory, its disk write not done)
 * is served from the write's buffer: a block is never fetched twice because the disk was slow.
 * Background writes are bounded: when too many are queued, the disk copy of a block is skipped (it
 * stays in memory; caching is best effort).
 */
import type { BlockCache, CacheStats, ObjectVersion, Ref } from '../core/types.js';
import { blockKey, blockKeyPrefix } from '../core/blocks.js';
import type { MemoryBlockCache } from './memory-cache.js';
import type { DiskBlockCache } from './disk-cache.js';

export class TieredBlockCache implements BlockCache {
  readonly blockSize: number;
  private pendingWrites = 0;
  /** Blocks whose disk write is in flight, by key: readable from there if memory evicts them first. */
  private readonly writing = new Map<string, Buffer>();
  private skippedWrites = 0;
  private idle: Array<() => void> = [];

  constructor(
    readonly memory: MemoryBlockCache,
    readonly disk: DiskBlockCache,
    private readonly maxPendingWrites = 64,
  ) {
    if (memory.blockSize !== disk.blockSize) throw new Error('memory and disk tiers must share one block size');
    this.blockSize = memory.blockSize;
  }

  async get(obj: ObjectVersion, index: number): Promise<Buffer | undefined> {
    const hot = await this.memory.get(obj, index);
    if (hot) return hot;
    // Evicted from memory before its disk copy landed: still readable from the write's own buffer
    // (held until the write ends), rather than a miss that would fetch it again.
    const writing = this.writing.get(blockKey(obj, index));
    if (writing) return writing;
    // A disk miss (every block of a cold read) takes no buffer; disk.get still counts it.
    if (!this.disk.has(obj, index)) return this.disk.get(obj, index);
    // Read straight into a recycled buffer of the memory tier: a warm read allocates nothing.
    const buf = this.memory.takeBuffer();
    const warm = await this.disk.get(obj, index, buf);
    if (!warm) {
      this.memory.giveBack(buf);
      return undefined;
    }
    this.memory.putOwned(obj, index, warm, buf);
    return warm;
  }

  peek(obj: ObjectVersion, index: number): Buffer | undefined {
    return this.memory.peek(obj, index) ?? this.writing.get(blockKey(obj, index));
  }

  async put(obj: ObjectVersion, index: number, data: Buffer): Promise<void> {
    await this.memory.put(obj, index, data);
    this.writeBehind(obj, index, data);
  }

  takeBuffer(): Buffer {
    return this.memory.takeBuffer();
  }

  giveBack(buf: Buffer): void {
    this.memory.giveBack(buf);
  }

  /** put() of a block fetched into a buffer from takeBuffer; it is held until its disk copy is written. */
  putOwned(obj: ObjectVersion, index: number, data: Buffer, owned: Buffer): void {
    this.memory.putOwned(obj, index, data, owned);
    this.writeBehind(obj, index, data, owned);
  }

  private writeBehind(obj: ObjectVersion, index: number, data: Buffer, owned?: Buffer): void {
    if (this.pendingWrites >= this.maxPendingWrites) {
      this.skippedWrites++;
      return;
    }
    this.pendingWrites++;
    if (owned) this.memory.hold(owned);
    const key = blockKey(obj, index);
    this.writing.set(key, data);
    void this.disk
      .put(obj, index, data)
      .catch(() => undefined)
      .finally(() => {
        if (this.writing.get(key) === data) this.writing.delete(key);
        if (owned) this.memory.release(owned);
        this.pendingWrites--;
        if (this.pendingWrites === 0) for (const f of this.idle.splice(0)) f();
      });
  }

  /**
   * Only a block the disk tier holds, or is writing: a demoted block leaves memory early, and its next
   * read must find it on disk rather than go back to the network (with `cache.disk: 0`, or when its
   * disk write was skipped because the disk fell behind, it stays an ordinary memory block).
   */
  demote(obj: ObjectVersion, index: number): void {
    if (this.writing.has(blockKey(obj, index)) || this.disk.has(obj, index)) this.memory.demote(obj, index);
  }

  reserve(obj: ObjectVersion, index: number, bytes: number): void {
    this.memory.reserve?.(obj, index, bytes);
  }

  unreserve(obj: ObjectVersion, index: number): void {
    this.memory.unreserve?.(obj, index);
  }

  /** Resolves when no background disk write is pending (tests, shutdown). */
  flushed(): Promise<void> {
    return this.pendingWrites === 0 ? Promise.resolve() : new Promise((r) => this.idle.push(r));
  }

  async dropObject(source: string, ref: Ref): Promise<void> {
    const prefix = blockKeyPrefix(source, ref);
    for (const key of this.writing.keys()) if (key.startsWith(prefix)) this.writing.delete(key);
    await Promise.all([this.memory.dropObject(source, ref), this.disk.dropObject(source, ref)]);
  }

  /**
   * `assetfs cache clear`: drop the blocks of `objects` (every block, when none are named) from both
   * tiers, except the disk blocks of pinned objects. Background disk writes land first, so none of
   * them brings a cleared block back.
   */
  async clearUnpinned(objects?: Iterable<{ source: string; ref: Ref }>): Promise<void> {
    await this.flushed();
    if (!objects) {
      this.memory.clear();
      this.disk.evictUnpinned();
      return;
    }
    for (const { source, ref } of objects) {
      await this.memory.dropObject(source, ref);
      if (!this.disk.isPinned(source, ref)) await this.disk.dropObject(source, ref);
    }
  }

  stats(): CacheStats & { memory: CacheStats; disk: CacheStats; skippedDiskWrites: number } {
    const m = this.memory.stats();
    const d = this.disk.stats();
    return { bytes: m.bytes + d.bytes, limit: m.limit + d.limit, hits: m.hits + d.hits, misses: d.misses, memory: m, disk: d, skippedDiskWrites: this.skippedWrites };
  }
}
