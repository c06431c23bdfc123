/**
 * Prometheus metrics of a real daemon: after reads, one failed read, a lookup of a missing name and an
 * upload into the mount, GET /metrics over the control socket (curl --unix-socket) parses strictly and
 * every series of docs/operations.md "Metrics" is there with values that match what was done;
 * assetfs_source_up agrees with the health board (a source whose login is refused is 0); and
 * `assetfs status` shows the same bytes fetched as /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { seedAzure } from '@assetfs/lab/demo/seed-storage.js';
import { BIN, mountDaemon, sh, shResult, until, type MountedDaemon } from '../helpers/mount.js';
import { parsePromText, select, total, type PromText } from '../helpers/prom-text.js';

const MiB = 1024 * 1024;
const A = deterministicBytes('metrics-a', 3 * MiB + 5);
const BAD = deterministicBytes('metrics-bad', 100 * 1024);
const UP = deterministicBytes('metrics-up', 2 * MiB + 3);

/** Every series the issue names, with its type. */
const SERIES: Record<string, string> = {
  assetfs_fuse_requests_total: 'counter',
  assetfs_fuse_request_duration_seconds: 'histogram',
  assetfs_fuse_errors_total: 'counter',
  assetfs_origin_requests_total: 'counter',
  assetfs_origin_first_byte_seconds: 'histogram',
  assetfs_origin_bytes_total: 'counter',
  assetfs_cache_lookups_total: 'counter',
  assetfs_cache_bytes: 'gauge',
  assetfs_cache_evictions_total: 'counter',
  assetfs_metadata_lookups_total: 'counter',
  assetfs_uploads: 'gauge',
  assetfs_upload_bytes_total: 'counter',
  assetfs_upload_failures_total: 'counter',
  assetfs_url_refreshes_total: 'counter',
  assetfs_source_up: 'gauge',
  process_cpu_seconds_total: 'counter',
  process_resident_memory_bytes: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
  nodejs_eventloop_lag_p99_seconds: 'gauge',
};

let storage: ProxiedBucket;
let azurite: StorageServer;
let work: string;
let d: MountedDaemon;
const socket = () => join(work, 'cache', 'control.sock');
const scrape = async (): Promise<PromText> => parsePromText(await sh(`curl -sf --unix-socket ${socket()} http://assetfs/metrics`));

beforeAll(async () => {
  storage = await startProxiedBucket('media');
  await storage.seed([
    { path: 'data/a.bin', data: A },
    { path: 'data/bad.bin', data: BAD },
  ]);
  azurite = await startAzurite();
  await seedAzure(azurite, 'media', [{ path: 'x/blob.bin', data: BAD }]);
  work = await mkdtemp(join(tmpdir(), 'assetfs-metrics-'));
  await writeFile(join(work, 'up.bin'), UP);
  const blob = { name: 'blob', type: 'azure-blob', accountUrl: azurite.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, readOnly: true };
  // A source whose login Azurite refuses: the health board holds it as down.
  const locked = { ...blob, name: 'locked', accountKey: Buffer.from('not the account key').toString('base64') };
  d = await mountDaemon({ cacheDir: join(work, 'cache'), cache: { memory: '16MiB' }, sources: [storage.source(), blob, locked], uploads: { writeBack: '100ms' } });
});
afterAll(async () => {
  await d?.stop();
  await azurite?.stop();
  await storage?.close();
  await rm(work, { recursive: true, force: true });
});

