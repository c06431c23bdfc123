import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Slab } from '../../src/cache/slab.js';
import { fillHeaderPage } from '../../src/cache/block-file.js';

const BS = 16 * 1024;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-slab-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const page = (index: number) => {
  const p = Buffer.alloc(4096);
  fillHeaderPage({ source: 's', ref: 'r', version: 'v', index, len: BS, crc: 0, t: index }, p);
  return p;
};

describe('Slab', () => {
  it('reuses freed slots before growing, never past maxSlots, and a slot released twice is free once', async () => {
    const slab = new Slab(join(dir, 'grow.slab'), BS);
    expect(await slab.scan()).toEqual([]);
    expect([slab.take(2), slab.take(2), slab.take(2)]).toEqual([0, 1, undefined]);
    slab.release(0);
    slab.release(0); // twice: still one free slot, never handed to two writers
    expect([slab.take(2), slab.take(2)]).toEqual([0, undefined]);
    expect(slab.slots).toBe(2);
    await slab.reset();
  });

  it('a slot released while a read of it runs is not handed out until that read ends', async () => {
    const slab = new Slab(join(dir, 'read.slab'), BS);
    await slab.scan();
    const slot = slab.take(10)!;
    await slab.write(slot, page(7), Buffer.alloc(BS, 7), false);
    const reading = slab.read(slot, Buffer.alloc(4096), Buffer.alloc(BS), false);
    slab.release(slot); // evicted while the read is in flight
    const other = slab.take(10);
    expect(other).not.toBe(slot);
    expect((await reading)?.index).toBe(7);
    expect(slab.take(10)).toBe(slot);
    await slab.reset();
  });

  it('the scan returns the slots holding a header, frees the others, and ignores a slot the file holds only in part', async () => {
    const file = join(dir, 'scan.slab');
    const a = new Slab(file, BS);
    await a.scan();
    for (let i = 0; i < 3; i++) {
      const slot = a.take(10)!;
      if (i !== 1) await a.write(slot, page(i), Buffer.alloc(BS, i), false);
    }
    await a.write(a.take(10)!, page(3), Buffer.alloc(100), false).catch(() => undefined); // a short write
    await a.reset();
    expect((await stat(file)).size).toBe(3 * (4096 + BS) + 4096 + 100);
    const b = new Slab(file, BS);
    const found = await b.scan();
    expect(found.map((f) => [f.slot, f.header.index])).toEqual([
      [0, 0],
      [2, 2],
    ]);
    // Slot 1 (never written) and slot 3 (cut short) are free and come first.
    expect([b.take(10), b.take(10), b.take(10)]).toEqual([1, 3, 4]);
    const data = Buffer.alloc(BS);
    expect((await b.read(2, Buffer.alloc(4096), data, false))?.index).toBe(2);
    expect(data.equals(Buffer.alloc(BS, 2))).toBe(true);
    await b.reset();
  });

  it('trim cuts free slots off the end of the file, and only those', async () => {
    const file = join(dir, 'trim.slab');
    const slab = new Slab(file, BS);
    await slab.scan();
    for (let i = 0; i < 5; i++) await slab.write(slab.take(10)!, page(i), Buffer.alloc(BS, i), false);
    slab.release(1);
    slab.release(4);
    slab.release(3);
    await slab.trim();
    expect(slab.slots).toBe(3);
    expect((await stat(file)).size).toBe(3 * (4096 + BS));
    expect([slab.take(10), slab.take(10)]).toEqual([1, 3]); // slot 1 stays free inside the file
    await slab.reset();
  });
});
