/**
 * What every read transport must do, run against each: HttpTransport (undici) and FastHttpTransport
 * (sockets reading into the caller's buffers, undici for the rest). Where they differ on the wire (the
 * fast one hands a redirect to undici, which asks again), the difference is stated per transport.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { HttpTransport, parseRetryAfter, type HttpTransportOptions } from '../../src/transports/http.js';
import { FastHttpTransport } from '../../src/transports/fast-http.js';
import { ExpiredError, NotFoundError, StaleError, TransientError } from '../../src/core/errors.js';
import type { Expectation, SignedLocator, Transport } from '../../src/core/types.js';
import { DownloadEtag } from '../../src/core/etag.js';
import { startRangeServer, type RangeServer } from '../helpers/range-server.js';

const DATA = randomBytes(300_000);

interface Subject {
  readonly label: string;
  make(opts: HttpTransportOptions): Transport;
  /** Statuses the server sees for a read of a URL that redirects once. */
  readonly redirectStatuses: readonly number[];
  /** Requests handed to undici so far (a transport with a fast path of its own). */
  readonly handedOver?: (t: Transport) => number;
}

const SUBJECTS: Subject[] = [
  { label: 'HttpTransport', make: (o) => new HttpTransport(o), redirectStatuses: [302, 206] },
  // The fast path never follows a redirect: it hands the request to undici, which asks again.
  {
    label: 'FastHttpTransport',
    make: (o) => new FastHttpTransport(o),
    redirectStatuses: [302, 302, 206],
    handedOver: (t) => Object.values((t as FastHttpTransport).stats().fallback).reduce((a, b) => a + b, 0),
  },
];

