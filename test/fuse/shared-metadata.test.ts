/**
 * Shared metadata on a farm of three real daemons, one real Redis and one s3rver behind the counting
 * proxy (test/helpers/farm.ts): three hosts walking the same tree list it at the origin as often as one
 * host does, and a write, rename or delete through one host shows on the others at once — with a
 * metadata TTL of ten minutes, only the invalidation can make it show; so does `assetfs refresh` on one
 * host for a change made at the storage, past every host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { sh, until } from '../helpers/mount.js';
import { callControl, controlSocketPath } from '../../src/daemon/control.js';
import { startFarm, type Farm } from '../helpers/farm.js';

const tree = ['a', 'b', 'c'].flatMap((d) => [1, 2, 3, 4].map((i) => ({ path: `tree/${d}/f${i}.bin`, data: deterministicBytes(`${d}${i}`, 1_000 + i) })));
let farm: Farm;

beforeAll(async () => {
  farm = await startFarm({ hosts: 3, files: tree, sharedConfig: { timeout: '3s' }, config: { metadataTtl: '10m', uploads: { writeBack: '100ms' } } });
}, 120_000);
afterAll(async () => {
  await farm?.stop();
});

/** Listing requests (ListObjectsV2) the origin saw. */
const listings = () => farm.storage.proxy.requests().filter((r) => r.method === 'GET' && /[?&]list-type=2/.test(r.query)).length;
const walk = async (i: number) => (await sh(`find ${farm.path(i, 'tree')} -type f | sort`)).split('\n').filter(Boolean).map((p) => p.slice(farm.hosts[i]!.mountpoint.length));
const ls = async (i: number, dir: string) => (await sh(`ls -1 ${farm.path(i, dir)}`)).split('\n').filter(Boolean);

describe('shared metadata on a farm', () => {
  it('three hosts walking the same tree: the origin lists it as often as for one host', async () => {
    farm.clearOrigin();
    const first = await walk(0);
    expect(first).toHaveLength(tree.length);
    const oneHost = listings();
    expect(oneHost).toBeGreaterThan(0);
    // The first host's listings reach Redis in the background: the others walk once they are there.
    await until(async () => (await farm.redis.cli(`--scan --pattern '${farm.keyPrefix}ls:*'`)).split('\n').filter(Boolean).length >= 5, 'listings shared', 30_000, 50);
    const others = await Promise.all([walk(1), walk(2)]);
    for (const w of others) expect(w).toEqual(first);
    expect(listings()).toBe(oneHost);
  });

  it('a file written through one host shows on the others at once', async () => {
    expect(await ls(1, 'tree/a')).not.toContain('new.bin');
    await sh(`head -c 3000 /dev/urandom > ${farm.path(0, 'tree/a/new.bin')}`);
    await until(async () => (await farm.storage.keys('tree/a/')).includes('tree/a/new.bin'), 'the upload', 60_000, 50);
    await until(async () => (await ls(1, 'tree/a')).includes('new.bin') && (await ls(2, 'tree/a')).includes('new.bin'), 'new.bin on hosts 2 and 3', 30_000, 100);
    expect((await sh(`stat -c %s ${farm.path(2, 'tree/a/new.bin')}`)).trim()).toBe('3000');
  });

  it('a rename and a delete through one host show on the others at once', async () => {
    expect(await ls(2, 'tree/b')).toContain('f1.bin');
    await sh(`mv ${farm.path(0, 'tree/b/f1.bin')} ${farm.path(0, 'tree/b/renamed.bin')}`);
    await sh(`rm ${farm.path(0, 'tree/b/f2.bin')}`);
    await until(async () => {
      const names = await ls(2, 'tree/b');
      return names.includes('renamed.bin') && !names.includes('f1.bin') && !names.includes('f2.bin');
    }, 'the rename and the delete on host 3', 30_000, 100);
    expect(await ls(1, 'tree/b')).toEqual(['f3.bin', 'f4.bin', 'renamed.bin']);
  });

  it('assetfs refresh on one host refreshes every host', async () => {
    expect(await ls(1, 'tree/c')).not.toContain('outside.bin');
    await farm.storage.seed([{ path: 'tree/c/outside.bin', data: Buffer.from('made past every host') }]);
    expect(await ls(2, 'tree/c')).not.toContain('outside.bin'); // within the 10-minute TTL, unseen
    // What `assetfs refresh PATH` sends to host 1's daemon.
    await callControl(controlSocketPath(farm.hosts[0]!.cacheDir), 'POST', '/refresh', { path: farm.path(0, 'tree/c') });
    await until(async () => (await ls(1, 'tree/c')).includes('outside.bin') && (await ls(2, 'tree/c')).includes('outside.bin'), 'outside.bin on hosts 2 and 3', 30_000, 100);
    expect((await sh(`cat ${farm.path(2, 'tree/c/outside.bin')}`))).toBe('made past every host');
  });
});
