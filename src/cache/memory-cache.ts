/**
 * The memory tier of the block cache: an LRU of Buffers bounded by bytes (lru-cache's maxSize).
 *
 * Invariants:
 *  - Keys are (source, ref, version, index): blocks of another version of an object are never returned.
 *  - `byObject` lists, per (source, ref), the keys currently in the LRU, over all versions; it is
 *    updated on every removal (eviction, delete, clear) through lru-cache's dispose hook, so
 *    dropObject never scans the whole cache and the index never outlives its blocks.
 *  - Cached Buffers may be views into a larger run buffer; callers treat them as read-only.
 *  - A reservation holds a block's bytes in the LRU while the block is being fetched (prefetch), so
 *    cached plus in-flight prefetched bytes stay within `maxBytes`: the LRU evicts for it at once,
 *    and put() of the block replaces it. A reserved block reads as a miss. Reservations take at most
 *    half the limit: in a memory tier smaller than the readahead window they would otherwise evict
 *    the blocks the reader is about to use.
 *  - Recycled buffers (takeBuffer/putOwned): a block fetched from the network or read from the disk
 *    tier lands in a buffer this cache owns and hands back to its free list when the block leaves the
 *    LRU, so reads allocate nothing once the tier is full (a fresh Buffer costs page faults on first
 *    touch, and every 64 MiB of them a full GC). A recycled buffer is overwritten only by a later
 *    fetch or disk read, i.e. after an I/O round trip: readers copy out of a block in the microtask
 *    that receives it, long before that. A holder that keeps a block across I/O of its own must
 *    copy it first, or hold() it (the background disk write does) until release().
 *  - Scan resistance (after the Linux page cache's inactive list and 2Q): a block demote()d, i.e. read
 *    by a sequential stream that has moved on, waits in a short FIFO (`streamedKeepBytes`) and then
 *    leaves, its buffer recycled for the stream's next blocks. A long sequential read therefore
 *    neither pushes the rest of the tier out nor grows the process into fresh pages (a first-touched
 *    page can cost more than the copy into it: docs/perf-log.md), and the kernel's page cache
 *    already holds what such a reader has read. A demoted block read again while in the FIFO, or stored again
 *    while its key is remembered as recently demoted (`ghosts`), is kept like any other block.
 */
import { LRUCache } from 'lru-cache';
import type { BlockCache, CacheStats, ObjectVersion, Ref } from '../core/types.js';
import { blockKey } from '../core/blocks.js';
import { MAX_ALIGNED_BYTES, alignedBuffer } from '../util/aligned.js';

const ARENA_BYTES = Math.min(2 ** 30, MAX_ALIGNED_BYTES);

/** An arena of `bytes`, page-aligned when possible; undefined without the address space for it. */
function allocateArena(bytes: number): Buffer | undefined {
  try {
    return alignedBuffer(bytes);
  } catch {
    try {
      return Buffer.allocUnsafeSlow(bytes);
    } catch {
      return undefined;
    }
  }
}

export interface MemoryCacheOptions {
  /** Byte limit of all cached blocks together. */
  maxBytes: number;
  blockSize: number;
  /** Bytes of demoted blocks kept before the oldest leaves. Default: an eighth of maxBytes, at most 16 MiB. */
  streamedKeepBytes?: number;
}

const objectKey = (source: string, ref: Ref) => `${source}\0${ref}`;

interface Slot {
  /** Undefined while only reserved. */
  readonly data: Buffer | undefined;
  /** The whole recycled buffer `data` is a view of, when the cache owns it (see takeBuffer). */
  readonly owned?: Buffer;
  readonly object: string;
  readonly size: number;
  /** Read again after a demotion, or by another reader: demote() leaves it alone. */
  kept?: boolean;
}

