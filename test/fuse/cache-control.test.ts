/**
 * Cache control from the shell, through the real CLI against a real mount (s3rver changed directly,
 * past the daemon): `assetfs refresh` makes remote changes visible at once within metadataTtl, in the
 * daemon and in the kernel, for paths and `.by-id/` ids alike; negative lookups (names and ids) end
 * after metadataNegativeTtl; `assetfs cache clear` frees blocks and keeps pinned ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { BIN, mountDaemon, sh, shResult, until, type MountedDaemon } from '../helpers/mount.js';

const MiB = 1024 * 1024;
const ONE = deterministicBytes('cc-one', 1000);
const ONE_V2 = deterministicBytes('cc-one-v2', 2345);
const BIG = deterministicBytes('cc-big', 4 * MiB + 7);
const PINNED = deterministicBytes('cc-pinned', 2 * MiB);

let storage: ProxiedBucket;
let work: string;

beforeAll(async () => {
  storage = await startProxiedBucket('media');
  await storage.seed([
    { path: 'dir/one.bin', data: ONE },
    { path: 'blocks/big.bin', data: BIG },
    { path: 'blocks/pinned.bin', data: PINNED },
  ]);
  work = await mkdtemp(join(tmpdir(), 'assetfs-cache-control-'));
});
afterAll(async () => {
  await storage?.close();
  await rm(work, { recursive: true, force: true });
});

/** A daemon whose listings, attributes and negative answers all last an hour, unless told otherwise. */
async function mount(name: string, extra: Record<string, unknown> = {}) {
  const cacheDir = join(work, name);
  const d = await mountDaemon({ cacheDir, cache: { memory: '16MiB' }, metadataTtl: '1h', metadataNegativeTtl: '1h', sources: [storage.source()], ...extra });
  const cli = (args: string) => sh(`node ${BIN} ${args} --socket ${join(cacheDir, 'control.sock')}`);
  return { d, cli, s3: `${d.mountpoint}/s3` };
}

const exists = async (path: string) => (await shResult(`stat ${path}`)).code === 0;

