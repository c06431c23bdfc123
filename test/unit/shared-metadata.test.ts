/**
 * The shared-metadata protocol on a real redis-server: two hosts (two shared-tier connections, each
 * with its own DirCache and LocatorCache) share listings and signed locators, never keep them past the
 * TTL they have left in Redis, and invalidate each other through pub/sub.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedSchema } from '../../src/config/schema.js';
import { startSharedTier, type SharedTier } from '../../src/farm/index.js';
import { DirCache } from '../../src/vfs/dir-cache.js';
import { LocatorCache } from '../../src/read/locator-cache.js';
import { silentLogger } from '../../src/util/logger.js';
import type { ObjectVersion, Provider, RemoteEntry, SignedLocator } from '../../src/core/types.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { until } from '../helpers/mount.js';

/** The platform side of one source: a folder whose entries the test changes, counting lists and mints. */
function platform() {
  const state = { entries: [{ name: 'a.mov', kind: 'file', ref: 'a', size: 1, mtimeMs: 1_000, version: 'v1' }] as RemoteEntry[], lists: 0, mints: 0 };
  const provider = {
    name: 'src',
    async *list() {
      state.lists++;
      yield* state.entries;
    },
    async locate(obj: ObjectVersion): Promise<SignedLocator> {
      state.mints++;
      return { url: `https://cdn.example/${obj.ref}?sig=${state.mints}`, expiresAt: Date.now() + 60_000, headers: { authorization: 'Bearer t' } };
    },
  } as unknown as Provider;
  return { state, provider };
}

