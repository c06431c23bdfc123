/**
 * The shared block tier on a farm of three real daemons, one real Redis and one s3rver behind the
 * counting proxy (test/helpers/farm.ts): a block fetched by one host is served to the others from
 * Redis; hosts cold-reading one file at once fetch each byte from the origin once; a new version has
 * new keys; a corrupted shared block is a miss, refetched; Redis stopped mid-read costs no read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { sh, until } from '../helpers/mount.js';
import { startFarm, type Farm } from '../helpers/farm.js';
import type { SharedTierStatus } from '../../src/farm/index.js';

const MiB = 1024 * 1024;
const files = {
  hit: deterministicBytes('shared-hit', 6 * MiB + 12_345),
  cold: deterministicBytes('shared-cold', 24 * MiB + 777),
  versioned: deterministicBytes('shared-v1', 5 * MiB + 3),
  corrupt: deterministicBytes('shared-corrupt', 6 * MiB),
  paused: deterministicBytes('shared-paused', 24 * MiB),
  after: deterministicBytes('shared-after', 4 * MiB),
};
type Name = keyof typeof files;
const key = (n: Name) => `${n}.bin`;
let farm: Farm;

beforeAll(async () => {
  farm = await startFarm({
    hosts: 3,
    files: Object.entries(files).map(([n, data]) => ({ path: `${n}.bin`, data })),
    // Generous bounds: this machine runs several suites at once. A slow Redis call counts as a failure
    // (the breaker), and a waiter gives up on a claim after lockTtl (then the block is fetched twice).
    sharedConfig: { timeout: '3s', lockTtl: '30s' },
    config: { metadataTtl: '1s' },
  });
}, 120_000);
afterAll(async () => {
  await farm?.stop();
});

const hashOn = async (i: number, n: Name) => (await sh(`cat ${farm.path(i, key(n))} | sha256sum`, { timeoutMs: 90_000 })).split(' ')[0];
const sharedOf = async (i: number) => (await farm.hosts[i]!.poll<{ shared?: SharedTierStatus }>()).shared;
const sharedKeys = async () => (await farm.redis.cli(`--scan --pattern '${farm.keyPrefix}b:*'`)).split('\n').filter(Boolean);
/** Waits until every host has written its queued blocks to Redis. */
const flushed = () => until(async () => (await Promise.all([0, 1, 2].map(sharedOf))).every((s) => s?.blocks.queuedBytes === 0), 'shared writes', 30_000, 50);

describe('shared block tier', () => {
  it('a block one host fetched is served to another from Redis, not the origin', async () => {
    farm.clearOrigin();
    expect(await hashOn(0, 'hit')).toBe(sha256(files.hit));
    expect(farm.originBytes(key('hit'), files.hit.length)).toBe(files.hit.length);
    await flushed();
    const before = (await sharedOf(1))!.blocks.hits;
    farm.clearOrigin();
    expect(await hashOn(1, 'hit')).toBe(sha256(files.hit));
    expect(farm.originBytes(key('hit'), files.hit.length)).toBe(0);
    const s = (await sharedOf(1))!;
    expect(s.blocks.hits - before).toBe(Math.ceil(files.hit.length / MiB));
    expect(s.breaker.state).toBe('closed');
  });

  it('three hosts cold-reading one file at once fetch each byte from the origin once', async () => {
    farm.clearOrigin();
    const hashes = await Promise.all([0, 1, 2].map((i) => hashOn(i, 'cold')));
    expect(hashes).toEqual([0, 1, 2].map(() => sha256(files.cold)));
    expect(farm.originBytes(key('cold'), files.cold.length)).toBe(files.cold.length);
    // Whether a host waited for another's fetch or found the block already there depends on timing;
    // either way the blocks the origin served once reached the two other hosts from Redis.
    const hits = (await Promise.all([0, 1, 2].map(sharedOf))).reduce((a, s) => a + s!.blocks.hits, 0);
    expect(hits).toBeGreaterThanOrEqual(2 * Math.ceil(files.cold.length / MiB));
  });

  it('a new version of an object has new keys: no host reads the old bytes', async () => {
    expect(await hashOn(0, 'versioned')).toBe(sha256(files.versioned));
    await flushed();
    const v2 = deterministicBytes('shared-v2', files.versioned.length);
    await farm.storage.seed([{ path: key('versioned'), data: v2 }]);
    // Each host sees the new version once its metadata expires (metadataTtl 1s).
    for (const i of [1, 0]) await until(async () => (await hashOn(i, 'versioned')) === sha256(v2), `host ${i + 1} reading the new version`, 30_000, 300);
    // Host 3 never read v1 locally: had the shared keys not changed with the version, it would read v1 from Redis.
    expect(await hashOn(2, 'versioned')).toBe(sha256(v2));
  });

  it('a corrupted shared block is a miss: refetched from the origin, right bytes', async () => {
    await farm.redis.cli('flushall');
    expect(await hashOn(0, 'corrupt')).toBe(sha256(files.corrupt));
    await flushed();
    const keys = await sharedKeys();
    expect(keys.length).toBe(files.corrupt.length / MiB);
    // Flip data bytes in one block, truncate another, replace a third with another block's frame.
    await farm.redis.cli(`setrange '${keys[0]}' 5000 XXXXXXXX`);
    await farm.redis.cli(`set '${keys[1]}' AFSBtruncated`);
    await farm.redis.cli(`copy '${keys[3]}' '${keys[2]}' replace`);
    farm.clearOrigin();
    const before = (await sharedOf(1))!.blocks.corrupt;
    expect(await hashOn(1, 'corrupt')).toBe(sha256(files.corrupt));
    expect((await sharedOf(1))!.blocks.corrupt - before).toBe(3);
    expect(farm.originBytes(key('corrupt'), files.corrupt.length)).toBe(3 * MiB);
    // Refetched blocks are shared again, whole: the next host gets every block from Redis.
    await flushed();
    farm.clearOrigin();
    expect(await hashOn(2, 'corrupt')).toBe(sha256(files.corrupt));
    expect(farm.originBytes(key('corrupt'), files.corrupt.length)).toBe(0);
  });

  it('Redis stopped (SIGSTOP) in the middle of reads: every read completes with the right bytes; resumed, it is used again without a restart', async () => {
    farm.clearOrigin();
    // Hold the first origin GET of the file so that Redis is stopped while the reads are under way.
    const hold = farm.storage.proxy.hold((r) => r.path.endsWith(`/${key('paused')}`));
    const reads = Promise.all([0, 1, 2].map((i) => hashOn(i, 'paused')));
    await hold.reached;
    farm.redis.pause();
    hold.release();
    try {
      expect(await reads).toEqual([0, 1, 2].map(() => sha256(files.paused)));
      const states = (await Promise.all([0, 1, 2].map(sharedOf))).map((s) => s!.breaker.state);
      expect(states.some((s) => s !== 'closed')).toBe(true);
    } finally {
      farm.redis.resume();
    }
    await until(async () => (await Promise.all([0, 1, 2].map(sharedOf))).every((s) => s!.breaker.state === 'closed'), 'the breakers to close again', 60_000, 250);
    expect(await hashOn(0, 'after')).toBe(sha256(files.after));
    await flushed();
    farm.clearOrigin();
    expect(await hashOn(1, 'after')).toBe(sha256(files.after));
    expect(farm.originBytes(key('after'), files.after.length)).toBe(0);
  });
});
