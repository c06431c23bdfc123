/**
 * Credentials stay with their origin, and every call is bounded (docs/semantics.md, "Credentials and
 * origins", "Bounded calls"): two loopback servers, the configured one and another origin, each
 * recording the headers it receives. The providers' own cases run in test/contract/hostile-suite.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpTransport } from '../../src/transports/http.js';
import { ApiClient } from '../../src/providers/common/api-client.js';
import { FsError, TransientError } from '../../src/core/errors.js';
import { CREDENTIAL_HEADERS } from '../helpers/hostile-server.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

interface Recorder {
  readonly origin: string;
  readonly seen: Array<{ path: string; headers: IncomingHttpHeaders }>;
  handle: Handler;
  close(): Promise<void>;
}

async function recorder(): Promise<Recorder> {
  const r: Recorder = {
    origin: '',
    seen: [],
    handle: (_req, res) => void res.writeHead(404).end(),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
  const server: Server = createServer((req, res) => {
    r.seen.push({ path: req.url ?? '/', headers: { ...req.headers } });
    void Promise.resolve(r.handle(req, res)).catch(() => res.destroy());
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  (r as { origin: string }).origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return r;
}

const DATA = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
const expectObj = { version: '', size: DATA.length };
/** Every kind of credential header a locator or API call may carry. */
const CREDENTIALS = {
  authorization: 'Bearer secret-jwt',
  'x-auth-token': 'secret-wordbee-token',
  'x-auth-accountid': 'acme',
  'x-api-key': 'secret-api-key',
  cookie: 'session=secret',
  'x-session-token': 'secret-session',
};

/** Serves DATA's requested range (206), as storage does. */
const serveRange: Handler = (req, res) => {
  const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
  const [start, end] = m ? [Number(m[1]), Number(m[2]) + 1] : [0, DATA.length];
  res.writeHead(m ? 206 : 200, { 'content-length': String(end - start), ...(m ? { 'content-range': `bytes ${start}-${end - 1}/${DATA.length}` } : {}) });
  res.end(DATA.subarray(start, end));
};
const redirectTo = (location: string, status = 302): Handler => (_req, res) => void res.writeHead(status, { location, 'content-length': '0' }).end();
const credentialNames = (h: IncomingHttpHeaders) => Object.keys(h).filter((k) => CREDENTIAL_HEADERS.includes(k) || k in CREDENTIALS);

let home: Recorder;
let away: Recorder;
let transport: HttpTransport;

beforeAll(async () => {
  home = await recorder();
  away = await recorder();
  transport = new HttpTransport({ requestTimeoutMs: 500, deadlineMs: 1_000 });
});
afterEach(() => {
  home.seen.splice(0);
  away.seen.splice(0);
  home.handle = away.handle = (_req, res) => void res.writeHead(404).end();
});
afterAll(async () => {
  await transport.close();
  await home.close();
  await away.close();
});

describe('read path: a locator\'s headers stay with its origin', () => {
  for (const status of [301, 302, 303, 307, 308]) {
    it(`a ${status} to another origin is followed bare (a presigned target needs none), and the bytes are right`, async () => {
      home.handle = redirectTo(`${away.origin}/signed/obj?sig=x`, status);
      away.handle = serveRange;
      const got = await transport.readRange({ url: `${home.origin}/download/obj`, headers: CREDENTIALS, expiresAt: Infinity }, { start: 3, end: 20 }, expectObj);
      expect(got.equals(DATA.subarray(3, 20))).toBe(true);
      expect(credentialNames(home.seen[0]!.headers).sort()).toEqual(Object.keys(CREDENTIALS).sort());
      expect(away.seen).toHaveLength(1);
      expect(credentialNames(away.seen[0]!.headers)).toEqual([]);
      expect(away.seen[0]!.headers.range).toBe('bytes=3-19'); // the range is not a credential
    });
  }

  it('a redirect within the origin keeps them; once away they never come back, even to the first origin', async () => {
    let hops = 0;
    home.handle = (req, res) => {
      hops++;
      if (req.url === '/start') return redirectTo('/moved')(req, res);
      if (req.url === '/moved') return redirectTo(`${away.origin}/bounce`)(req, res);
      return serveRange(req, res);
    };
    away.handle = redirectTo(`${home.origin}/back`);
    const got = await transport.readRange({ url: `${home.origin}/start`, headers: CREDENTIALS, expiresAt: Infinity }, { start: 0, end: 5 }, expectObj);
    expect(got.equals(DATA.subarray(0, 5))).toBe(true);
    expect(hops).toBe(3);
    expect(home.seen.map((s) => [s.path, credentialNames(s.headers).length])).toEqual([['/start', 6], ['/moved', 6], ['/back', 0]]);
    expect(credentialNames(away.seen[0]!.headers)).toEqual([]);
  });

  it('a whole-object download follows the same rule', async () => {
    home.handle = redirectTo(`${away.origin}/whole`);
    away.handle = serveRange;
    const chunks: Buffer[] = [];
    await transport.streamWhole({ url: `${home.origin}/download`, headers: CREDENTIALS, expiresAt: Infinity }, expectObj, (c) => chunks.push(c));
    expect(Buffer.concat(chunks).equals(DATA)).toBe(true);
    expect(credentialNames(away.seen[0]!.headers)).toEqual([]);
  });

  it('a redirect to another scheme, without a Location, or past the hop limit is an EIO that names no query string', async () => {
    home.handle = redirectTo('file:///etc/passwd');
    const e1 = await transport.readRange({ url: `${home.origin}/a?sig=secret`, expiresAt: Infinity }, { start: 0, end: 5 }, expectObj).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(FsError);
    expect((e1 as FsError).message).toMatch(/file: refused/);
    expect((e1 as FsError).message).not.toMatch(/secret/);
    home.handle = (_req, res) => void res.writeHead(302).end();
    expect(((await transport.readRange({ url: `${home.origin}/b`, expiresAt: Infinity }, { start: 0, end: 5 }, expectObj).catch((e: unknown) => e)) as Error).message).toMatch(/without a Location/);
    home.handle = redirectTo('/loop');
    expect(((await transport.readRange({ url: `${home.origin}/loop`, expiresAt: Infinity }, { start: 0, end: 5 }, expectObj).catch((e: unknown) => e)) as Error).message).toMatch(/more than 5 redirects/);
  });

  it('a body trickled a byte at a time fails on the deadline, though no pause trips the stall timeout', async () => {
    home.handle = async (_req, res) => {
      res.writeHead(206, { 'content-length': '20', 'content-range': `bytes 0-19/${DATA.length}` });
      for (let i = 0; i < 20 && !res.destroyed; i++) {
        res.write(DATA.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, 100));
      }
      res.end();
    };
    const e = await transport.readRange({ url: `${home.origin}/slow`, expiresAt: Infinity }, { start: 0, end: 20 }, expectObj).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransientError);
    expect((e as Error).message).toMatch(/within 1000 ms \(retry\.maxTime\)/);
  });
});

