/**
 * The daemon's metrics without a mount: the families' exposition, the FUSE op meter, the origin code
 * of an error, and the optional TCP listener's loopback rule.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { DaemonMetrics, originCode } from '../../src/metrics/metrics.js';
import { RemoteListenRefused, startMetricsListener, type MetricsListener } from '../../src/metrics/listener.js';
import { isLoopbackHost, parseListen } from '../../src/metrics/listen-address.js';
import { ExpiredError, FsError, NotFoundError, TransientError } from '../../src/core/errors.js';
import { parsePromText, total } from '../helpers/prom-text.js';

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

  it('source_up goes to 0 when the last API request failed, and back on the next answer', async () => {
    const m = new DaemonMetrics(['s3']);
    m.source('s3')!.request('api', new TransientError('reset'));
    expect(total(parsePromText(await m.scrape()), 'assetfs_source_up', { source: 's3' })).toBe(0);
    m.source('s3')!.request('api', undefined, 404);
    expect(total(parsePromText(await m.scrape()), 'assetfs_source_up', { source: 's3' })).toBe(1);
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