describe.each(SUBJECTS.map((s) => [s.label, s] as const))('%s.readRange', (_label, subject) => {
let server: RangeServer;
let transport: Transport;
let expect1: Expectation;

const loc = (name = 'obj', token?: string): SignedLocator => ({ url: server.url(name, token), expiresAt: Infinity });
const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

beforeAll(async () => {
  server = await startRangeServer();
  // A stalled body must end in a TransientError after this long (not a timed assertion: only a bound).
  // Idle connections are kept far longer than any test runs: a stall on a reused one must still be
  // bounded by requestTimeoutMs, not by how long an idle connection may wait.
  transport = subject.make({ requestTimeoutMs: 500, connectionsPerOrigin: 4, keepAliveTimeoutMs: 600_000 });
});
afterAll(async () => {
  await transport?.close();
  await server?.close();
});
// Every test runs on the fast path, except where it says how many requests it hands to undici.
let handedOverBefore = 0;
let handOvers = 0;
beforeEach(() => {
  server.put('obj', DATA);
  server.clearFaults();
  server.resetLog();
  expect1 = { version: server.etag('obj'), size: DATA.length };
  handedOverBefore = subject.handedOver?.(transport) ?? 0;
  handOvers = 0;
});
afterEach(() => {
  if (subject.handedOver) expect(subject.handedOver(transport) - handedOverBefore).toBe(handOvers);
});

{
  it('returns exactly the requested bytes with one ranged GET', async () => {
    const got = await transport.readRange(loc(), { start: 1000, end: 70_000 }, expect1);
    expect(got.equals(DATA.subarray(1000, 70_000))).toBe(true);
    expect(server.requests).toEqual([expect.objectContaining({ name: 'obj', range: { start: 1000, end: 70_000 }, status: 206 })]);
  });

  it('reads the last partial range and the whole object', async () => {
    expect((await transport.readRange(loc(), { start: 299_990, end: 300_000 }, expect1)).equals(DATA.subarray(299_990))).toBe(true);
    expect((await transport.readRange(loc(), { start: 0, end: DATA.length }, expect1)).equals(DATA)).toBe(true);
  });

  it('sends the locator headers', async () => {
    // The server ignores them, but a header with a bad value would make undici throw before sending.
    const got = await transport.readRange({ ...loc(), headers: { authorization: 'Bearer abc', 'x-ms-version': '2021-08-06' } }, { start: 0, end: 10 }, expect1);
    expect(got.equals(DATA.subarray(0, 10))).toBe(true);
  });

  it('accepts an unquoted expected version and an unknown one', async () => {
    const bare = expect1.version.replaceAll('"', '');
    expect((await transport.readRange(loc(), { start: 0, end: 5 }, { ...expect1, version: bare })).equals(DATA.subarray(0, 5))).toBe(true);
    expect((await transport.readRange(loc(), { start: 0, end: 5 }, { ...expect1, version: '' })).equals(DATA.subarray(0, 5))).toBe(true);
  });

  it('a 200 to a ranged request (Range ignored) yields the requested slice', async () => {
    server.inject('obj', { kind: 'ignore-range' });
    const got = await transport.readRange(loc(), { start: 5000, end: 9000 }, expect1);
    expect(got.equals(DATA.subarray(5000, 9000))).toBe(true);
    expect(server.requests[0]?.status).toBe(200);
  });

  it('readRangeInto fills consecutive buffers of any lengths, reporting progress, from a 206 and from a 200', async () => {
    for (const ignoreRange of [false, true]) {
      if (ignoreRange) server.inject('obj', { kind: 'ignore-range' });
      const parts = [Buffer.alloc(70_000), Buffer.alloc(1), Buffer.alloc(0), Buffer.alloc(129_999)];
      const progress: number[] = [];
      await transport.readRangeInto(loc(), { start: 20_000, end: 220_000 }, expect1, parts, (filled) => progress.push(filled));
      expect(Buffer.concat(parts).equals(DATA.subarray(20_000, 220_000))).toBe(true);
      expect(progress[progress.length - 1]).toBe(200_000);
      expect(progress.every((p, i) => i === 0 || p >= progress[i - 1]!)).toBe(true);
    }
    expect(server.requests.map((r) => r.status)).toEqual([206, 200]);
  });

  it('readRangeInto refuses buffers that do not add up to the range', async () => {
    const e = await errorOf(transport.readRangeInto(loc(), { start: 0, end: 100 }, expect1, [Buffer.alloc(99)]));
    expect((e as { code?: string }).code).toBe('EINVAL');
    expect(server.requests).toHaveLength(0);
  });

  it('keeps only the requested slice of a 200, not a view pinning the whole object', async () => {
    server.inject('obj', { kind: 'ignore-range' }, 2);
    const head = await transport.readRange(loc(), { start: 0, end: 10_000 }, expect1);
    expect(head.equals(DATA.subarray(0, 10_000))).toBe(true);
    expect(head.buffer.byteLength).toBe(10_000);
    const tail = await transport.readRange(loc(), { start: 250_000, end: DATA.length }, expect1);
    expect(tail.equals(DATA.subarray(250_000))).toBe(true);
    expect(tail.buffer.byteLength).toBe(50_000);
  });

  it('a 200 whose length is not the expected size is a StaleError', async () => {
    server.inject('obj', { kind: 'ignore-range' });
    const e = await errorOf(transport.readRange(loc(), { start: 0, end: 10 }, { ...expect1, size: DATA.length + 1, version: '' }));
    expect(e).toBeInstanceOf(StaleError);
  });

  it('another ETag is a StaleError where the version is the storage ETag (etagIsVersion)', async () => {
    server.inject('obj', { kind: 'etag', etag: '"something-else"' });
    expect(await errorOf(transport.readRange({ ...loc(), etagIsVersion: true }, { start: 0, end: 10 }, expect1))).toBeInstanceOf(StaleError);
  });

  it('a platform version is never compared with a download ETag: a foreign ETag or none reads', async () => {
    const platform = { version: 'v=3f2a-300000', size: DATA.length };
    server.inject('obj', { kind: 'etag', etag: '"an-etag-no-listing-showed"' });
    expect((await transport.readRange(loc(), { start: 0, end: 10 }, platform)).equals(DATA.subarray(0, 10))).toBe(true);
    server.inject('obj', { kind: 'etag', etag: '' });
    expect((await transport.readRange(loc(), { start: 10, end: 20 }, platform)).equals(DATA.subarray(10, 20))).toBe(true);
    server.inject('obj', { kind: 'etag', etag: '' });
    expect((await transport.readRange({ ...loc(), etagIsVersion: true }, { start: 0, end: 5 }, expect1)).equals(DATA.subarray(0, 5))).toBe(true);
  });

  it('downloads of one version are compared with each other: a second ETag is a StaleError, on ranged and whole reads', async () => {
    const seen = new DownloadEtag();
    const platform = { version: 'rev-7', size: DATA.length, downloadEtag: seen };
    expect((await transport.readRange(loc(), { start: 0, end: 10 }, platform)).equals(DATA.subarray(0, 10))).toBe(true);
    expect(seen.value).toBe(server.etag('obj').replaceAll('"', ''));
    server.inject('obj', { kind: 'etag', etag: '' }); // none: nothing to compare
    expect((await transport.readRange(loc(), { start: 10, end: 20 }, platform)).equals(DATA.subarray(10, 20))).toBe(true);
    server.inject('obj', { kind: 'etag', etag: '"rewritten"' });
    const e = (await errorOf(transport.readRange(loc(), { start: 20, end: 30 }, platform))) as Error;
    expect(e).toBeInstanceOf(StaleError);
    expect(e.message).toMatch(/differs from .* earlier downloads/);
    server.inject('obj', { kind: 'etag', etag: '"rewritten"' });
    expect(await errorOf(transport.streamWhole(loc(), platform, () => undefined))).toBeInstanceOf(StaleError);
  });

  it('a Content-Range total other than the expected size is a StaleError', async () => {
    const e = await errorOf(transport.readRange(loc(), { start: 0, end: 10 }, { version: '', size: DATA.length + 5 }));
    expect(e).toBeInstanceOf(StaleError);
  });

  it('maps 401/403 to ExpiredError, 404 to NotFoundError, 412/416 to StaleError', async () => {
    server.inject('obj', { kind: 'status', status: 403 });
    expect(await errorOf(transport.readRange(loc(), { start: 0, end: 10 }, expect1))).toBeInstanceOf(ExpiredError);
    server.inject('obj', { kind: 'status', status: 401 });
    expect(await errorOf(transport.readRange(loc(), { start: 0, end: 10 }, expect1))).toBeInstanceOf(ExpiredError);
    expect(await errorOf(transport.readRange(loc('missing'), { start: 0, end: 10 }, expect1))).toBeInstanceOf(NotFoundError);
    server.inject('obj', { kind: 'status', status: 412 });
    expect(await errorOf(transport.readRange(loc(), { start: 0, end: 10 }, expect1))).toBeInstanceOf(StaleError);
    server.put('small', Buffer.alloc(5));
    const e = await errorOf(transport.readRange(loc('small'), { start: 10, end: 20 }, { version: '', size: 20 }));
    expect(e).toBeInstanceOf(StaleError);
  });

  it('maps 5xx and 429 to TransientError with status and Retry-After', async () => {
    server.inject('obj', { kind: 'status', status: 503 });
    const e1 = await errorOf(transport.readRange(loc(), { start: 0, end: 10 }, expect1));
    expect(e1).toBeInstanceOf(TransientError);
    expect((e1 as TransientError).status).toBe(503);
    server.inject('obj', { kind: 'status', status: 429, retryAfter: '7' });
    const e2 = (await errorOf(transport.readRange(loc(), { start: 0, end: 10 }, expect1))) as TransientError;
    expect(e2).toBeInstanceOf(TransientError);
    expect(e2.status).toBe(429);
    expect(e2.retryAfterMs).toBe(7000);
  });

  it('a short body is a TransientError, declared or not', async () => {
    server.inject('obj', { kind: 'short' });
    const e1 = await errorOf(transport.readRange(loc(), { start: 0, end: 100_000 }, expect1));
    expect(e1).toBeInstanceOf(TransientError);
    expect((e1 as Error).message).toMatch(/short body/);
    // Twice: a chunked answer is one the fast path hands to undici, which asks again.
    server.inject('obj', { kind: 'short', declared: false }, 2);
    if (subject.handedOver) handOvers = 1;
    const e2 = await errorOf(transport.readRange(loc(), { start: 0, end: 100_000 }, expect1));
    expect(e2).toBeInstanceOf(TransientError);
    expect((e2 as Error).message).toMatch(/short body/);
  });

  it('a connection reset mid-body is a TransientError, and the next read works', async () => {
    server.inject('obj', { kind: 'reset' });
    expect(await errorOf(transport.readRange(loc(), { start: 0, end: 200_000 }, expect1))).toBeInstanceOf(TransientError);
    expect((await transport.readRange(loc(), { start: 0, end: 200_000 }, expect1)).equals(DATA.subarray(0, 200_000))).toBe(true);
  });

  it('an answer that never comes times out as a TransientError', async () => {
    server.inject('obj', { kind: 'mute' });
    const e = await errorOf(transport.readRange(loc(), { start: 0, end: 1000 }, expect1));
    expect(e).toBeInstanceOf(TransientError);
    expect((e as Error).message).toMatch(/HEADERS_TIMEOUT/);
  }, 20_000); // far beyond the 500 ms bound, far below the 29 s an idle connection is kept here

  it('a body that never arrives times out as a TransientError (the Azurite 500-without-body quirk)', async () => {
    server.inject('obj', { kind: 'stall' });
    const e = await errorOf(transport.readRange(loc(), { start: 0, end: 1000 }, expect1));
    expect(e).toBeInstanceOf(TransientError);
    expect((e as Error).message).toMatch(/BODY_TIMEOUT/);
    // An error status is never waited on for its body.
    server.inject('obj', { kind: 'stall', status: 500 });
    expect(await errorOf(transport.readRange(loc(), { start: 0, end: 1000 }, expect1))).toBeInstanceOf(TransientError);
  }, 20_000);

  it('a refused connection is a TransientError', async () => {
    const dead = await startRangeServer();
    const url = dead.url('x');
    await dead.close();
    expect(await errorOf(transport.readRange({ url, expiresAt: Infinity }, { start: 0, end: 1 }, { version: '', size: 1 }))).toBeInstanceOf(TransientError);
  });

  it('never puts a signed query string into an error message', async () => {
    const secret = 'sig=SECRET-SIGNATURE-123&se=2030';
    server.inject('obj', { kind: 'status', status: 403 });
    const e = (await errorOf(transport.readRange({ url: `${server.url('obj')}?${secret}`, expiresAt: Infinity }, { start: 0, end: 10 }, expect1))) as Error;
    expect(e).toBeInstanceOf(ExpiredError);
    expect(e.message).not.toContain('SECRET');
    expect(e.message).toContain(server.origin);
    server.inject('obj', { kind: 'stall' });
    const e2 = (await errorOf(transport.readRange({ url: `${server.url('obj')}?${secret}`, expiresAt: Infinity }, { start: 0, end: 10 }, expect1))) as Error;
    expect(e2.message).not.toContain('SECRET');
  });

  it('is aborted by its signal with the signal reason', async () => {
    server.inject('obj', { kind: 'stall' });
    const ac = new AbortController();
    const p = transport.readRange(loc(), { start: 0, end: 1000 }, expect1, ac.signal);
    // Abort once the server holds the request, so that nothing of this test reaches the next one.
    const timer = setInterval(() => {
      if (server.requests.length > 0) ac.abort(new Error('cancelled by test'));
    }, 2);
    p.finally(() => clearInterval(timer)).catch(() => undefined);
    const e = (await errorOf(p)) as Error;
    expect(e.message).toBe('cancelled by test');
  });

  it('follows a redirect from a download endpoint to the storage URL', async () => {
    if (subject.handedOver) handOvers = 1;
    const got = await transport.readRange({ url: server.redirectUrl('obj'), expiresAt: Infinity }, { start: 10, end: 20 }, expect1);
    expect(got.equals(DATA.subarray(10, 20))).toBe(true);
    expect(server.requests.map((r) => r.status)).toEqual(subject.redirectStatuses);
  });

  it('serves many parallel reads over its pool, byte-exact', async () => {
    const ranges = Array.from({ length: 40 }, (_, i) => ({ start: i * 7000, end: i * 7000 + 6000 }));
    const got = await Promise.all(ranges.map((r) => transport.readRange(loc(), r, expect1)));
    got.forEach((b, i) => expect(b.equals(DATA.subarray(ranges[i]!.start, ranges[i]!.end))).toBe(true));
  });
}
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(parseRetryAfter('Tue, 01 Jan 2030 00:00:10 GMT', now)).toBe(10_000);
  });
});