describe('API client: credentials only to the configured origin', () => {
  const client = () =>
    new ApiClient({
      baseUrl: `${home.origin}/api`,
      what: 'test source',
      auth: { headers: async () => ({ 'x-auth-token': 'secret-token', authorization: 'Bearer secret' }), invalidate: () => undefined },
      defaultHeaders: { 'x-api-key': 'secret-key' },
      bounds: { stallMs: 500, deadlineMs: 1_000, maxApiBodyBytes: 1024 },
    });

  it('an absolute URL at another origin (a nextLink, a download link) is refused, and that origin hears nothing', async () => {
    const c = client();
    try {
      const e = await c.json({ path: `${away.origin}/api/assets?page=2` }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(FsError);
      expect((e as Error).message).toMatch(/another origin/);
      expect(away.seen).toEqual([]);
    } finally {
      await c.close();
    }
  });

  it('a call made without credentials (a presigned upload URL) goes there bare: no token, no default headers', async () => {
    away.handle = (_req, res) => void res.writeHead(200, { etag: '"e"' }).end();
    const c = client();
    try {
      expect((await c.send({ method: 'PUT', path: `${away.origin}/bucket/part?X-Amz-Signature=s`, body: Buffer.from('x'), auth: false })).status).toBe(200);
      expect(credentialNames(away.seen[0]!.headers)).toEqual([]);
    } finally {
      await c.close();
    }
  });

  for (const status of [301, 302, 307, 308]) {
    it(`a ${status} is not followed (within the origin or not); the error names where it pointed`, async () => {
      home.handle = redirectTo(`${away.origin}/api/elsewhere?sig=secret`, status);
      const c = client();
      try {
        const e = await c.json({ path: 'assets' }).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(FsError);
        expect((e as Error).message).toContain(`redirect to ${away.origin}/api/elsewhere?… not followed`);
        expect(away.seen).toEqual([]);
        home.handle = (_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        expect(await c.json({ path: 'assets' })).toEqual({ ok: true });
        expect(home.seen.map((s) => s.path)).toEqual(['/api/assets', '/api/assets']); // the base URL did not move
      } finally {
        await c.close();
      }
    });
  }

  it('answers past retry.maxApiBody are refused: by their declared length, or as they stream', async () => {
    const c = client();
    try {
      home.handle = (_req, res) => void res.writeHead(200, { 'content-length': '4096' }).end(Buffer.alloc(4096, 0x20));
      expect(((await c.json({ path: 'big' }).catch((x: unknown) => x)) as Error).message).toMatch(/larger than 1024 bytes \(retry\.maxApiBody\)/);
      home.handle = (_req, res) => {
        res.writeHead(200);
        for (let i = 0; i < 8; i++) res.write(Buffer.alloc(512, 0x20));
        res.end();
      };
      expect(((await c.json({ path: 'chunked' }).catch((x: unknown) => x)) as Error).message).toMatch(/larger than 1024 bytes/);
    } finally {
      await c.close();
    }
  });

  it('an answer trickled a byte at a time fails on the deadline', async () => {
    home.handle = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      for (let i = 0; i < 40 && !res.destroyed; i++) {
        res.write(' ');
        await new Promise((r) => setTimeout(r, 100));
      }
      res.end('{}');
    };
    const c = client();
    try {
      const e = await c.json({ path: 'slow' }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(TransientError);
      expect((e as Error).message).toMatch(/retry\.maxTime/);
    } finally {
      await c.close();
    }
  });
});
