/**
 * The daemon's metrics without a mount: the families' exposition, the FUSE op meter, the origin code
 * of an error, source_up from the health board, ranged reads counted alike on both transports, and
 * the optional TCP listener's loopback rule.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { DaemonMetrics, originCode } from '../../src/metrics/metrics.js';
import { SourceHealth, isUp } from '../../src/daemon/health.js';
import { RemoteListenRefused, startMetricsListener, type MetricsListener } from '../../src/metrics/listener.js';
import { isLoopbackHost, parseListen } from '../../src/metrics/listen-address.js';
import { AuthError, ExpiredError, FsError, MisconfiguredError, NotFoundError, TransientError } from '../../src/core/errors.js';
import { parsePromText, select, total } from '../helpers/prom-text.js';
import { startRangeServer, type RangeServer } from '../helpers/range-server.js';
import { NetworkBlockSource } from '../../src/read/block-source.js';
import { LocatorCache } from '../../src/read/locator-cache.js';
import { MemoryBlockCache } from '../../src/cache/memory-cache.js';
import { FastHttpTransport } from '../../src/transports/fast-http.js';
import { HttpTransport } from '../../src/transports/http.js';
import type { ObjectVersion, Provider, Transport } from '../../src/core/types.js';

function get(port: number, host: string, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('DaemonMetrics', () => {
  it('counts FUSE requests, their durations and errors by errno name, in a parseable exposition', async () => {
    const m = new DaemonMetrics(['s3']);
    const read = m.fuse.op('read');
    const t = performance.now();
    read.end(t, 4096);
    read.end(t, -5);
    m.fuse.op('getattr').end(t, -2);
    m.fuse.op('open').end(t, -11); // EAGAIN, also known as EWOULDBLOCK
    const p = parsePromText(await m.scrape());
    expect(p.types.get('assetfs_fuse_requests_total')).toBe('counter');
    expect(p.types.get('assetfs_fuse_request_duration_seconds')).toBe('histogram');
    expect(total(p, 'assetfs_fuse_requests_total', { op: 'read' })).toBe(2);
    expect(total(p, 'assetfs_fuse_request_duration_seconds_count', { op: 'read' })).toBe(2);
    expect(total(p, 'assetfs_fuse_request_duration_seconds_bucket', { op: 'read', le: '+Inf' })).toBe(2);
    expect(total(p, 'assetfs_fuse_errors_total', { op: 'read', errno: 'EIO' })).toBe(1);
    expect(total(p, 'assetfs_fuse_errors_total', { op: 'getattr', errno: 'ENOENT' })).toBe(1);
    expect(total(p, 'assetfs_fuse_errors_total', { op: 'open', errno: 'EAGAIN' })).toBe(1);
    expect(p.types.get('process_cpu_seconds_total')).toBe('counter');
    expect(p.types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
  });

  it('gives each source its own series, and none to a name outside the config', async () => {
    const m = new DaemonMetrics(['a', 'b']);
    expect(m.source('elsewhere')).toBeUndefined();
    await m.source('a')!.rangedGet(100, () => undefined, async (progress) => progress(100));
    await expect(m.source('b')!.uploadPart(7, async () => Promise.reject(new TransientError('x', { status: 503 })))).rejects.toThrow();
    const p = parsePromText(await m.scrape());
    expect(total(p, 'assetfs_origin_requests_total', { source: 'a', kind: 'read', code: '206' })).toBe(1);
    expect(total(p, 'assetfs_origin_first_byte_seconds_count', { source: 'a' })).toBe(1);
    expect(total(p, 'assetfs_origin_bytes_total', { source: 'a', direction: 'in' })).toBe(100);
    expect(total(p, 'assetfs_origin_requests_total', { source: 'b', kind: 'upload', code: '503' })).toBe(1);
    expect(total(p, 'assetfs_upload_bytes_total', { source: 'b' })).toBe(0);
    expect(total(p, 'assetfs_origin_bytes_total', { source: 'b', direction: 'out' })).toBe(7);
    expect(total(p, 'assetfs_source_up', { source: 'a' })).toBe(1);
  });

  it('source_up follows the health board: 1 while a source is ok or not used yet, 0 in every failure state', async () => {
    const m = new DaemonMetrics(['a', 'b', 'c', 'd', 'e']);
    const health = new SourceHealth(['a', 'b', 'c', 'd', 'e']);
    m.readFrom({
      caches: () => ({ memory: { bytes: 0, hits: 0, misses: 0, evictions: 0 }, disk: { bytes: 0, hits: 0, misses: 0, evictions: 0 } }),
      metadata: () => ({ hit: 0, miss: 0, negative: 0 }),
      uploads: () => ({ queued: 0, uploading: 0, failed: 0 }),
      sourceUp: (source) => isUp(health.get(source).state),
    });
    const up = async () => Object.fromEntries(select(parsePromText(await m.scrape()), 'assetfs_source_up').map((s) => [s.labels.source, s.value]));
    health.ok('a');
    health.failed('b', new AuthError('login refused'));
    health.failed('c', new TransientError('connect ECONNREFUSED'));
    health.failed('d', new MisconfiguredError('no such bucket'));
    expect(await up()).toEqual({ a: 1, b: 0, c: 0, d: 0, e: 1 }); // e: unknown, nothing reached it yet
    // A request counted as failed by the meter says nothing by itself: the board decides.
    m.source('a')!.request('api', new TransientError('reset'));
    health.failed('b', new NotFoundError('x')); // a missing file does not change a source's state
    health.ok('c');
    expect(await up()).toEqual({ a: 1, b: 0, c: 1, d: 0, e: 1 });
  });

  it('origin codes: the HTTP status an error stands for, `error` when no answer came', () => {
    expect(originCode(undefined)).toBe(200);
    expect(originCode(new TransientError('GET x: HTTP 503', { status: 503 }))).toBe(503);
    expect(originCode(new NotFoundError('gone'))).toBe(404);
    expect(originCode(new ExpiredError('GET x: HTTP 401'))).toBe(401);
    expect(originCode(new ExpiredError('refused'))).toBe(403);
    expect(originCode(new FsError('EIO', 'GET x: HTTP 400'))).toBe(400);
    expect(originCode(new TransientError('GET x: ECONNRESET'))).toBe('error');
  });
});

/** A provider whose locators point at the range server (reads only). */
function rangeProvider(server: RangeServer): Provider {
  return {
    name: 'src', type: 'fixture', caps: { upload: false },
    async *list() {},
    stat: async (ref) => Promise.reject(new NotFoundError(ref)),
    locate: async (obj: ObjectVersion) => ({ url: server.url(obj.ref), expiresAt: Date.now() + 3_600_000 }),
    close: async () => undefined,
  };
}

