/**
 * Upload leases on a real Redis, with two hosts (two upload engines, each with its own journal and its
 * own shared-tier connection) syncing the same shared folder to one s3rver behind the counting proxy:
 * the proxy's log is what the platform saw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, SharedSchema, type SourceConfig } from '../../src/config/schema.js';
import { createProvider } from '../../src/providers/registry.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';
import { Journal } from '../../src/upload/journal.js';
import { startSharedTier, type SharedTier } from '../../src/farm/index.js';
import type { Provider } from '../../src/core/types.js';
import type { UploadEngine } from '../../src/upload/engine.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { until } from '../helpers/mount.js';
import { countingUploader, localFile, testEngine, type TestJob } from './harness.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const LEASE_TTL = 1_200;

describe.sequential('upload leases (two hosts, one shared folder, real Redis)', () => {
  let redis: RedisServer;
  let bucket: ProxiedBucket;
  let provider: Provider;
  let dir: string;
  const tiers: SharedTier[] = [];
  const engines: UploadEngine[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    bucket = await startProxiedBucket('farm');
    provider = await createProvider(ConfigSchema.parse({ sources: [bucket.source({ name: 'dst' })] }).sources[0] as SourceConfig, { log: silentLogger });
    dir = await mkdtemp(join(tmpdir(), 'assetfs-leases-'));
  });
  afterAll(async () => {
    for (const e of engines) void e.stop(); // a "killed" host's engine never settles: not awaited
    await Promise.allSettled(tiers.map((t) => t.close()));
    await provider?.close();
    await bucket?.close();
    await redis?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** A host: its own shared-tier connection (own owner id), journal and engine, leases on. */
  async function host(name: string, onPart?: (n: number) => Promise<void> | void) {
    const tier = await startSharedTier(SharedSchema.parse({ redis: redis.socket, hostName: name, leaseTtl: LEASE_TTL, keyPrefix: 'leases-test:' }), { log: silentLogger });
    tiers.push(tier);
    const journal = new Journal(join(dir, `${name}-${tiers.length}.db`));
    const { u, sent } = countingUploader(provider.uploader!(), { partSize: PART, onPart });
    const engine = testEngine(journal, u, { leases: tier.leases, partsPerFile: 1 });
    engines.push(engine);
    engine.start();
    return { tier, journal, engine, sent };
  }

  const job = (f: { path: string; size: number; mtimeMs: number }, remotePath: string): TestJob =>
    ({ localPath: f.path, source: 'dst', remotePath, producer: 'sync', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
  const partPuts = (key: string) =>
    bucket.proxy.requests().filter((r) => r.method === 'PUT' && r.path.endsWith(`/${key}`) && /[?&]partNumber=/.test(r.query)).map((r) => Number(/partNumber=(\d+)/.exec(r.query)![1]));
  const posts = (key: string, q: RegExp) => bucket.proxy.requests().filter((r) => r.method === 'POST' && r.path.endsWith(`/${key}`) && q.test(r.query)).length;

  it('two hosts syncing the same file: one uploads it, the other finishes its job without sending a byte', async () => {
    const data = deterministicBytes('leased-once', 12 * MiB + 3); // 3 parts
    const f = await localFile(dir, 'once.bin', data);
    const a = await host('host-a');
    const b = await host('host-b');
    const ja = a.engine.enqueue(job(f, 'shared/once.bin'));
    const jb = b.engine.enqueue(job(f, 'shared/once.bin'));
    await until(async () => a.journal.get(ja.id)!.state === 'done' && b.journal.get(jb.id)!.state === 'done', 'both jobs done', 60_000, 50);

    expect([...a.sent, ...b.sent].sort()).toEqual([1, 2, 3]);
    expect(partPuts('shared/once.bin').sort()).toEqual([1, 2, 3]);
    expect(posts('shared/once.bin', /[?&]uploads/)).toBe(1); // one session begun
    expect(posts('shared/once.bin', /[?&]uploadId=/)).toBe(1); // one completion
    expect(sha256((await bucket.object('shared/once.bin'))!)).toBe(sha256(data));
    // The host that did not send has the version the other made as its base: its next upload is no conflict.
    const va = a.journal.synced(f.path)!.remoteVersion;
    expect(b.journal.synced(f.path)!.remoteVersion).toBe(va);
    expect(await bucket.keys('shared/')).toEqual(['shared/once.bin']);
  });

  it('a killed lease holder: another host takes over after the TTL and resumes without re-sending confirmed parts', async () => {
    const data = deterministicBytes('leased-resume', 21 * MiB + 5); // 5 parts
    const f = await localFile(dir, 'resume.bin', data);
    let crash!: () => void;
    const crashed = new Promise<void>((r) => (crash = r));
    // Host A sends parts 1 and 2, then hangs on part 3 as a killed process would, and its shared-tier
    // connection goes away with it: no heartbeat renews its lease any more.
    const a = await host('host-a', async (n) => {
      if (n < 3) return;
      crash();
      await new Promise(() => undefined);
    });
    const ja = a.engine.enqueue(job(f, 'shared/resume.bin'));
    await crashed;
    expect(a.sent.sort()).toEqual([1, 2]);
    await a.tier.store.close();

    const b = await host('host-b');
    const jb = b.engine.enqueue(job(f, 'shared/resume.bin'));
    await until(async () => b.journal.get(jb.id)!.state === 'done', 'host b finished the upload', 60_000, 50);

    expect(b.sent.sort()).toEqual([3, 4, 5]);
    expect(partPuts('shared/resume.bin').sort()).toEqual([1, 2, 3, 4, 5]); // no confirmed part went twice
    expect(posts('shared/resume.bin', /[?&]uploads/)).toBe(1); // b resumed a's session
    expect(sha256((await bucket.object('shared/resume.bin'))!)).toBe(sha256(data));
    expect(a.journal.get(ja.id)!.state).toBe('uploading'); // a really never finished
  });

  it('Redis stopped: the upload goes ahead unleased, and completes', async () => {
    const data = deterministicBytes('unleased', 6 * MiB);
    const f = await localFile(dir, 'unleased.bin', data);
    const a = await host('host-a');
    redis.pause();
    try {
      const ja = a.engine.enqueue(job(f, 'shared/unleased.bin'));
      await until(async () => a.journal.get(ja.id)!.state === 'done', 'the unleased upload done', 60_000, 50);
    } finally {
      redis.resume();
    }
    expect(sha256((await bucket.object('shared/unleased.bin'))!)).toBe(sha256(data));
  });
});