describe.sequential('GET /metrics on the control socket', () => {
  it('after reads, a failed read, a missing name and an upload, has every series with matching values', async () => {
    const mnt = `${d.mountpoint}/s3`;
    expect(await sh(`ls ${mnt}/data`)).toBe('a.bin\nbad.bin\n');
    expect(await sh(`ls ${d.mountpoint}/blob/x`)).toBe('blob.bin\n');
    expect((await sh(`sha256sum ${mnt}/data/a.bin`)).split(' ')[0]).toBe(sha256(A));
    expect((await shResult(`stat ${mnt}/data/missing.bin`)).code).not.toBe(0);
    expect((await shResult(`stat ${mnt}/data/missing.bin`)).code).not.toBe(0);
    // 400 is not retried: the readahead's GET and the reader's own second try both fail, and so does the
    // read (O_DIRECT: the kernel's page cache would try once more itself).
    storage.proxy.failNext(2, 400);
    const failed = await shResult(`dd if=${mnt}/data/bad.bin of=/dev/null bs=64k count=1 iflag=direct`);
    expect(storage.proxy.requests().filter((r) => r.status === 400)).toHaveLength(2);
    expect(failed.stderr).toMatch(/Input\/output error/);
    await sh(`cp ${join(work, 'up.bin')} ${mnt}/data/up.bin`);
    await until(async () => (await storage.object('data/up.bin'))?.equals(UP) ?? false, 'the upload');
    await until(async () => total(await scrape(), 'assetfs_upload_bytes_total', { source: 's3' }) === UP.length, 'the upload counted');

    const p = await scrape();
    for (const [name, type] of Object.entries(SERIES)) expect(p.types.get(name), name).toBe(type);

    // FUSE: every request counted and timed, the failed read with its errno.
    const reads = total(p, 'assetfs_fuse_requests_total', { op: 'read' });
    expect(reads).toBeGreaterThan(0);
    expect(total(p, 'assetfs_fuse_request_duration_seconds_count', { op: 'read' })).toBe(reads);
    expect(total(p, 'assetfs_fuse_request_duration_seconds_bucket', { op: 'read', le: '+Inf' })).toBe(reads);
    expect(total(p, 'assetfs_fuse_errors_total', { op: 'read', errno: 'EIO' })).toBe(1);
    expect(total(p, 'assetfs_fuse_errors_total', { op: 'getattr', errno: 'ENOENT' })).toBeGreaterThanOrEqual(2);
    for (const op of ['getattr', 'readdir', 'open', 'release', 'create', 'write']) expect(total(p, 'assetfs_fuse_requests_total', { op }), op).toBeGreaterThan(0);

    // Origin: ranged GETs (206) and the failed one (400), listings (api), the upload's part.
    expect(total(p, 'assetfs_origin_requests_total', { source: 's3', kind: 'read', code: '206' })).toBeGreaterThan(0);
    expect(total(p, 'assetfs_origin_requests_total', { source: 's3', kind: 'read', code: '400' })).toBe(2);
    expect(total(p, 'assetfs_origin_requests_total', { source: 's3', kind: 'api', code: '200' })).toBeGreaterThan(0);
    expect(total(p, 'assetfs_origin_requests_total', { source: 'blob', kind: 'api', code: '200' })).toBeGreaterThan(0);
    expect(total(p, 'assetfs_origin_requests_total', { source: 's3', kind: 'upload', code: '200' })).toBe(1);
    expect(total(p, 'assetfs_origin_first_byte_seconds_count', { source: 's3' })).toBe(total(p, 'assetfs_origin_requests_total', { source: 's3', kind: 'read', code: '206' }));
    expect(total(p, 'assetfs_origin_bytes_total', { source: 's3', direction: 'in' })).toBeGreaterThanOrEqual(A.length);
    expect(total(p, 'assetfs_origin_bytes_total', { source: 's3', direction: 'out' })).toBe(UP.length);

    // Caches and listings.
    expect(total(p, 'assetfs_cache_lookups_total', { tier: 'memory', result: 'miss' })).toBeGreaterThan(0);
    expect(total(p, 'assetfs_cache_lookups_total', { tier: 'disk', result: 'miss' })).toBeGreaterThan(0);
    expect(total(p, 'assetfs_cache_bytes', { tier: 'memory' })).toBeGreaterThan(0);
    expect(select(p, 'assetfs_cache_evictions_total').map((s) => s.labels.tier).sort()).toEqual(['disk', 'memory']);
    expect(total(p, 'assetfs_metadata_lookups_total', { result: 'miss' })).toBeGreaterThan(0);
    expect(total(p, 'assetfs_metadata_lookups_total', { result: 'hit' })).toBeGreaterThan(0);
    expect(total(p, 'assetfs_metadata_lookups_total', { result: 'negative' })).toBeGreaterThanOrEqual(1);

    // Uploads: done, so nothing queued, uploading or failed; bytes as the file's size.
    expect(select(p, 'assetfs_uploads').map((s) => `${s.labels.state}=${s.value}`).sort()).toEqual(['failed=0', 'queued=0', 'uploading=0']);
    expect(total(p, 'assetfs_upload_bytes_total', { source: 's3' })).toBe(UP.length);
    expect(total(p, 'assetfs_upload_failures_total', { source: 's3' })).toBe(0);
    expect(select(p, 'assetfs_url_refreshes_total', { source: 's3' }).map((s) => s.labels.reason).sort()).toEqual(['expired', 'refused']);
    expect(total(p, 'assetfs_source_up', { source: 's3' })).toBe(1);
    expect(total(p, 'assetfs_source_up', { source: 'blob' })).toBe(1);
    expect(total(p, 'process_cpu_seconds_total')).toBeGreaterThan(0);

    // No path, file name or object key as a label value.
    for (const s of p.samples.filter((x) => x.name.startsWith('assetfs_'))) {
      for (const v of Object.values(s.labels)) expect(v, `${s.name} ${JSON.stringify(s.labels)}`).not.toMatch(/\/|\.bin|data/);
    }
  });

  it('source_up is the health board\'s: 0 for the source whose login is refused, as assetfs status says', async () => {
    await until(async () => total(await scrape(), 'assetfs_source_up', { source: 'locked' }) === 0, 'the refused source down');
    const status = JSON.parse(await sh(`node ${BIN} status --json --socket ${socket()}`)) as { sources: Array<{ name: string; health: { state: string } }> };
    expect(Object.fromEntries(status.sources.map((s) => [s.name, s.health.state]))).toEqual({ s3: 'ok', blob: 'ok', locked: 'login refused' });
    const p = await scrape();
    expect(Object.fromEntries(select(p, 'assetfs_source_up').map((s) => [s.labels.source, s.value]))).toEqual({ s3: 1, blob: 1, locked: 0 });
  });

  it('assetfs status shows the bytes fetched that /metrics counts', async () => {
    const status = JSON.parse(await sh(`node ${BIN} status --json --socket ${socket()}`)) as { network: { bytesFetched: number; requests: number } };
    const p = await scrape();
    const fetched = total(p, 'assetfs_origin_bytes_total', { direction: 'in' });
    expect(fetched).toBeGreaterThanOrEqual(A.length);
    expect(status.network.bytesFetched).toBe(fetched);
    expect(status.network.requests).toBe(total(p, 'assetfs_origin_requests_total', { kind: 'read' }));
    const text = await sh(`node ${BIN} status --socket ${socket()}`);
    expect(text).toMatch(/network: +\d+ requests, [1-9][\d.]* MiB fetched/);
  });
});
