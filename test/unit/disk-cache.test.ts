import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DiskBlockCache } from '../../src/cache/disk-cache.js';
import { alignedBuffer } from '../../src/util/aligned.js';
import type { ObjectVersion } from '../../src/core/types.js';

const pexec = promisify(execFile);
const BS = 64 * 1024;
const obj: ObjectVersion = { source: 's', ref: 'videos/a.mp4', version: 'etag-1', size: 10 * BS };
const block = (i: number, v = 1) => Buffer.alloc(BS, (i * 31 + v) & 0xff);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-disk-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The block files of short blocks (full-size blocks live in the slab). */
async function blockFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await readdir(root)) {
    if (sub === SLAB) continue;
    for (const f of await readdir(join(root, sub))) out.push(join(root, sub, f));
  }
  return out;
}

const SLAB = 'blocks.slab';
const SLOT = 4096 + BS;

/** Each slot of the slab: its header page as text (empty for a slot the file holds only in part). */
async function slots(root: string): Promise<string[]> {
  const raw = await readFile(join(root, SLAB));
  return Array.from({ length: Math.ceil(raw.length / SLOT) }, (_, i) => raw.subarray(i * SLOT, i * SLOT + 4096).toString('latin1'));
}
const slotIndex = (head: string) => Number(/"index":(\d+)/.exec(head)?.[1] ?? -1);

/** Overwrite `bytes` at `offset` of the slab file. */
async function patchSlab(root: string, offset: number, bytes: Buffer): Promise<void> {
  const raw = await readFile(join(root, SLAB));
  bytes.copy(raw, offset);
  await writeFile(join(root, SLAB), raw);
}

