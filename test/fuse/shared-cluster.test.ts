/**
 * The farm in one view: three real daemons heartbeat into one real Redis; `assetfs status --cluster`
 * on any host lists them all with cache use, hit rates, shared-tier hit rate and uploads; a killed host
 * is shown as gone once silent for three periods, a cleanly stopped one as stopped. `assetfs status`
 * shows the shared tier's state (and /metrics its series); a daemon without `shared:` shows none and loads none of it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { BIN, mountDaemon, sh, shResult, until } from '../helpers/mount.js';
import { startFarm, type Farm } from '../helpers/farm.js';
import { daemonStatus } from '../helpers/status.js';
import { startProxiedBucket } from '../helpers/proxied-s3.js';
import type { ClusterDoc } from '../../src/daemon/status.js';
import { join } from 'node:path';
import { callControl } from '../../src/daemon/control.js';

const DATA = deterministicBytes('cluster', 3 * 1024 * 1024);
let farm: Farm;

beforeAll(async () => {
  farm = await startFarm({ hosts: 3, files: [{ path: 'a.bin', data: DATA }], sharedConfig: { heartbeat: '1s', timeout: '3s' } });
}, 120_000);
afterAll(async () => {
  await farm?.stop();
});

const socketOf = (i: number) => join(farm.hosts[i]!.cacheDir, 'control.sock');
/** The cluster document straight from the control socket (the CLI's --json prints the same; cheap to poll). */
const cluster = async (i: number) => (await callControl(socketOf(i), 'GET', '/cluster')) as ClusterDoc;
const clusterCli = async (i: number) => JSON.parse(await sh(`node ${BIN} status --cluster --json --socket ${socketOf(i)}`)) as ClusterDoc;
const byName = (c: ClusterDoc) => new Map(c.hosts.map((h) => [h.host, h]));

describe('status --cluster', () => {
  it('lists every host with its cache use, hit rates and uploads; the shared tier in `status`', async () => {
    expect((await sh(`cat ${farm.path(0, 'a.bin')} | sha256sum`)).split(' ')[0]).toBe(sha256(DATA));
    expect((await sh(`cat ${farm.path(1, 'a.bin')} | sha256sum`)).split(' ')[0]).toBe(sha256(DATA));
    // The next heartbeat of host2 carries its shared-tier hits (it read the file from Redis).
    await until(async () => (byName(await cluster(2)).get('host2')?.shared.hits ?? 0) >= 3, 'host2 reporting its shared hits', 30_000, 250);
    const c = await clusterCli(2);
    expect(c.available).toBe(true);
    expect([...byName(c).keys()].sort()).toEqual(['host1', 'host2', 'host3']);
    for (const h of c.hosts) {
      expect(h.state).toBe('up');
      expect(h.uploads).toEqual({ uploading: 0, queued: 0, failed: 0 });
    }
    const h1 = byName(c).get('host1')!;
    expect(h1.cache.memoryBytes).toBeGreaterThanOrEqual(DATA.length);
    expect(h1.shared.misses).toBeGreaterThanOrEqual(3);
    expect(c.hosts.find((h) => h.owner === c.self)!.host).toBe('host3');
    const text = await sh(`node ${BIN} status --cluster --socket ${socketOf(0)}`);
    expect(text).toMatch(/^cluster: 3 hosts, 3 up/);
    expect(text).toMatch(/host2 +up .*shared ok hit rate 100\.0%/);
    expect(text).toMatch(/host1 +up .*\(this host\)/);
    const status = await sh(`node ${BIN} status --socket ${socketOf(1)}`);
    expect(status).toMatch(/^shared: +.*redis\.sock as host2: ok; hit rate 100\.0% \(3\/3\)/m);
    const metrics = await sh(`curl -sf --unix-socket ${socketOf(1)} http://assetfs/metrics`);
    expect(metrics).toMatch(/^assetfs_shared_state\{state="closed"\} 1$/m);
    expect(metrics).toMatch(/^assetfs_shared_lookups_total\{result="hit"\} 3$/m);
    expect(metrics).toMatch(/^assetfs_shared_bytes_total\{direction="in"\} 3145728$/m);
  });

  it('a killed host is shown as gone after three silent periods; a stopped one as stopped', async () => {
    await farm.hosts[2]!.daemon.kill();
    await farm.hosts[1]!.daemon.stop();
    await until(async () => byName(await cluster(0)).get('host3')?.state === 'gone', 'host3 shown as gone', 30_000, 250);
    const c = byName(await cluster(0));
    expect(c.get('host3')!.silentSec).toBeGreaterThanOrEqual(3);
    expect(c.get('host2')!.state).toBe('stopped');
    expect(c.get('host1')!.state).toBe('up');
    expect(await sh(`node ${BIN} status --cluster --socket ${socketOf(0)}`)).toMatch(/host3 +GONE \(silent \d+s\)/);
  });

  it('without `shared:` nothing of the shared tier loads; --cluster says why it has nothing to show', async () => {
    const storage = await startProxiedBucket('solo', { files: [{ path: 'a.bin', data: DATA }] });
    const d = await mountDaemon({ sources: [storage.source()] });
    try {
      const s = await daemonStatus(join(d.dir, 'cache'));
      expect(s).not.toHaveProperty('shared');
      expect(d.logs()).not.toMatch(/shared tier/);
      expect(await sh(`curl -sf --unix-socket ${join(d.dir, 'cache', 'control.sock')} http://assetfs/metrics`)).not.toMatch(/^assetfs_shared_\w+\{/m);
      const r = await shResult(`node ${BIN} status --cluster --socket ${join(d.dir, 'cache', 'control.sock')}`);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/no shared tier \(config `shared:`\)/);
    } finally {
      await d.stop();
      await storage.close();
    }
  });
});
