import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
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

  it('writes aligned blocks with O_DIRECT (header padded to a page) and reads them back, direct or buffered, also after a restart', async () => {
    const root = join(dir, 'direct');
    const c = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await c.init();
    const arena = alignedBuffer(4 * BS);
    const owned = (i: number) => arena.subarray(i * BS, (i + 1) * BS);
    owned(0).set(block(0));
    const short = block(1).subarray(0, 5000); // the last block of an object is short: padded on disk
    owned(1).set(short);
    await c.put(obj, 0, owned(0), owned(0));
    await c.put(obj, 1, owned(1).subarray(0, 5000), owned(1));
    for (const f of await blockFiles(root)) {
      const raw = await readFile(f);
      expect(raw.length % 4096).toBe(0);
      expect(raw.subarray(0, 300).toString('latin1')).toContain('"at":4096');
    }
    const b = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await b.init();
    const into = owned(2);
    expect((await b.get(obj, 0, into, true))?.equals(block(0))).toBe(true); // O_DIRECT read
    expect((await b.get(obj, 1, owned(3), true))?.equals(short)).toBe(true);
    expect((await b.get(obj, 1))?.equals(short)).toBe(true); // buffered read of the same file
    expect(b.stats()).toMatchObject({ hits: 3, corrupt: 0 });
  });

  it('falls back to buffered writes when direct I/O is refused (EINVAL), losing no block', async () => {
    const root = join(dir, 'no-direct');
    const c = new DiskBlockCache({ dir: root, maxBytes: 100 * BS, blockSize: BS });
    await c.init();
    // Claimed aligned but at an odd address (malloc's are multiples of 16): the kernel refuses it.
    const misaligned = Buffer.allocUnsafeSlow(2 * BS).subarray(1, BS + 1);
    misaligned.set(block(4));
    await c.put(obj, 4, misaligned, misaligned);
    expect((await c.get(obj, 4))?.equals(block(4))).toBe(true);
    const [f] = await blockFiles(root);
    expect((await readFile(f!)).subarray(0, 300).toString('latin1')).not.toContain('"at"');
  });
});
