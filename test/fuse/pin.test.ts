/**
 * `assetfs pin` / `unpin` through a real daemon: a pinned folder is downloaded in the background onto
 * the disk tier, survives reading far more than the disk cache holds and a restart (counted as GETs at
 * the storage proxy: none), shows in `assetfs status`, and unpin lets it go.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { BIN, mountDaemon, sh, until, type MountedDaemon } from '../helpers/mount.js';

const MiB = 1024 * 1024;
const A = deterministicBytes('pin-a', 5 * MiB + 1);
const B = deterministicBytes('pin-b', 3 * MiB);
const OTHER = deterministicBytes('pin-other', 24 * MiB);
let storage: ProxiedBucket;
let work: string;

interface Status {
  pins: { path: string; files: number; bytes: number; cachedBytes: number; state: string }[];
}

const config = () => ({
  cacheDir: join(work, 'cache'),
  cache: { memory: '2MiB', disk: '8MiB' },
  sources: [storage.source()],
});
const cli = (args: string) => sh(`node ${BIN} ${args} --socket ${join(work, 'cache', 'control.sock')}`);
const status = async () => JSON.parse(await cli('status --json')) as Status;
const pinnedGets = () => storage.proxy.requests().filter((r) => r.method === 'GET' && r.path.startsWith('/media/pinned/')).length;

beforeAll(async () => {
  storage = await startProxiedBucket('media');
  await storage.seed([
    { path: 'pinned/a.bin', data: A },
    { path: 'pinned/sub/b.bin', data: B },
    { path: 'other/big.bin', data: OTHER },
  ]);
  work = await mkdtemp(join(tmpdir(), 'assetfs-pin-'));
});
afterAll(async () => {
  await storage?.close();
  await rm(work, { recursive: true, force: true });
});

describe.sequential('pinning', () => {
  let d: MountedDaemon;
  afterAll(async () => d?.stop());

  it('pins a folder: every block downloaded in the background, shown in status', async () => {
    d = await mountDaemon(config());
    expect(await cli(`pin ${d.mountpoint}/s3/pinned`)).toMatch(/pinned .*: 2 files, 8(\.0)? MiB/);
    await until(async () => (await status()).pins[0]?.state === 'complete', 'the pin download');
    const [p] = (await status()).pins;
    expect(p).toMatchObject({ path: '/s3/pinned', files: 2, bytes: A.length + B.length, cachedBytes: A.length + B.length });
    expect(await cli('status')).toMatch(/pinned: +1 path/);
  });

  it('pinned files are not evicted by reading three times the disk cache, and are read without the network', async () => {
    expect((await sh(`sha256sum ${d.mountpoint}/s3/other/big.bin`)).split(' ')[0]).toBe(sha256(OTHER));
    storage.proxy.clearLog();
    expect((await sh(`sha256sum ${d.mountpoint}/s3/pinned/a.bin`)).split(' ')[0]).toBe(sha256(A));
    expect((await sh(`sha256sum ${d.mountpoint}/s3/pinned/sub/b.bin`)).split(' ')[0]).toBe(sha256(B));
    expect(pinnedGets()).toBe(0);
  });

  it('pins survive a restart', async () => {
    await d.stop();
    storage.proxy.clearLog();
    d = await mountDaemon(config());
    await until(async () => (await status()).pins[0]?.state === 'complete', 'the pin refresh');
    expect((await sh(`sha256sum ${d.mountpoint}/s3/pinned/a.bin`)).split(' ')[0]).toBe(sha256(A));
    expect(pinnedGets()).toBe(0);
  });

  it('unpin lets the files go', async () => {
    expect(await cli(`unpin ${d.mountpoint}/s3/pinned`)).toMatch(/^unpinned/);
    expect((await status()).pins).toEqual([]);
    expect(await cli(`unpin ${d.mountpoint}/s3/pinned`)).toMatch(/was not pinned/);
    expect(await cli('status')).toMatch(/pinned: +none/);
  });
});
