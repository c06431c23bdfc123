/**
 * What FastHttpTransport does beyond the contract every transport keeps (http-transport.test.ts runs
 * that against it too): keep-alive reuse and when a connection must not be reused, what it hands to
 * undici, aborts mid-body, the resend after a server closed an idle connection, HTTPS. Real loopback
 * servers throughout: the range server, and a raw socket server for answers node:http would not send.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { FastHttpTransport } from '../../src/transports/fast-http.js';
import { FsError, StaleError, TransientError } from '../../src/core/errors.js';
import type { Expectation, SignedLocator } from '../../src/core/types.js';
import { startRangeServer, type RangeServer } from '../helpers/range-server.js';
import { TEST_TLS_CERT, TEST_TLS_KEY } from '../helpers/tls-fixture.js';

const DATA = randomBytes(300_000);
let server: RangeServer;
let transport: FastHttpTransport;
let whole: Expectation;

// The version is the storage's ETag here (as S3's and Azure's are): another ETag is a changed object.
const loc = (name = 'obj'): SignedLocator => ({ url: server.url(name), expiresAt: Infinity, etagIsVersion: true });
const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
const handedOver = (t: FastHttpTransport) => Object.values(t.stats().fallback).reduce((a, b) => a + b, 0);

beforeAll(async () => {
  server = await startRangeServer();
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  server.put('obj', DATA);
  server.clearFaults();
  server.resetLog();
  whole = { version: server.etag('obj'), size: DATA.length };
  // Bounds for stalls only, never asserted as durations.
  transport = new FastHttpTransport({ requestTimeoutMs: 500, connectionsPerOrigin: 4 });
});
afterEach(async () => {
  await transport.close();
});

describe('FastHttpTransport', () => {
  it('reads many parts byte-exact into the given buffers, over one kept-alive connection', async () => {
    const before = server.connections;
    for (let start = 0; start < DATA.length; start += 9_999) {
      const end = Math.min(DATA.length, start + 9_999);
      const parts = [Buffer.alloc(Math.min(4096, end - start)), Buffer.alloc(end - start - Math.min(4096, end - start))];
      await transport.readRangeInto(loc(), { start, end }, whole, parts);
      expect(Buffer.concat(parts).equals(DATA.subarray(start, end))).toBe(true);
    }
    expect(server.connections - before).toBe(1);
    expect(transport.stats()).toMatchObject({ fast: Math.ceil(DATA.length / 9_999), fallback: {}, resent: 0 });
  });

  it('keeps to connectionsPerOrigin when more reads than that run at once', async () => {
    const before = server.connections;
    const ranges = Array.from({ length: 24 }, (_, i) => ({ start: i * 12_000, end: i * 12_000 + 11_000 }));
    const got = await Promise.all(ranges.map((r) => transport.readRange(loc(), r, whole)));
    got.forEach((b, i) => expect(b.equals(DATA.subarray(ranges[i]!.start, ranges[i]!.end))).toBe(true));
    expect(server.connections - before).toBeLessThanOrEqual(4);
    expect(transport.stats().fast).toBe(24);
  });

  it('never reuses a connection whose answer it did not read to the end', async () => {
    // Each failure leaves the server ready to send a body on that connection: reading the next answer
    // there would take body bytes for a head.
    for (const fault of [{ kind: 'etag', etag: '"other"' }, { kind: 'stall' }, { kind: 'reset' }] as const) {
      server.inject('obj', fault);
      const e = await errorOf(transport.readRange(loc(), { start: 0, end: 200_000 }, whole));
      expect(e).toBeInstanceOf(fault.kind === 'etag' ? StaleError : TransientError);
      const before = server.connections;
      expect((await transport.readRange(loc(), { start: 5, end: 200_000 }, whole)).equals(DATA.subarray(5, 200_000))).toBe(true);
      expect(server.connections - before).toBe(1);
    }
    // …and read on the fast path: a reused connection with a body pending would have been handed over.
    expect(transport.stats()).toMatchObject({ fast: 3, fallback: {} });
  });

  it('a server that closes mid-body is a short body, a TransientError', async () => {
    server.inject('obj', { kind: 'reset' });
    const e = (await errorOf(transport.readRange(loc(), { start: 0, end: 200_000 }, whole))) as Error;
    expect(e).toBeInstanceOf(TransientError);
    expect(e.message).toMatch(/short body \(\d+ of 200000 bytes/);
    expect(transport.stats().resent).toBe(0);
  });

  it('hands a redirect to undici, which follows it; it never follows one itself', async () => {
    const got = await transport.readRange({ url: server.redirectUrl('obj'), expiresAt: Infinity }, { start: 10, end: 20 }, whole);
    expect(got.equals(DATA.subarray(10, 20))).toBe(true);
    expect(transport.stats()).toMatchObject({ fast: 0, fallback: { 'HTTP 302': 1 } });
    expect(server.requests.map((r) => r.status)).toEqual([302, 302, 206]);
  });

  it('hands a chunked answer to undici, which reads it', async () => {
    server.inject('obj', { kind: 'chunked' }, 2);
    const parts = [Buffer.alloc(50_000), Buffer.alloc(100_000)];
    await transport.readRangeInto(loc(), { start: 1000, end: 151_000 }, whole, parts);
    expect(Buffer.concat(parts).equals(DATA.subarray(1000, 151_000))).toBe(true);
    expect(transport.stats()).toMatchObject({ fast: 0, fallback: { 'Transfer-Encoding': 1 } });
    expect(server.requests.map((r) => r.fault)).toEqual(['chunked', 'chunked']);
  });

  it('hands a locator header it would not write itself to undici', async () => {
    const got = await transport.readRange({ ...loc(), headers: { 'x-note': 'caf\u00e9' } }, { start: 0, end: 10 }, whole);
    expect(got.equals(DATA.subarray(0, 10))).toBe(true);
    expect(transport.stats().fallback).toEqual({ 'URL or headers': 1 });
  });

  it('an abort mid-body ends the read with the signal reason and closes its connection', async () => {
    // The stall bound is far beyond the test's own timeout: only the abort can end this read in time.
    const patient = new FastHttpTransport({ requestTimeoutMs: 600_000 });
    let release!: () => void;
    server.inject('obj', { kind: 'hold', after: 100_000, release: new Promise<void>((r) => (release = r)) });
    const ac = new AbortController();
    let filled = 0;
    const p = patient.readRangeInto(loc(), { start: 0, end: DATA.length }, whole, [Buffer.alloc(DATA.length)], (f) => {
      filled = f;
      if (f >= 100_000) ac.abort(new Error('cancelled by test'));
    }, ac.signal);
    const e = (await errorOf(p)) as Error;
    release();
    try {
      expect(e.message).toBe('cancelled by test');
      expect(filled).toBeGreaterThanOrEqual(100_000);
      expect(filled).toBeLessThan(DATA.length);
      const before = server.connections;
      expect((await patient.readRange(loc(), { start: 0, end: 10 }, whole)).equals(DATA.subarray(0, 10))).toBe(true);
      expect(server.connections - before).toBe(1);
    } finally {
      await patient.close();
    }
  }, 30_000);

  it('a body trickled a byte at a time ends at the deadline, as a TransientError', async () => {
    // A byte every 20 ms never stalls, and 100 kB of it would take half an hour: only the deadline ends it.
    const bounded = new FastHttpTransport({ requestTimeoutMs: 5_000, deadlineMs: 1_000 });
    try {
      server.inject('obj', { kind: 'trickle', intervalMs: 20 });
      const e = (await errorOf(bounded.readRange(loc(), { start: 0, end: 100_000 }, whole))) as Error;
      expect(e).toBeInstanceOf(TransientError);
      expect(e.message).toMatch(/no complete answer within 1000 ms/);
      const before = server.connections;
      expect((await bounded.readRange(loc(), { start: 0, end: 100_000 }, whole)).equals(DATA.subarray(0, 100_000))).toBe(true);
      expect(server.connections - before).toBe(1);
    } finally {
      await bounded.close();
    }
  }, 30_000);

  it('sends a request once more, on a new connection, when a kept-alive one closes unanswered', async () => {
    await transport.readRange(loc(), { start: 0, end: 10 }, whole);
    server.inject('obj', { kind: 'drop' });
    expect((await transport.readRange(loc(), { start: 10, end: 20 }, whole)).equals(DATA.subarray(10, 20))).toBe(true);
    expect(transport.stats().resent).toBe(1);
    expect(server.requests.map((r) => r.fault ?? r.status)).toEqual([206, 'drop', 206]);
  });

  it('sends it once more only: a second close unanswered is the caller’s TransientError', async () => {
    await transport.readRange(loc(), { start: 0, end: 10 }, whole);
    server.inject('obj', { kind: 'drop' }, 2);
    expect(await errorOf(transport.readRange(loc(), { start: 10, end: 20 }, whole))).toBeInstanceOf(TransientError);
    expect(transport.stats().resent).toBe(1);
  });

  it('does not send again what a new connection closed unanswered', async () => {
    server.inject('obj', { kind: 'drop' });
    expect(await errorOf(transport.readRange(loc(), { start: 0, end: 10 }, whole))).toBeInstanceOf(TransientError);
    expect(transport.stats().resent).toBe(0);
  });

  it('a kept-alive connection the server closed while idle never surfaces as an error', async () => {
    await transport.readRange(loc(), { start: 0, end: 10 }, whole);
    server.closeIdleConnections();
    expect((await transport.readRange(loc(), { start: 10, end: 20 }, whole)).equals(DATA.subarray(10, 20))).toBe(true);
    expect(handedOver(transport)).toBe(0);
  });
});

describe('FastHttpTransport over HTTPS', () => {
  let tlsServer: RangeServer;
  beforeAll(async () => {
    tlsServer = await startRangeServer({ tls: { key: TEST_TLS_KEY, cert: TEST_TLS_CERT } });
    tlsServer.put('obj', DATA);
  });
  afterAll(async () => {
    await tlsServer?.close();
  });

  it('reads byte-exact over one kept-alive TLS connection', async () => {
    const t = new FastHttpTransport({ requestTimeoutMs: 2000, tls: { ca: TEST_TLS_CERT } });
    try {
      const l = { url: tlsServer.url('obj'), expiresAt: Infinity };
      const exp = { version: tlsServer.etag('obj'), size: DATA.length };
      for (const [start, end] of [[0, 300_000], [7, 70_007], [299_000, 300_000]] as const) {
        const parts = [Buffer.alloc(1000), Buffer.alloc(end - start - 1000)];
        await t.readRangeInto(l, { start, end }, exp, parts);
        expect(Buffer.concat(parts).equals(DATA.subarray(start, end))).toBe(true);
      }
      expect(tlsServer.connections).toBe(1);
      expect(t.stats()).toMatchObject({ fast: 3, fallback: {} });
    } finally {
      await t.close();
    }
  });

  it('refuses a certificate it cannot verify, and not as a TransientError', async () => {
    const t = new FastHttpTransport({ requestTimeoutMs: 2000 });
    try {
      const e = await errorOf(t.readRange({ url: tlsServer.url('obj'), expiresAt: Infinity }, { start: 0, end: 10 }, { version: '', size: DATA.length }));
      expect(e).toBeInstanceOf(FsError);
      expect(e).not.toBeInstanceOf(TransientError);
    } finally {
      await t.close();
    }
  });
});

/** A server that answers every request on a connection with `answer` (raw bytes), counting connections. */
async function rawServer(answer: Buffer): Promise<{ url: string; connections: () => number; close(): Promise<void> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const srv: Server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let pending = '';
    s.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      while (pending.includes('\r\n\r\n')) {
        pending = pending.slice(pending.indexOf('\r\n\r\n') + 4);
        s.write(answer);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/obj`,
    connections: () => connections,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

describe('FastHttpTransport, answers node:http would not send', () => {
  const body = Buffer.from('0123456789');
  const head = (lines: string[]) => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const exp = { version: '', size: 10 };

  it('a server that sends more than it declared never has that connection reused', async () => {
    const raw = await rawServer(Buffer.concat([head(['HTTP/1.1 206 Partial Content', 'Content-Range: bytes 0-9/10', 'Content-Length: 10']), body, Buffer.from('EXTRA')]));
    try {
      for (let i = 0; i < 3; i++) expect((await transport.readRange({ url: raw.url, expiresAt: Infinity }, { start: 0, end: 10 }, exp)).equals(body)).toBe(true);
      expect(raw.connections()).toBe(3);
      expect(transport.stats().fast).toBe(3);
    } finally {
      await raw.close();
    }
  });

  it('hands an HTTP/1.0 answer and a folded header line to undici', async () => {
    for (const [answer, reason] of [
      [head(['HTTP/1.0 206 Partial Content', 'Content-Range: bytes 0-9/10', 'Content-Length: 10']), 'status line'],
      [head(['HTTP/1.1 206 Partial Content', 'Content-Range: bytes 0-9/10', 'X-Long: a', ' b', 'Content-Length: 10']), 'header line'],
    ] as const) {
      const raw = await rawServer(Buffer.concat([answer, body]));
      try {
        await errorOf(transport.readRange({ url: raw.url, expiresAt: Infinity }, { start: 0, end: 10 }, exp));
        expect(Object.keys(transport.stats().fallback).some((k) => k.startsWith(reason))).toBe(true);
      } finally {
        await raw.close();
      }
    }
  });
});
