import { describe, expect, it } from 'vitest';
import { MemoryBlockCache } from '../../src/cache/memory-cache.js';
import { isDirectIoReady } from '../../src/util/aligned.js';
import type { ObjectVersion } from '../../src/core/types.js';

const v1: ObjectVersion = { source: 's', ref: 'a.mp4', version: 'e1', size: 100 };
const v2: ObjectVersion = { ...v1, version: 'e2' };
const other: ObjectVersion = { source: 's', ref: 'b.mp4', version: 'e1', size: 100 };
const otherSource: ObjectVersion = { ...v1, source: 't' };
const block = (n: number, fill = 1) => Buffer.alloc(n, fill);

describe('MemoryBlockCache', () => {
  it('returns what was put, counting hits and misses', async () => {
    const c = new MemoryBlockCache({ maxBytes: 1000, blockSize: 10 });
    expect(await c.get(v1, 0)).toBeUndefined();
    await c.put(v1, 0, block(10, 7));
    expect(await c.get(v1, 0)).toEqual(block(10, 7));
    expect(c.stats()).toMatchObject({ hits: 1, misses: 1, bytes: 10, limit: 1000 });
  });

  it('a reservation counts against the limit at once, reads as a miss, and is filled by put()', async () => {
    const c = new MemoryBlockCache({ maxBytes: 100, blockSize: 10 });
    for (let i = 0; i < 10; i++) await c.put(other, i, block(10));
    c.reserve(v1, 0, 10);
    c.reserve(v1, 1, 10);
    expect(c.stats().bytes).toBe(100);
    expect(await c.get(other, 0)).toBeUndefined(); // evicted to make room for the reservations
    expect(await c.get(other, 1)).toBeUndefined();
    expect(await c.get(v1, 0)).toBeUndefined();
    await c.put(v1, 0, block(10, 5));
    expect(await c.get(v1, 0)).toEqual(block(10, 5));
    c.unreserve(v1, 1);
    c.unreserve(v1, 0); // filled: not a reservation any more, stays
    expect(c.stats().bytes).toBe(90);
    expect(await c.get(v1, 0)).toEqual(block(10, 5));
  });

  it('reservations take at most half the limit (a small tier keeps the blocks in use)', async () => {
    const c = new MemoryBlockCache({ maxBytes: 100, blockSize: 10 });
    for (let i = 0; i < 10; i++) c.reserve(v1, i, 10);
    expect(c.stats().bytes).toBe(50);
    await c.dropObject(v1.source, v1.ref);
    expect(c.stats().bytes).toBe(0);
    for (let i = 0; i < 10; i++) c.reserve(v1, i, 10); // dropped reservations were given back
    expect(c.stats().bytes).toBe(50);
  });

  it('keys blocks by source, ref, version and index', async () => {
    const c = new MemoryBlockCache({ maxBytes: 1000, blockSize: 10 });
    await c.put(v1, 0, block(10, 1));
    expect(await c.get(v2, 0)).toBeUndefined();
    expect(await c.get(other, 0)).toBeUndefined();
    expect(await c.get(otherSource, 0)).toBeUndefined();
    expect(await c.get(v1, 1)).toBeUndefined();
    expect(await c.get(v1, 0)).toEqual(block(10, 1));
  });

  it('stays within its byte limit, evicting the least recently used', async () => {
    const c = new MemoryBlockCache({ maxBytes: 30, blockSize: 10 });
    for (let i = 0; i < 3; i++) await c.put(v1, i, block(10, i + 1));
    await c.get(v1, 0); // 0 is now the most recently used
    await c.put(v1, 3, block(10, 4));
    expect(c.stats().bytes).toBeLessThanOrEqual(30);
    expect(await c.get(v1, 1)).toBeUndefined();
    expect(await c.get(v1, 0)).toEqual(block(10, 1));
    expect(await c.get(v1, 3)).toEqual(block(10, 4));
  });

  it('dropObject forgets every version of (source, ref) and nothing else', async () => {
    const c = new MemoryBlockCache({ maxBytes: 1000, blockSize: 10 });
    await c.put(v1, 0, block(10));
    await c.put(v1, 1, block(10));
    await c.put(v2, 0, block(10));
    await c.put(other, 0, block(10, 8));
    await c.put(otherSource, 0, block(10, 9));
    await c.dropObject('s', 'a.mp4');
    expect(await c.get(v1, 0)).toBeUndefined();
    expect(await c.get(v1, 1)).toBeUndefined();
    expect(await c.get(v2, 0)).toBeUndefined();
    expect(await c.get(other, 0)).toEqual(block(10, 8));
    expect(await c.get(otherSource, 0)).toEqual(block(10, 9));
    expect(c.stats().bytes).toBe(20);
  });

  it('keeps its per-object index in step with evictions and overwrites', async () => {
    const c = new MemoryBlockCache({ maxBytes: 20, blockSize: 10 });
    await c.put(v1, 0, block(10, 1));
    await c.put(v1, 0, block(10, 2)); // overwrite: still indexed
    await c.put(other, 0, block(10));
    await c.put(other, 1, block(10, 4)); // evicts v1#0
    expect(await c.get(v1, 0)).toBeUndefined();
    await c.put(v1, 5, block(10, 3)); // evicts other#0
    await c.dropObject('s', 'a.mp4');
    expect(await c.get(v1, 5)).toBeUndefined();
    expect(await c.get(other, 1)).toEqual(block(10, 4));
    const index = (c as unknown as { byObject: Map<string, Set<string>> }).byObject;
    expect([...index.keys()]).toEqual(['s\0b.mp4']);
    expect(index.get('s\0b.mp4')?.size).toBe(1);
  });

  it('refuses a block larger than the whole cache without corrupting its index', async () => {
    const c = new MemoryBlockCache({ maxBytes: 5, blockSize: 10 });
    await c.put(v1, 0, block(10));
    expect(await c.get(v1, 0)).toBeUndefined();
    await c.dropObject('s', 'a.mp4');
    expect(c.stats().bytes).toBe(0);
  });

  it('recycles the buffers of blocks that leave, but not while they are held', async () => {
    const c = new MemoryBlockCache({ maxBytes: 2 * 4096, blockSize: 4096 });
    const a = c.takeBuffer();
    const b = c.takeBuffer();
    expect(a.length).toBe(4096);
    expect(isDirectIoReady(a) && isDirectIoReady(b)).toBe(true); // page-aligned arena, page-sized blocks
    c.putOwned(v1, 0, a.subarray(0, 100), a);
    c.putOwned(v1, 1, b, b);
    c.hold(a);
    await c.dropObject('s', 'a.mp4'); // both blocks leave; `a` is still held (a disk write reads it)
    const next = c.takeBuffer();
    expect(next).toBe(b);
    expect(c.takeBuffer()).not.toBe(a); // past the tier's size: a fresh allocation
    c.release(a);
    expect(c.takeBuffer()).toBe(a);
  });

  it('a block size that is not a multiple of the page gives no buffers ready for direct I/O', () => {
    const c = new MemoryBlockCache({ maxBytes: 10_000, blockSize: 1000 });
    expect(isDirectIoReady(c.takeBuffer())).toBe(false);
    expect(isDirectIoReady(c.takeBuffer())).toBe(false);
  });

  describe('scan resistance', () => {
    const big: ObjectVersion = { source: 's', ref: 'big.bin', version: 'e1', size: 1000 };
    /** Block i of `o` holds the byte stamp(o, i): a block read back is checked to be that block. */
    const stamp = (o: ObjectVersion, i: number) => (o === big ? 1 + (i % 200) : 250);
    const fill = (c: MemoryBlockCache, o: ObjectVersion, i: number) => {
      const owned = c.takeBuffer();
      owned.fill(stamp(o, i));
      c.putOwned(o, i, owned, owned);
      return owned;
    };
    const blockOf = (o: ObjectVersion, i: number) => Buffer.alloc(4096, stamp(o, i));

    it('demoted blocks wait in a short FIFO, then leave and their buffers carry the stream on', async () => {
      const c = new MemoryBlockCache({ maxBytes: 10 * 4096, blockSize: 4096, streamedKeepBytes: 2 * 4096 });
      fill(c, other, 0); // used otherwise: a sequential read must not push it out
      const buffers = new Set<Buffer>();
      for (let i = 0; i < 30; i++) {
        buffers.add(fill(c, big, i));
        if (i >= 3) c.demote(big, i - 3);
      }
      // 3 blocks ahead of the demotions, 2 demoted ones kept, and the other object's block
      expect(c.stats().bytes).toBe(6 * 4096);
      expect(buffers.size).toBeLessThanOrEqual(6); // recycled: no buffer beyond what the stream holds
      expect(await c.get(other, 0)).toEqual(blockOf(other, 0));
      expect(await c.get(big, 0)).toBeUndefined(); // the oldest demoted left first
      expect(await c.get(big, 25)).toEqual(blockOf(big, 25)); // the last two demoted are kept
      expect(await c.get(big, 26)).toEqual(blockOf(big, 26));
      expect(await c.get(big, 24)).toBeUndefined();
    });

    it('a demoted block read again stays; a block demoted before that is stored again is kept', async () => {
      const c = new MemoryBlockCache({ maxBytes: 10 * 4096, blockSize: 4096, streamedKeepBytes: 4096 });
      for (let i = 0; i < 3; i++) fill(c, big, i);
      c.demote(big, 0);
      c.demote(big, 1); // 0 leaves (it is remembered), 1 waits
      expect(c.peek(big, 1)).toEqual(blockOf(big, 1)); // a second reader: 1 is kept from now on
      c.demote(big, 2);
      c.demote(big, 1); // ignored: kept
      expect(await c.get(big, 1)).toEqual(blockOf(big, 1));
      fill(c, big, 0); // read again (from disk) after it left as demoted: kept
      c.demote(big, 0);
      fill(c, big, 3);
      c.demote(big, 3); // 2 leaves, not 0
      expect(await c.get(big, 0)).toEqual(blockOf(big, 0));
      expect(await c.get(big, 2)).toBeUndefined();
    });

    it('demote ignores reservations and blocks it does not hold', () => {
      const c = new MemoryBlockCache({ maxBytes: 10 * 4096, blockSize: 4096, streamedKeepBytes: 0 });
      c.reserve(big, 0, 4096);
      c.demote(big, 0);
      c.demote(big, 7);
      expect(c.stats().bytes).toBe(4096);
    });
  });
});