describe.sequential('shared metadata (real Redis)', () => {
  let redis: RedisServer;
  const tiers: SharedTier[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.allSettled(tiers.map((t) => t.close()));
    await redis?.stop();
  });

  let prefixes = 0;
  async function farm(n: number, extra: Record<string, unknown> = {}) {
    const keyPrefix = `meta${++prefixes}:`;
    const hosts = [];
    for (let i = 0; i < n; i++) {
      const tier = await startSharedTier(SharedSchema.parse({ redis: redis.socket, keyPrefix, hostName: `h${i}`, ...extra }), { log: silentLogger });
      tiers.push(tier);
      const dirs = new DirCache({ maxRetryTimeMs: 1_000, shared: tier.metadata });
      tier.metadata.onRemoteInvalidation((s, ref) => dirs.forget(s, ref));
      hosts.push({ tier, dirs, locators: new LocatorCache({ shared: tier.metadata }) });
    }
    return hosts;
  }

  it('three hosts listing the same folder: the platform lists it once; the others read it from Redis', async () => {
    const { state, provider } = platform();
    const hosts = await farm(3);
    const first = await hosts[0]!.dirs.get(provider, 'root', 60_000);
    await until(async () => hosts[0]!.tier.metadata.stats().listingsShared === 1, 'listing shared', 5_000, 10);
    for (const h of hosts.slice(1)) expect([...(await h.dirs.get(provider, 'root', 60_000)).keys()]).toEqual([...first.keys()]);
    expect(state.lists).toBe(1);
    expect(hosts[1]!.tier.metadata.stats().listingHits).toBe(1);
  });

  it('a shared listing is kept no longer than it has left in Redis', async () => {
    const { state, provider } = platform();
    const hosts = await farm(2);
    await hosts[0]!.dirs.get(provider, 'root', 1_500);
    await until(async () => hosts[0]!.tier.metadata.stats().listingsShared === 1, 'listing shared', 5_000, 10);
    await hosts[1]!.dirs.get(provider, 'root', 60_000); // host 1's own TTL is long: Redis's remaining TTL bounds it
    expect(state.lists).toBe(1);
    state.entries = [...state.entries, { name: 'b.mov', kind: 'file', ref: 'b', size: 2, mtimeMs: 2_000, version: 'v1' }];
    await until(async () => (await redis.cli(`--scan --pattern 'meta${prefixes}:ls:*'`)).trim() === '', 'the shared listing expired', 10_000, 50);
    expect([...(await hosts[1]!.dirs.get(provider, 'root', 60_000)).keys()]).toContain('b.mov');
    expect(state.lists).toBe(2);
  });

  it('an invalidation on one host reaches the others at once (pub/sub), and Redis drops its copy', async () => {
    const { state, provider } = platform();
    const hosts = await farm(2);
    await hosts[0]!.dirs.get(provider, 'root', 600_000);
    await until(async () => hosts[0]!.tier.metadata.stats().listingsShared === 1, 'listing shared', 5_000, 10);
    await hosts[1]!.dirs.get(provider, 'root', 600_000);
    expect(hosts[1]!.dirs.peek('src', 'root')).toBeDefined();

    state.entries = [...state.entries, { name: 'new.mov', kind: 'file', ref: 'n', size: 3, mtimeMs: 3_000, version: 'v1' }];
    hosts[0]!.dirs.invalidate('src', 'root'); // host 0 wrote into the folder
    await until(async () => hosts[1]!.dirs.peek('src', 'root') === undefined, 'host 1 dropped its listing', 5_000, 10);
    expect([...(await hosts[1]!.dirs.get(provider, 'root', 600_000)).keys()]).toContain('new.mov');

    // A whole source (a finished upload, a refresh): every listing of it, on every host and in Redis.
    await hosts[0]!.dirs.get(provider, 'root', 600_000);
    hosts[1]!.dirs.invalidate('src');
    await until(async () => hosts[0]!.dirs.peek('src', 'root') === undefined, 'host 0 dropped the source', 5_000, 10);
    const before = state.lists;
    await hosts[0]!.dirs.get(provider, 'root', 600_000);
    expect(state.lists).toBe(before + 1); // not served the pre-invalidation copy from Redis
  });

  it('a listing fetched while its source was invalidated is not shared (the change is never undone)', async () => {
    const { state, provider } = platform();
    const hosts = await farm(2);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // The first listing is taken before the change and answers late; any later one answers at once.
    const slow = { ...provider, name: 'src', async *list() {
      const n = ++state.lists;
      const snapshot = state.entries;
      if (n === 1) await held;
      yield* snapshot;
    } } as unknown as Provider;
    const pending = hosts[0]!.dirs.get(slow, 'root', 600_000);
    await until(async () => state.lists === 1, 'listing started', 5_000, 10);
    state.entries = [...state.entries, { name: 'late.mov', kind: 'file', ref: 'l', size: 3, mtimeMs: 3_000, version: 'v1' }];
    hosts[1]!.dirs.invalidate('src', 'root'); // host 1 wrote late.mov
    await until(async () => hosts[0]!.tier.metadata.stats().invalidationsReceived === 1, 'invalidation received', 5_000, 10);
    expect([...(await pending).keys()]).toContain('late.mov'); // host 0 listed again
    await until(async () => hosts[0]!.tier.metadata.stats().listingsShared === 1, 'the fresh listing shared', 5_000, 10);
    release();
    await new Promise((r) => setTimeout(r, 200)); // let the stale listing finish (and be shared, were it not for the guard)
    expect([...(await hosts[1]!.dirs.get(slow, 'root', 600_000)).keys()]).toContain('late.mov');
    expect(hosts[0]!.tier.metadata.stats().listingsShared).toBe(1);
  });

  it('signed URLs: minted once for the farm, reused until the minting host would stop using them, dropped when refused', async () => {
    const { state, provider } = platform();
    const hosts = await farm(3);
    const obj: ObjectVersion = { source: 'src', ref: 'a', version: 'v1', size: 1 };
    const loc = await hosts[0]!.locators.get(provider, obj);
    await until(async () => (await redis.cli(`--scan --pattern 'meta${prefixes}:loc:*'`)).trim() !== '', 'locator shared', 5_000, 10);
    const seen = [];
    for (const h of hosts.slice(1)) seen.push(await h.locators.get(provider, obj));
    for (const l of seen) expect(l).toEqual(loc);
    expect(state.mints).toBe(1);
    const ttl = Number((await redis.cli(`pttl ${(await redis.cli(`--scan --pattern 'meta${prefixes}:loc:*'`)).trim()}`)).trim());
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000 - 6_000); // expiry minus the margin (10 % of a minute)

    hosts[1]!.locators.invalidate(obj, seen[0]); // a 403 on host 1
    await until(async () => (await redis.cli(`--scan --pattern 'meta${prefixes}:loc:*'`)).trim() === '', 'refused locator dropped', 5_000, 10);
    await hosts[1]!.locators.get(provider, obj);
    expect(state.mints).toBe(2);
  });

  it('shared.locators: false keeps signed URLs out of Redis', async () => {
    const { state, provider } = platform();
    const hosts = await farm(2, { locators: false });
    const obj: ObjectVersion = { source: 'src', ref: 'a', version: 'v1', size: 1 };
    await hosts[0]!.locators.get(provider, obj);
    await hosts[1]!.locators.get(provider, obj);
    expect(state.mints).toBe(2);
    expect((await redis.cli(`--scan --pattern 'meta${prefixes}:loc:*'`)).trim()).toBe('');
  });

  it('Redis stopped: listings come from the platform, without errors', async () => {
    const { state, provider } = platform();
    const hosts = await farm(1, { timeout: 200 });
    redis.pause();
    try {
      expect([...(await hosts[0]!.dirs.get(provider, 'root', 60_000)).keys()]).toEqual(['a.mov']);
      hosts[0]!.dirs.invalidate('src', 'root');
      expect([...(await hosts[0]!.dirs.get(provider, 'root', 60_000)).keys()]).toEqual(['a.mov']);
    } finally {
      redis.resume();
    }
    expect(state.lists).toBe(2);
  });
});