describe.sequential('assetfs refresh', () => {
  let m: Awaited<ReturnType<typeof mount>>;
  beforeAll(async () => {
    m = await mount('refresh');
  });
  afterAll(async () => m?.d.stop());

  it('a remote change stays invisible within metadataTtl; after refresh the next ls and stat see it', async () => {
    expect(await sh(`ls ${m.s3}/dir`)).toBe('one.bin\n');
    expect(await sh(`stat -c %s ${m.s3}/dir/one.bin`)).toBe(`${ONE.length}\n`);
    await storage.seed([{ path: 'dir/two.bin', data: ONE }, { path: 'dir/one.bin', data: ONE_V2 }]);
    expect(await sh(`ls ${m.s3}/dir`)).toBe('one.bin\n');
    expect(await sh(`stat -c %s ${m.s3}/dir/one.bin`)).toBe(`${ONE.length}\n`);

    expect(await m.cli(`refresh ${m.s3}/dir`)).toMatch(/^refreshed .*\/s3\/dir: \d+ cached entr(y|ies) forgotten/);
    // stat first, with no listing in between: the kernel's cached attributes must have gone too.
    expect(await sh(`stat -c %s ${m.s3}/dir/one.bin`)).toBe(`${ONE_V2.length}\n`);
    expect(await sh(`ls ${m.s3}/dir`)).toBe('one.bin\ntwo.bin\n');
    expect((await sh(`sha256sum ${m.s3}/dir/one.bin`)).split(' ')[0]).toBe(sha256(ONE_V2));
  });

  it('drops negative answers: a name looked up before it existed is found right after refresh', async () => {
    expect(await exists(`${m.s3}/dir/three.bin`)).toBe(false);
    await storage.seed([{ path: 'dir/three.bin', data: ONE }]);
    expect(await exists(`${m.s3}/dir/three.bin`)).toBe(false); // metadataNegativeTtl is an hour here
    await m.cli(`refresh ${m.s3}/dir/three.bin`);
    expect(await exists(`${m.s3}/dir/three.bin`)).toBe(true);
  });

  it('refreshes a whole folder that is new on the remote, named by a path inside it', async () => {
    expect(await exists(`${m.s3}/newdir/f.bin`)).toBe(false);
    await storage.seed([{ path: 'newdir/f.bin', data: ONE }]);
    await m.cli(`refresh ${m.s3}/newdir/f.bin`);
    expect(await sh(`ls ${m.s3}/newdir`)).toBe('f.bin\n');
  });

  it('forgets ids under the source too: .by-id shows the new object, and an id missing before is found', async () => {
    const byId = (key: string) => `${m.s3}/.by-id/${key.replace(/\//g, '%2F')}`;
    await storage.seed([{ path: 'ids/x.bin', data: ONE }]);
    expect(await sh(`stat -c %s ${byId('ids/x.bin')}`)).toBe(`${ONE.length}\n`);
    expect(await exists(byId('ids/y.bin'))).toBe(false);
    await storage.seed([{ path: 'ids/x.bin', data: ONE_V2 }, { path: 'ids/y.bin', data: ONE }]);
    // Both answers are kept: the id's entry for metadataTtl, the missing id for metadataNegativeTtl (an hour each here).
    expect(await sh(`stat -c %s ${byId('ids/x.bin')}`)).toBe(`${ONE.length}\n`);
    expect(await exists(byId('ids/y.bin'))).toBe(false);

    await m.cli(`refresh ${m.s3}/ids`);
    expect(await sh(`stat -c %s ${byId('ids/x.bin')}`)).toBe(`${ONE_V2.length}\n`);
    expect((await sh(`sha256sum ${byId('ids/x.bin')}`)).split(' ')[0]).toBe(sha256(ONE_V2));
    expect(await exists(byId('ids/y.bin'))).toBe(true);
  });

  it('refuses a path outside the mount in one line', async () => {
    const r = await shResult(`node ${BIN} refresh /tmp --socket ${join(work, 'refresh', 'control.sock')}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^assetfs: \/tmp is not a path inside the mount at /);
  });
});

describe('metadataNegativeTtl', () => {
  it('a missing name is looked up again after metadataNegativeTtl, while listings last metadataTtl', async () => {
    const m = await mount('negative', { metadataNegativeTtl: '1s' });
    try {
      expect(await exists(`${m.s3}/dir/late.bin`)).toBe(false);
      await storage.seed([{ path: 'dir/late.bin', data: ONE }]);
      await until(() => exists(`${m.s3}/dir/late.bin`), 'the negative answer to expire', 30_000);
      // The same for an id the platform did not know (.by-id/ lookups).
      expect(await exists(`${m.s3}/.by-id/dir%2Flate-id.bin`)).toBe(false);
      await storage.seed([{ path: 'dir/late-id.bin', data: ONE }]);
      await until(() => exists(`${m.s3}/.by-id/dir%2Flate-id.bin`), 'the missing id to expire', 30_000);
    } finally {
      await m.d.stop();
    }
  });
});

describe.sequential('assetfs cache stats and cache clear', () => {
  let m: Awaited<ReturnType<typeof mount>>;
  interface Stats {
    memory: { bytes: number };
    disk: { bytes: number; pinnedBytes: number };
  }
  const stats = async () => JSON.parse(await m.cli('cache stats --json')) as Stats;
  const getsOf = (key: string) => storage.proxy.requests().filter((r) => r.method === 'GET' && r.path === `/media/blocks/${key}`).length;
  beforeAll(async () => {
    m = await mount('clear');
  });
  afterAll(async () => m?.d.stop());

  it('clear PATH frees the blocks of the files under it; clear frees the rest; pinned blocks stay', async () => {
    expect(await m.cli(`pin ${m.s3}/blocks/pinned.bin`)).toMatch(/^pinned/);
    await until(async () => (await stats()).disk.pinnedBytes === PINNED.length, 'the pin download');
    expect((await sh(`sha256sum ${m.s3}/blocks/big.bin`)).split(' ')[0]).toBe(sha256(BIG));
    await until(async () => (await stats()).disk.bytes >= BIG.length, 'the disk writes');
    const before = await stats();
    expect(before.memory.bytes).toBeGreaterThan(0);
    expect(await m.cli('cache stats')).toMatch(/^memory: .*\ndisk: .* plus 2(\.0)? MiB pinned/);

    expect(await m.cli(`cache clear ${m.s3}/blocks/big.bin`)).toMatch(/^cleared .*big\.bin \(1 file\): 4(\.0)? MiB freed on disk, [\d.]+ [KM]?i?B in memory; 2(\.0)? MiB pinned kept/);
    const afterPath = await stats();
    expect(afterPath.disk.bytes).toBeLessThanOrEqual(before.disk.bytes - BIG.length);
    expect(afterPath.disk.pinnedBytes).toBe(PINNED.length);

    expect((await sh(`sha256sum ${m.s3}/blocks/big.bin`)).split(' ')[0]).toBe(sha256(BIG));
    expect(await m.cli('cache clear')).toMatch(/^cleared the cache: .* freed on disk, .* in memory; 2(\.0)? MiB pinned kept/);
    const after = await stats();
    expect(after.memory.bytes).toBe(0);
    expect(after.disk.bytes).toBe(0);
    expect(after.disk.pinnedBytes).toBe(PINNED.length);

    // O_DIRECT: past the kernel's page cache, which `cache clear` leaves alone, to the daemon's tiers.
    const direct = async (file: string) => (await sh(`dd if=${m.s3}/blocks/${file} iflag=direct bs=1M status=none | sha256sum`)).split(' ')[0];
    storage.proxy.clearLog();
    expect(await direct('pinned.bin')).toBe(sha256(PINNED));
    expect(await direct('big.bin')).toBe(sha256(BIG));
    expect(getsOf('pinned.bin')).toBe(0);
    expect(getsOf('big.bin')).toBeGreaterThan(0);
  });
});