describe('DiskBlockCache', () => {
  it('stores blocks 0600 in 0700 directories and survives a restart', async () => {
    const root = join(dir, 'restart');
    const a = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await a.init();
    for (let i = 0; i < 4; i++) await a.put(obj, i, block(i));
    await a.put(obj, 9, block(9).subarray(0, 100)); // the short last block: a file of its own
    expect((await slots(root)).map(slotIndex)).toEqual([0, 1, 2, 3]);
    expect((await stat(join(root, SLAB))).mode & 0o777).toBe(0o600);
    const files = await blockFiles(root);
    expect(files).toHaveLength(1);
    expect((await stat(files[0]!)).mode & 0o777).toBe(0o600);
    expect((await stat(join(files[0]!, '..'))).mode & 0o777).toBe(0o700);
    expect((await stat(root)).mode & 0o777).toBe(0o700);
    await a.close();

    const b = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await b.init();
    for (let i = 0; i < 4; i++) expect((await b.get(obj, i))?.equals(block(i))).toBe(true);
    expect((await b.get(obj, 9))?.equals(block(9).subarray(0, 100))).toBe(true);
    expect(b.stats().hits).toBe(5);
    await b.close();
  });

  it('the start-up scan indexes every block, oldest first for eviction, and removes torn, temp and foreign files', async () => {
    const root = join(dir, 'scan');
    const a = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await a.init();
    const many: ObjectVersion = { ...obj, size: 60 * BS + 100 };
    // Written in reverse, a few ms apart: slot order is not age order, and the scan must go by age.
    for (let i = 59; i >= 0; i--) {
      await a.put(many, i, block(i));
      await new Promise((r) => setTimeout(r, 2));
    }
    await a.put(many, 60, block(60).subarray(0, 100));
    await a.close();
    // Block 0, written last, is the newest; the slot of block 59 (the first written) gets a foreign
    // header, and the file ends part-way into one more slot (a crash mid-write).
    expect((await slots(root)).map(slotIndex)).toEqual(Array.from({ length: 60 }, (_, i) => 59 - i));
    await patchSlab(root, 0, Buffer.from('not a header'));
    await appendFile(join(root, SLAB), Buffer.alloc(5000, 7));
    const [f] = await blockFiles(root);
    await utimes(f!, 1_000_000, 1_000_000); // the short block: oldest of all
    await writeFile(`${f}.abcd1234.tmp`, 'torn write');
    await writeFile(join(f!, '..', 'f'.repeat(64) + '.blk'), 'not a block file');
    const short = join(f!, '..', '..', '00', 'e'.repeat(64) + '.blk');
    await mkdir(join(short, '..'), { recursive: true });
    const whole = await readFile(f!);
    await writeFile(short, whole.subarray(0, whole.length - 50)); // shorter than its header says
    expect(await blockFiles(root)).toHaveLength(4);

    const b = new DiskBlockCache({ dir: root, maxBytes: 50 * BS, blockSize: BS });
    await b.init();
    // 59 full blocks found (the foreign slot is free), the 9 oldest evicted, and with them the short block.
    expect(b.stats().blocks).toBe(50);
    expect(await blockFiles(root)).toHaveLength(0);
    for (let i = 50; i < 61; i++) expect(b.has(many, i)).toBe(false);
    for (let i = 0; i < 50; i++) expect((await b.get(many, i))?.equals(block(i))).toBe(true);
    // The partly written slot at the end is cut off; freed slots (the foreign one, the evicted ones)
    // are written before the file grows.
    expect(b.stats().slabSlots).toBe(60);
    expect((await stat(join(root, SLAB))).size).toBe(60 * SLOT);
    for (let i = 50; i < 60; i++) await b.put(many, i, block(i));
    expect(b.stats().slabSlots).toBe(60);
    for (let i = 50; i < 60; i++) expect((await b.get(many, i))?.equals(block(i))).toBe(true);
    await b.close();
  });

  it('never serves a block of another object version', async () => {
    const c = new DiskBlockCache({ dir: join(dir, 'version'), maxBytes: 100 * BS, blockSize: BS });
    await c.init();
    await c.put(obj, 0, block(0));
    expect(await c.get({ ...obj, version: 'etag-2' }, 0)).toBeUndefined();
    expect(await c.get(obj, 0)).toEqual(block(0));
  });

  it('detects a corrupted or torn block, deletes it and reports a miss', async () => {
    const root = join(dir, 'corrupt');
    const c = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await c.init();
    await c.put(obj, 0, block(0));
    await c.put(obj, 1, block(1));
    await c.put(obj, 9, block(9).subarray(0, 100));
    expect((await slots(root)).map(slotIndex)).toEqual([0, 1]);
    await patchSlab(root, 4096 + BS - 100, Buffer.from([~block(0)[0]! & 0xff])); // one byte of block 0 flipped
    await patchSlab(root, SLOT + 4096 + BS / 2, Buffer.alloc(BS / 2)); // block 1 torn: its second half never written
    const [f] = await blockFiles(root);
    const raw = await readFile(f!);
    raw[raw.length - 1] = raw[raw.length - 1]! ^ 0xff;
    await writeFile(f!, raw);
    expect(await c.get(obj, 0)).toBeUndefined();
    expect(await c.get(obj, 1)).toBeUndefined();
    expect(await c.get(obj, 9)).toBeUndefined();
    expect(c.stats()).toMatchObject({ corrupt: 3, blocks: 0 });
    expect(await blockFiles(root)).toHaveLength(0);
    // The two slots are free again: rewriting the blocks does not grow the file, and they read back.
    await c.put(obj, 0, block(0));
    await c.put(obj, 1, block(1));
    expect(c.stats().slabSlots).toBe(2);
    expect((await c.get(obj, 0))?.equals(block(0))).toBe(true);
    expect((await c.get(obj, 1))?.equals(block(1))).toBe(true);
    await c.close();
  });

  it('evicts least recently used blocks to stay under its cap', async () => {
    const root = join(dir, 'evict');
    const c = new DiskBlockCache({ dir: root, maxBytes: 4 * BS, blockSize: BS });
    await c.init();
    for (let i = 0; i < 10; i++) await c.put(obj, i, block(i));
    expect(c.stats().bytes).toBeLessThanOrEqual(4 * BS);
    // The slab holds the cap's worth of slots: a block evicts the least recently used one before it is written.
    expect((await stat(join(root, SLAB))).size).toBe(4 * SLOT);
    expect(await c.get(obj, 9)).toEqual(block(9));
    expect(await c.get(obj, 0)).toBeUndefined();
    await c.close();
  });

  it('dropObject forgets every block of an object', async () => {
    const c = new DiskBlockCache({ dir: join(dir, 'drop'), maxBytes: 100 * BS, blockSize: BS });
    await c.init();
    await c.put(obj, 0, block(0));
    await c.put({ ...obj, version: 'etag-2' }, 1, block(1));
    await c.dropObject(obj.source, obj.ref);
    expect(await c.get(obj, 0)).toBeUndefined();
    expect(await c.get({ ...obj, version: 'etag-2' }, 1)).toBeUndefined();
  });

  it('a full disk never fails a put (tmpfs of 1 MiB, cap far larger)', async () => {
    const root = join(dir, 'full');
    await mkdir(root);
    try {
      await pexec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', root]);
    } catch {
      return expect.fail('could not mount a tmpfs (are we root?)');
    }
    try {
      const c = new DiskBlockCache({ dir: join(root, 'blocks'), maxBytes: 1000 * BS, blockSize: BS });
      await c.init();
      for (let i = 0; i < 40; i++) await expect(c.put({ ...obj, size: 40 * BS }, i, block(i))).resolves.toBeUndefined();
      const held = c.stats().blocks;
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThan(40);
      expect((await c.get({ ...obj, size: 40 * BS }, 39))?.equals(block(39))).toBe(true);
      await c.close();
    } finally {
      await pexec('umount', [root]);
    }
  });

  it('writes page-aligned blocks with O_DIRECT (header padded to a page), the short last block buffered, and reads them back direct or buffered, also after a restart', async () => {
    const root = join(dir, 'direct');
    const c = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await c.init();
    const arena = alignedBuffer(4 * BS);
    const owned = (i: number) => arena.subarray(i * BS, (i + 1) * BS);
    owned(0).set(block(0));
    const short = block(1).subarray(0, 5000); // the last block of an object is short
    owned(1).set(short);
    await c.put(obj, 0, owned(0));
    await c.put(obj, 1, owned(1).subarray(0, 5000));
    expect(c.stats().directIo).toBe(true);
    const [head] = await slots(root);
    expect(head).toContain('"at":4096');
    expect(slotIndex(head!)).toBe(0);
    const files = await blockFiles(root);
    expect(files).toHaveLength(1);
    const shortHead = (await readFile(files[0]!)).subarray(0, 300).toString('latin1');
    expect(shortHead).not.toContain('"at"');
    expect(slotIndex(shortHead)).toBe(1);
    await c.close();
    const b = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await b.init();
    expect((await b.get(obj, 0, owned(2)))?.equals(block(0))).toBe(true); // O_DIRECT read
    expect((await b.get(obj, 0))?.equals(block(0))).toBe(true); // buffered read of the same file
    expect((await b.get(obj, 1, owned(3)))?.equals(short)).toBe(true);
    expect(b.stats()).toMatchObject({ hits: 3, corrupt: 0, directIo: true });
    await b.close();
  });

  it('a name too long for a block file header is not cached on disk (it could never be read back), and direct I/O stays on', async () => {
    const root = join(dir, 'long-name');
    const c = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await c.init();
    const arena = alignedBuffer(2 * BS);
    const long: ObjectVersion = { ...obj, ref: `videos/${'x'.repeat(5000)}.mp4` };
    arena.subarray(0, BS).set(block(2));
    arena.subarray(BS).set(block(3));
    await c.put(long, 0, arena.subarray(0, BS));
    await c.put(obj, 3, arena.subarray(BS));
    expect(c.has(long, 0)).toBe(false);
    expect((await c.get(obj, 3))?.equals(block(3))).toBe(true);
    const held = await slots(root);
    expect(held).toHaveLength(1);
    expect(held[0]).toContain('"at":4096');
    expect(c.stats().directIo).toBe(true);
    await c.close();
  });

  it('falls back to buffered I/O on a filesystem that refuses O_DIRECT (ramfs), losing no block', async () => {
    const root = join(dir, 'ramfs');
    await mkdir(root);
    try {
      await pexec('mount', ['-t', 'ramfs', 'ramfs', root]);
    } catch {
      return expect.fail('could not mount a ramfs (are we root?)');
    }
    try {
      const c = new DiskBlockCache({ dir: join(root, 'blocks'), maxBytes: 100 * BS, blockSize: BS });
      await c.init();
      const arena = alignedBuffer(2 * BS);
      arena.subarray(0, BS).set(block(4));
      arena.subarray(BS).set(block(5));
      await c.put(obj, 4, arena.subarray(0, BS));
      await c.put(obj, 5, arena.subarray(BS));
      expect((await c.get(obj, 4, arena.subarray(BS)))?.equals(block(4))).toBe(true);
      expect((await c.get(obj, 5))?.equals(block(5))).toBe(true);
      expect(c.stats()).toMatchObject({ directIo: false, blocks: 2, corrupt: 0 });
      await c.close();
    } finally {
      await pexec('umount', [root]);
    }
  });
});