describe('ranged reads, counted alike on either transport', () => {
  const BS = 64 * 1024;
  const SIZE = 5 * BS + 321; // 6 blocks
  let server: RangeServer;
  beforeAll(async () => {
    server = await startRangeServer();
  });
  afterAll(async () => server?.close());

  const transports: Array<[string, () => Transport]> = [
    ["FastHttpTransport (the daemon's)", () => new FastHttpTransport({ requestTimeoutMs: 5_000 })],
    ['HttpTransport (undici)', () => new HttpTransport({ requestTimeoutMs: 5_000 })],
  ];
  for (const [name, make] of transports) {
    it(`${name}: each GET by status, its first byte and its bytes`, async () => {
      const data = randomBytes(SIZE);
      const ref = `${name.split(' ')[0]}.bin`;
      const obj: ObjectVersion = { source: 'src', ref, version: server.put(ref, data), size: SIZE };
      const metrics = new DaemonMetrics(['src']);
      const transport = make();
      const blocks = new NetworkBlockSource({
        cache: new MemoryBlockCache({ maxBytes: 16 * 1024 * 1024, blockSize: BS }),
        transport,
        locators: new LocatorCache(),
        providerFor: () => rangeProvider(server),
        maxRetryTimeMs: 10_000,
        retryBaseDelayMs: 1,
        meterFor: (source) => metrics.source(source),
      });
      try {
        server.inject(ref, { kind: 'status', status: 503 }, 1); // counted, then retried
        server.inject(ref, { kind: 'chunked' }, 1); // the fast path hands this one to undici: still one read
        const got: Buffer[] = [];
        for (let i = 0; i < 6; i++) got.push(await blocks.readBlock(obj, i));
        expect(Buffer.concat(got).equals(data)).toBe(true);
        // A block's readers are answered as its bytes arrive; its GET is counted when the request has
        // ended, a few microtasks later: wait for the last one rather than race it.
        await vi.waitFor(async () => {
          expect(total(parsePromText(await metrics.scrape()), 'assetfs_origin_requests_total', { source: 'src', kind: 'read', code: '206' })).toBe(6);
        });
        const p = parsePromText(await metrics.scrape());
        expect(total(p, 'assetfs_origin_requests_total', { source: 'src', kind: 'read', code: '503' })).toBe(1);
        expect(total(p, 'assetfs_origin_requests_total', { source: 'src', kind: 'read' })).toBe(7);
        expect(total(p, 'assetfs_origin_first_byte_seconds_count', { source: 'src' })).toBe(6);
        expect(total(p, 'assetfs_origin_bytes_total', { source: 'src', direction: 'in' })).toBe(SIZE);
        if (transport instanceof FastHttpTransport) {
          const { fast, fallback } = transport.stats();
          expect({ fast, fallback }).toEqual({ fast: 5, fallback: { 'Transfer-Encoding': 1 } });
        }
      } finally {
        await transport.close();
      }
    });
  }
});

describe('the TCP listener (metrics.listen)', () => {
  let listener: MetricsListener | undefined;
  afterEach(async () => {
    await listener?.close();
    listener = undefined;
  });
  const metrics = new DaemonMetrics(['s3']);

  it('serves GET /metrics on a loopback address, and nothing else', async () => {
    listener = await startMetricsListener('127.0.0.1:0', metrics);
    const ok = await get(listener.address.port, '127.0.0.1', '/metrics');
    expect(ok.status).toBe(200);
    expect(ok.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(parsePromText(ok.body).types.get('assetfs_source_up')).toBe('gauge');
    expect((await get(listener.address.port, '127.0.0.1', '/status')).status).toBe(404);
  });

  it('refuses a non-loopback address unless allowRemote, and binds nothing then', async () => {
    for (const listen of ['0.0.0.0:0', '[::]:0', '192.0.2.10:9464']) {
      await expect(startMetricsListener(listen, metrics)).rejects.toBeInstanceOf(RemoteListenRefused);
    }
    listener = await startMetricsListener('0.0.0.0:0', metrics, { allowRemote: true });
    expect(listener.address.address).toBe('0.0.0.0');
    expect((await get(listener.address.port, '127.0.0.1', '/metrics')).status).toBe(200);
  });

  it('knows loopback: 127.0.0.0/8, ::1 in any spelling, IPv4-mapped loopback, localhost', () => {
    for (const h of ['127.0.0.1', '127.3.2.1', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', 'metrics.example']) expect(isLoopbackHost(h), h).toBe(false);
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(() => parseListen('127.0.0.1')).toThrow(/host:port/);
    expect(() => parseListen('127.0.0.1:70000')).toThrow(/host:port/);
  });
});