export class MemoryBlockCache implements BlockCache {
  readonly blockSize: number;
  private readonly lru: LRUCache<string, Slot>;
  private readonly byObject = new Map<string, Set<string>>();
  private hits = 0;
  private misses = 0;
  /** Blocks the cache let go by itself: to make room, or demoted and past the FIFO. */
  private evictions = 0;
  private reservedBytes = 0;
  private readonly free: Buffer[] = [];
  /** Recycled buffers held across I/O (see hold), with the count of holders. */
  private readonly holds = new Map<Buffer, number>();
  /** Held buffers whose block left the LRU: recycled on their last release. */
  private readonly freeOnRelease = new Set<Buffer>();
  /** The allocation takeBuffer carves new buffers from, in order (see carve). */
  private arena: Buffer | undefined;
  private arenaAt = 0;
  private carved = 0;
  /** Demoted keys still cached, oldest first (a Map keeps insertion order). */
  private readonly streamed = new Map<string, number>();
  private streamedBytes = 0;
  private readonly streamedKeepBytes: number;
  /** Keys that left as demoted, oldest first; bounded by the blocks the tier holds. */
  private readonly ghosts = new Set<string>();

  constructor(private readonly o: MemoryCacheOptions) {
    if (!(o.blockSize > 0)) throw new Error('blockSize must be positive');
    this.blockSize = o.blockSize;
    this.streamedKeepBytes = o.streamedKeepBytes ?? Math.min(16 * 1024 * 1024, Math.floor(o.maxBytes / 8));
    this.lru = new LRUCache<string, Slot>({
      maxSize: Math.max(1, o.maxBytes),
      sizeCalculation: (slot) => Math.max(1, slot.size),
      // 'set' replaces the value under the same key: the key stays cached, so it stays indexed.
      dispose: (slot, key, reason) => {
        if (slot.data === undefined) this.reservedBytes -= slot.size;
        else if (reason === 'evict') this.evictions++;
        if (slot.owned) this.recycle(slot.owned);
        this.forgetStreamed(key);
        if (reason !== 'set') this.unindex(slot.object, key);
      },
    });
  }

  async get(obj: ObjectVersion, index: number): Promise<Buffer | undefined> {
    const data = this.hit(blockKey(obj, index));
    if (!data) this.misses++;
    return data;
  }

  /** get() without the promise: a hit is counted, a miss is left for the get() that follows it. */
  peek(obj: ObjectVersion, index: number): Buffer | undefined {
    return this.hit(blockKey(obj, index));
  }

  private hit(key: string): Buffer | undefined {
    const slot = this.lru.get(key);
    if (!slot?.data) return undefined;
    this.hits++;
    if (this.streamed.size > 0 && this.forgetStreamed(key)) slot.kept = true;
    return slot.data;
  }

  /** A sequential reader has read this block and moved on: see "Scan resistance" above. */
  demote(obj: ObjectVersion, index: number): void {
    const key = blockKey(obj, index);
    const slot = this.lru.peek(key);
    if (!slot?.data || slot.kept || this.streamed.has(key)) return;
    this.streamed.set(key, slot.size);
    this.streamedBytes += slot.size;
    while (this.streamedBytes > this.streamedKeepBytes) {
      const oldest = this.streamed.keys().next().value as string;
      this.lru.delete(oldest); // its dispose forgets it here and recycles its buffer
      this.evictions++;
      this.forgetStreamed(oldest);
      this.ghosts.add(oldest);
      if (this.ghosts.size > this.o.maxBytes / this.blockSize) this.ghosts.delete(this.ghosts.values().next().value as string);
    }
  }

  private forgetStreamed(key: string): boolean {
    const size = this.streamed.get(key);
    if (size === undefined) return false;
    this.streamed.delete(key);
    this.streamedBytes -= size;
    return true;
  }

  async put(obj: ObjectVersion, index: number, data: Buffer): Promise<void> {
    this.store(obj, index, data, data.length);
  }

  /** A block-sized buffer to read a block into, recycled when possible; give it to putOwned or giveBack. */
  takeBuffer(): Buffer {
    return this.free.pop() ?? this.carve();
  }

