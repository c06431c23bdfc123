import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBlockCache } from '../../src/cache/memory-cache.js';
import { DiskBlockCache } from '../../src/cache/disk-cache.js';
import { TieredBlockCache } from '../../src/cache/tiered-cache.js';
import type { ObjectVersion } from '../../src/core/types.js';

const BS = 64 * 1024;
const obj: ObjectVersion = { source: 's', ref: 'a.mp4', version: 'e1', size: 8 * BS };
const bytes = (i: number) => Buffer.alloc(BS, i + 1);

/** A disk tier whose writes wait until released: a slow disk, on demand. */
class GatedDisk extends DiskBlockCache {
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open();
  }
  override async put(o: ObjectVersion, index: number, data: Buffer): Promise<void> {
    await this.gate;
    return super.put(o, index, data);
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-tiered-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('TieredBlockCache', () => {
  it('serves a block evicted from memory while its disk write is still in flight, and keeps its buffer from being recycled', async () => {
    const memory = new MemoryBlockCache({ maxBytes: BS, blockSize: BS }); // room for one block
    const disk = new GatedDisk({ dir: join(dir, 'gated'), maxBytes: 100 * BS, blockSize: BS });
    await disk.init();
    const cache = new TieredBlockCache(memory, disk);
    disk.hold();
    const a = cache.takeBuffer();
    a.set(bytes(0));
    cache.putOwned(obj, 0, a, a);
    const b = cache.takeBuffer();
    expect(b).not.toBe(a);
    b.set(bytes(1));
    cache.putOwned(obj, 1, b, b); // evicts block 0 from memory; its disk write waits
    expect(await memory.get(obj, 0)).toBeUndefined();
    expect(disk.has(obj, 0)).toBe(false);
    expect((await cache.get(obj, 0))?.equals(bytes(0))).toBe(true);
    const c = cache.takeBuffer();
    expect(c).not.toBe(a); // still held by the pending write
    cache.giveBack(c);
    disk.release();
    await cache.settled();
    expect(disk.has(obj, 0)).toBe(true);
    expect((await cache.get(obj, 0))?.equals(bytes(0))).toBe(true); // now from disk
  });

  it('forgets in-flight blocks of a dropped object', async () => {
    const memory = new MemoryBlockCache({ maxBytes: BS, blockSize: BS });
    const disk = new GatedDisk({ dir: join(dir, 'dropped'), maxBytes: 100 * BS, blockSize: BS });
    await disk.init();
    const cache = new TieredBlockCache(memory, disk);
    disk.hold();
    await cache.put(obj, 0, bytes(0));
    await cache.put(obj, 1, bytes(1));
    await cache.dropObject('s', 'a.mp4');
    expect(await cache.get(obj, 0)).toBeUndefined();
    disk.release();
    await cache.settled();
  });

  it('demotes blocks in memory only when the disk tier holds them', async () => {
    // [disk bytes, background writes allowed]: no disk tier; a disk that fell behind (write skipped); a disk.
    for (const [diskBytes, maxPending] of [[0, 64], [100 * BS, 0], [100 * BS, 64]] as const) {
      const memory = new MemoryBlockCache({ maxBytes: 8 * BS, blockSize: BS, streamedKeepBytes: 0 });
      const disk = new DiskBlockCache({ dir: join(dir, `demote-${diskBytes}-${maxPending}`), maxBytes: diskBytes, blockSize: BS });
      await disk.init();
      const cache = new TieredBlockCache(memory, disk, maxPending);
      await cache.put(obj, 0, bytes(0));
      await cache.settled();
      cache.demote(obj, 0);
      const onDisk = diskBytes > 0 && maxPending > 0;
      expect(memory.peek(obj, 0) !== undefined).toBe(!onDisk);
      expect((await cache.get(obj, 0))?.equals(bytes(0))).toBe(true); // from memory, or from disk
    }
  });
});
