import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
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

async function blockFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of await readdir(root)) for (const f of await readdir(join(root, sub))) out.push(join(root, sub, f));
  return out;
}

describe('DiskBlockCache', () => {
  it('stores blocks 0600 in 0700 directories and survives a restart', async () => {
    const root = join(dir, 'restart');
    const a = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await a.init();
    for (let i = 0; i < 4; i++) await a.put(obj, i, block(i));
    const files = await blockFiles(root);
    expect(files).toHaveLength(4);
    expect((await stat(files[0]!)).mode & 0o777).toBe(0o600);
    expect((await stat(join(files[0]!, '..'))).mode & 0o777).toBe(0o700);
    expect((await stat(root)).mode & 0o777).toBe(0o700);

    const b = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await b.init();
    for (let i = 0; i < 4; i++) expect((await b.get(obj, i))?.equals(block(i))).toBe(true);
    expect(b.stats().hits).toBe(4);
  });

  it('the start-up scan indexes every block, oldest first for eviction, and removes torn, temp and foreign files', async () => {
    const root = join(dir, 'scan');
    const a = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await a.init();
    const many: ObjectVersion = { ...obj, size: 60 * BS };
    for (let i = 0; i < 60; i++) await a.put(many, i, block(i));
    // mtimes 1 s apart, block 0 oldest: the restarted cache must evict in that order.
    for (const [n, f] of (await blockFiles(root)).entries()) {
      const header = (await readFile(f)).subarray(0, 4096).toString('latin1');
      const index = Number(/"index":(\d+)/.exec(header)![1]);
      await utimes(f, 1_000_000 + index, 1_000_000 + index);
      if (n === 0) await writeFile(`${f}.abcd1234.tmp`, 'torn write');
      if (n === 1) await writeFile(join(f, '..', 'f'.repeat(64) + '.blk'), 'not a block file');
      if (index === 59) await truncate(f, 4096 + 1000); // a crash mid-write: shorter than its header says
    }
    expect(await blockFiles(root)).toHaveLength(62);

    const b = new DiskBlockCache({ dir: root, maxBytes: 50 * BS, blockSize: BS });
    await b.init();
    expect(await blockFiles(root)).toHaveLength(50); // the torn block and the 2 strays deleted, the 9 oldest evicted
    expect(b.stats().blocks).toBe(50);
    for (let i = 0; i < 9; i++) expect(b.has(many, i)).toBe(false);
    for (let i = 9; i < 59; i++) expect((await b.get(many, i))?.equals(block(i))).toBe(true);
    expect(b.has(many, 59)).toBe(false);
  });

  it('never serves a block of another object version', async () => {
    const c = new DiskBlockCache({ dir: join(dir, 'version'), maxBytes: 100 * BS, blockSize: BS });
    await c.init();
    await c.put(obj, 0, block(0));
    expect(await c.get({ ...obj, version: 'etag-2' }, 0)).toBeUndefined();
    expect(await c.get(obj, 0)).toBeDefined();
  });

  it('detects a corrupted or torn block, deletes it and reports a miss', async () => {
    const root = join(dir, 'corrupt');
    const c = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await c.init();
    await c.put(obj, 0, block(0));
    await c.put(obj, 1, block(1));
    const [f0, f1] = await blockFiles(root);
    const raw = await readFile(f0!);
    raw[raw.length - 100] ^= 0xff;
    await writeFile(f0!, raw);
    await writeFile(f1!, (await readFile(f1!)).subarray(0, 1000)); // torn
    expect(await c.get(obj, 0)).toBeUndefined();
    expect(await c.get(obj, 1)).toBeUndefined();
    expect(c.stats().corrupt).toBe(2);
    expect(await blockFiles(root)).toHaveLength(0);
  });

  it('evicts least recently used blocks to stay under its cap', async () => {
    const root = join(dir, 'evict');
    const c = new DiskBlockCache({ dir: root, maxBytes: 4 * BS, blockSize: BS });
    await c.init();
    for (let i = 0; i < 10; i++) await c.put(obj, i, block(i));
    await new Promise((r) => setTimeout(r, 50));
    expect(c.stats().bytes).toBeLessThanOrEqual(4 * BS);
    expect(await blockFiles(root)).toHaveLength(4);
    expect(await c.get(obj, 9)).toBeDefined();
    expect(await c.get(obj, 0)).toBeUndefined();
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
      expect(await c.get({ ...obj, size: 40 * BS }, 39)).toBeDefined();
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
    const heads = await Promise.all((await blockFiles(root)).map(async (f) => (await readFile(f)).subarray(0, 300).toString('latin1')));
    expect(heads.filter((h) => h.includes('"at":4096') && h.includes('"index":0'))).toHaveLength(1);
    expect(heads.filter((h) => !h.includes('"at"') && h.includes('"index":1'))).toHaveLength(1);
    const b = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await b.init();
    expect((await b.get(obj, 0, owned(2)))?.equals(block(0))).toBe(true); // O_DIRECT read
    expect((await b.get(obj, 0))?.equals(block(0))).toBe(true); // buffered read of the same file
    expect((await b.get(obj, 1, owned(3)))?.equals(short)).toBe(true);
    expect(b.stats()).toMatchObject({ hits: 3, corrupt: 0 });
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
    const files = await blockFiles(root);
    expect(files).toHaveLength(1);
    expect((await readFile(files[0]!)).subarray(0, 300).toString('latin1')).toContain('"at":4096');
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
      for (const f of await blockFiles(join(root, 'blocks'))) expect((await readFile(f)).subarray(0, 300).toString('latin1')).not.toContain('"at"');
    } finally {
      await pexec('umount', [root]);
    }
  });
});