  /**
   * A new block-sized buffer, carved from arenas of up to 1 GiB that together hold the tier's size
   * (address space only: pages are touched as blocks arrive). V8 starts a full GC for each 64 MiB of
   * new external memory; a few arenas instead of one Buffer per block turn dozens of GCs into one.
   * Arenas are page-aligned when the platform allows (util/aligned.ts), so are their block-sized
   * slices when the block size is a multiple of the page. Past the tier's size, or without address
   * space, buffers are allocated one by one.
   */
  private carve(): Buffer {
    const slots = Math.floor(this.o.maxBytes / this.blockSize);
    if (this.carved >= slots) return Buffer.allocUnsafeSlow(this.blockSize);
    if (!this.arena || this.arenaAt + this.blockSize > this.arena.length) {
      const bytes = Math.min(slots - this.carved, Math.max(1, Math.floor(ARENA_BYTES / this.blockSize))) * this.blockSize;
      this.arenaAt = 0;
      this.arena = allocateArena(bytes);
      if (!this.arena) {
        this.carved = slots; // no address space for it: allocate block by block
        return Buffer.allocUnsafeSlow(this.blockSize);
      }
    }
    this.carved++;
    return this.arena.subarray(this.arenaAt, (this.arenaAt += this.blockSize));
  }

  giveBack(buf: Buffer): void {
    this.recycle(buf);
  }

  /** Keep `owned` (from takeBuffer) from being recycled while I/O reads it, even if its block leaves. */
  hold(owned: Buffer): void {
    this.holds.set(owned, (this.holds.get(owned) ?? 0) + 1);
  }

  release(owned: Buffer): void {
    const n = (this.holds.get(owned) ?? 1) - 1;
    if (n > 0) return void this.holds.set(owned, n);
    this.holds.delete(owned);
    if (this.freeOnRelease.delete(owned)) this.recycle(owned);
  }

  private recycle(buf: Buffer): void {
    if (this.holds.has(buf)) return void this.freeOnRelease.add(buf);
    if (buf.length === this.blockSize && this.free.length < this.o.maxBytes / this.blockSize) this.free.push(buf);
  }

  /** put() of `data`, a view of `owned` (from takeBuffer): the cache recycles `owned` when the block leaves. */
  putOwned(obj: ObjectVersion, index: number, data: Buffer, owned: Buffer): void {
    this.store(obj, index, data, data.length, owned);
  }

  /** Hold `bytes` for a block about to be fetched; put() fills it, unreserve() gives it back. */
  reserve(obj: ObjectVersion, index: number, bytes: number): void {
    if (this.lru.peek(blockKey(obj, index))) return;
    if (this.reservedBytes + bytes > this.o.maxBytes / 2) return;
    this.store(obj, index, undefined, bytes);
    if (this.lru.peek(blockKey(obj, index))) this.reservedBytes += bytes;
  }

  unreserve(obj: ObjectVersion, index: number): void {
    const key = blockKey(obj, index);
    if (this.lru.peek(key)?.data === undefined) this.lru.delete(key);
  }

  private store(obj: ObjectVersion, index: number, data: Buffer | undefined, size: number, owned?: Buffer): void {
    const key = blockKey(obj, index);
    const object = objectKey(obj.source, obj.ref);
    const kept = data !== undefined && this.ghosts.size > 0 && this.ghosts.delete(key);
    this.lru.set(key, { data, object, size, owned, kept });
    // A block larger than the whole cache is refused by lru-cache; index only what was stored.
    if (!this.lru.has(key)) return;
    let keys = this.byObject.get(object);
    if (!keys) this.byObject.set(object, (keys = new Set()));
    keys.add(key);
  }

  async dropObject(source: string, ref: Ref): Promise<void> {
    const keys = this.byObject.get(objectKey(source, ref));
    if (!keys) return;
    for (const key of [...keys]) this.lru.delete(key);
    this.byObject.delete(objectKey(source, ref));
  }

  /** Forget everything (tests, SIGHUP with blocks). */
  clear(): void {
    this.lru.clear();
    this.byObject.clear();
    this.ghosts.clear();
  }

  stats(): CacheStats & { blocks: number; evictions: number } {
    return { bytes: this.lru.calculatedSize, limit: this.o.maxBytes, hits: this.hits, misses: this.misses, blocks: this.lru.size, evictions: this.evictions };
  }

  private unindex(object: string, key: string): void {
    const keys = this.byObject.get(object);
    if (!keys) return;
    keys.delete(key);
    if (keys.size === 0) this.byObject.delete(object);
  }
}
