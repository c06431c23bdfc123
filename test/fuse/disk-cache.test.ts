/**
 * The disk tier through real mounts: blocks survive a daemon restart (counted as GETs at the storage
 * proxy), and a corrupted block is detected and fetched again, byte-exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { mountDaemon, sh, shResult } from '../helpers/mount.js';

const MiB = 1024 * 1024;
const DATA = deterministicBytes('disk-tier', 6 * MiB + 99);
const LARGE = deterministicBytes('disk-tier-large', 24 * MiB + 7);
let storage: ProxiedBucket;
let cacheDir: string;

beforeAll(async () => {
  storage = await startProxiedBucket('media', { files: [{ path: 'clip.bin', data: DATA }, { path: 'large.bin', data: LARGE }] });
  cacheDir = await mkdtemp(join(tmpdir(), 'assetfs-diskcache-'));
});
afterAll(async () => {
  await storage?.close();
  await rm(cacheDir, { recursive: true, force: true });
});

const config = () => ({
  cacheDir,
  cache: { memory: '2MiB', disk: '64MiB' },
  sources: [storage.source()],
});
const gets = () => storage.proxy.requests().filter((r) => r.method === 'GET' && r.path.endsWith('/clip.bin'));

const SLOT = 4096 + MiB;

/** What the disk tier holds under `dir`: the block index of each slab slot, and the bytes of the tier's files. */
async function stored(dir = cacheDir): Promise<{ slots: number[]; files: string[]; bytes: number }> {
  const root = join(dir, 'blocks');
  const slab = await readFile(join(root, 'blocks.slab'));
  const slots = Array.from({ length: Math.ceil(slab.length / SLOT) }, (_, i) => Number(/"index":(\d+)/.exec(slab.subarray(i * SLOT, i * SLOT + 4096).toString('latin1'))?.[1] ?? -1));
  const files: string[] = [];
  let bytes = slab.length;
  for (const sub of await readdir(root)) {
    if (sub === 'blocks.slab') continue;
    for (const f of await readdir(join(root, sub))) {
      files.push(join(root, sub, f));
      bytes += (await stat(join(root, sub, f))).size;
    }
  }
  return { slots, files, bytes };
}

describe('disk cache tier', () => {
  it('keeps blocks across a restart: the second daemon reads without touching storage', async () => {
    const first = await mountDaemon(config());
    try {
      expect((await sh(`sha256sum ${first.mountpoint}/s3/clip.bin`)).split(' ')[0]).toBe(sha256(DATA));
    } finally {
      await first.stop();
    }
    expect(gets().length).toBeGreaterThan(0);
    const { slots, files } = await stored();
    expect(slots.sort()).toEqual([0, 1, 2, 3, 4, 5]); // the six full blocks; the short seventh has a file
    expect(files).toHaveLength(1);
    storage.proxy.clearLog();
    const second = await mountDaemon(config());
    try {
      expect((await sh(`sha256sum ${second.mountpoint}/s3/clip.bin`)).split(' ')[0]).toBe(sha256(DATA));
    } finally {
      await second.stop();
    }
    expect(gets()).toHaveLength(0);
  });

  it('a corrupted block is detected and that block alone is fetched again', async () => {
    const slab = join(cacheDir, 'blocks', 'blocks.slab');
    const raw = await readFile(slab);
    raw[SLOT - 1] = raw[SLOT - 1]! ^ 0xff; // the last byte of the first slot's block
    await writeFile(slab, raw);
    storage.proxy.clearLog();
    const d = await mountDaemon(config());
    try {
      expect((await sh(`sha256sum ${d.mountpoint}/s3/clip.bin`)).split(' ')[0]).toBe(sha256(DATA));
    } finally {
      await d.stop();
    }
    expect(gets(), JSON.stringify(gets())).toHaveLength(1);
  });

  it('a small cap: reading four times the cap is byte-exact and the cache files stay within the cap', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'assetfs-diskcap-'));
    const d = await mountDaemon({ ...config(), cacheDir: dir, cache: { memory: '2MiB', disk: '6MiB' } });
    try {
      expect((await sh(`sha256sum ${d.mountpoint}/s3/large.bin`)).split(' ')[0]).toBe(sha256(LARGE));
    } finally {
      await d.stop();
    }
    const { bytes } = await stored(dir);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(6 * MiB + 7 * 4096); // the cap, plus each block's header page (and the short block's file)
    await rm(dir, { recursive: true, force: true });
  });

  it('a full cache disk (a 10 MiB tmpfs under a 64 MiB cap) never fails a read: blocks are evicted or not cached', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'assetfs-fulldisk-'));
    await sh(`mount -t tmpfs -o size=10m tmpfs ${dir}`);
    try {
      await mkdir(join(dir, 'cache'));
      const d = await mountDaemon({ ...config(), cacheDir: join(dir, 'cache'), cache: { memory: '2MiB', disk: '64MiB' } });
      try {
        for (let i = 0; i < 2; i++) expect((await sh(`sha256sum ${d.mountpoint}/s3/large.bin`)).split(' ')[0]).toBe(sha256(LARGE));
        expect(d.logs()).not.toMatch(/ENOSPC/);
      } finally {
        await d.stop();
      }
    } finally {
      await shResult(`umount -l ${dir}`);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
