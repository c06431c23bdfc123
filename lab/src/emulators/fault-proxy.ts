/**
 * A reverse proxy that tests and the demo put in front of s3rver/Azurite:
 *  - enforces presigned-URL expiry (X-Amz-Date + X-Amz-Expires), which s3rver never checks;
 *  - injects faults on command (5xx/429, 403 "expired", connection resets, short bodies, delays), in-process
 *    or from another process through POST /__faults {kind, n, status?, retryAfterSec?};
 *  - misbehaves as hostile servers do, on command (`misbehave`, in-process): trickles a body, stalls
 *    after the headers, redirects (to its own or another origin), declares a wrong Content-Length or
 *    Content-Range, answers malformed or huge bodies, or rewrites an answer (e.g. a URL in it);
 *  - records every request (method, path, range, status, headers) so tests can count what reached
 *    storage and check which headers did.
 *  - applies the behaviour knobs of listings and download ETags (`knobs`, storage-knobs.ts);
 *  - holds a chosen request (hold()) until the test releases it, or drops it unanswered when its
 *    client goes away first: a daemon SIGKILLed while its request is held never had it served.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';
import { StorageKnobs } from './storage-knobs.js';
import { knobsControl, type EmulatorKnobs } from './common/knobs.js';

export type FaultKind = 'fail' | 'expire' | 'reset' | 'short' | 'slow';

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  /** The query string ('' or '?…'); tests read e.g. partNumber from it. */
  readonly query: string;
  readonly range: string | undefined;
  readonly status: number;
  /** The request's headers as they arrived. */
  readonly headers: IncomingHttpHeaders;
}

/** What a hostile server does instead of answering plainly (misbehave()). */
export type Misbehaviour =
  /** The upstream headers, then the body one byte every `intervalMs`, until the client gives up. */
  | { kind: 'trickle'; intervalMs: number }
  /** The upstream headers, then nothing: the body never comes and never ends. */
  | { kind: 'stall' }
  /** `status` (default 302) with Location `to` + the request's path and query (`to` is an origin or a base URL). */
  | { kind: 'redirect'; to: string; status?: number }
  /** The upstream answer with Content-Length `delta` bytes off; a longer claim is cut off by closing the connection. */
  | { kind: 'length'; delta: number }
  /** A 206 whose Content-Range names bytes `shift` away from those it carries. */
  | { kind: 'range'; shift: number }
  /** `status` (default 200) with this body instead of the upstream answer. */
  | { kind: 'body'; body: string; status?: number; contentType?: string }
  /** A 200 of `bytes` bytes (a JSON or XML document padded with spaces); chunked unless `declared`. */
  | { kind: 'huge'; bytes: number; format: 'json' | 'xml'; declared?: boolean }
  /** The upstream answer's body passed through `edit` (e.g. a URL in it pointed elsewhere). */
  | { kind: 'rewrite'; edit: (body: string) => string };

/** Which requests a misbehaviour (or a hold) applies to. */
export type RequestMatch = (r: { readonly method: string; readonly path: string; readonly query: string }) => boolean;

/** A request held by hold(): `reached` resolves once one matching request is being held. */
export interface Hold {
  readonly reached: Promise<void>;
  /** Forward it (if its client is still there). */
  release(): void;
}

export interface FaultProxy {
  readonly url: string;
  /** Hostile listing pages and download ETags (common/knobs.ts, storage-knobs.ts). */
  readonly knobs: EmulatorKnobs;
  /** Fail the next n requests (matching `opts.method`, when given) with `status`. */
  failNext(n: number, status?: number, opts?: { retryAfterSec?: number; method?: string }): void;
  /** Forget every fault not yet applied. */
  clearFaults(): void;
  /** Hold the next request that `match` accepts (see Hold). */
  hold(match: RequestMatch): Hold;
  expireNext(n: number): void;
  resetNext(n: number): void;
  shortBodyNext(n: number): void;
  /** Hold the next n requests (matching `method`, when given) back `delayMs` before forwarding them. */
  slowNext(n: number, delayMs: number, method?: string): void;
  /** Misbehave on the next `times` (default 1; Infinity: until cleared) requests that `match` (default: all). */
  misbehave(m: Misbehaviour, opts?: { times?: number; match?: RequestMatch }): void;
  /** Forget misbehaviours not yet used up. */
  behave(): void;
  /** Requests misbehaved on so far. */
  misbehaved(): number;
  requests(): readonly ProxiedRequest[];
  clearLog(): void;
  close(): Promise<void>;
}

interface Pending {
  kind: FaultKind;
  status: number;
  retryAfterSec?: number;
  delayMs?: number;
  method?: string;
}

const EXPIRED_XML = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>';

/** True when a presigned S3 URL's X-Amz-Date + X-Amz-Expires lies in the past. */
export function presignExpired(query: URLSearchParams, now = Date.now()): boolean {
  const date = query.get('X-Amz-Date');
  const expires = Number(query.get('X-Amz-Expires'));
  if (!date || !Number.isFinite(expires)) return false;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
  if (!m) return true;
  const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return now > signedAt + expires * 1000;
}

export async function startFaultProxy(targetBaseUrl: string, opts: { enforcePresignExpiry?: boolean } = {}): Promise<FaultProxy> {
  const target = new URL(targetBaseUrl);
  const agent = new Agent({ connections: 64, keepAliveTimeout: 10_000 });
  const queue: Pending[] = [];
  const log: ProxiedRequest[] = [];
  const storageKnobs = new StorageKnobs();
  const holds: { match: RequestMatch; arrived(): void; released: Promise<void>; release(): void }[] = [];
  const add = (kind: FaultKind, n: number, status = 500, retryAfterSec?: number, method?: string) => {
    for (let i = 0; i < n; i++) queue.push({ kind, status, retryAfterSec, method });
  };

  const hostile: Array<{ m: Misbehaviour; left: number; match?: RequestMatch }> = [];
  let misbehaved = 0;
  const record = (req: IncomingMessage, path: string, status: number) =>
    log.push({ method: req.method ?? 'GET', path, query: new URL(req.url ?? '/', 'http://proxy').search, range: req.headers.range, status, headers: { ...req.headers } });
  /** The misbehaviour for this request, if any (used up as it is taken). */
  const takeMisbehaviour = (req: IncomingMessage, url: URL): Misbehaviour | undefined => {
    const at = hostile.findIndex((h) => !h.match || h.match({ method: req.method ?? 'GET', path: url.pathname, query: url.search }));
    if (at < 0) return undefined;
    const h = hostile[at]!;
    if (--h.left <= 0) hostile.splice(at, 1);
    misbehaved++;
    return h.m;
  };

  async function control(req: IncomingMessage, res: ServerResponse) {
    let raw = '';
    for await (const c of req) raw += c;
    const b = JSON.parse(raw || '{}') as { kind?: FaultKind; n?: number; status?: number; retryAfterSec?: number };
    if (!b.kind || !['fail', 'expire', 'reset', 'short'].includes(b.kind)) {
      res.writeHead(400).end('kind must be fail|expire|reset|short');
      return;
    }
    add(b.kind, b.n ?? 1, b.status ?? (b.kind === 'expire' ? 403 : 500), b.retryAfterSec);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ queued: queue.length }));
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://proxy');
    if (url.pathname.startsWith('/__faults')) return control(req, res);
    if (url.pathname === '/__knobs') return knobsControl(storageKnobs.knobs, req, res);
    const path = url.pathname;
    const held = holds.findIndex((h) => h.match({ method: req.method ?? 'GET', path, query: url.search }));
    if (held >= 0) {
      const [h] = holds.splice(held, 1);
      h!.arrived();
      const gone = new Promise<'gone'>((r) => req.socket.once('close', () => r('gone')));
      if ((await Promise.race([h!.released, gone])) === 'gone' || req.socket.destroyed) {
        record(req, path, 0);
        return;
      }
    }
    const bad = takeMisbehaviour(req, url);
    if (bad && (bad.kind === 'redirect' || bad.kind === 'body' || bad.kind === 'huge')) {
      record(req, path, bad.kind === 'redirect' ? (bad.status ?? 302) : bad.kind === 'body' ? (bad.status ?? 200) : 200);
      req.resume();
      return answerWithout(bad, req, res);
    }
    const at = queue.findIndex((f) => !f.method || f.method === req.method);
    const fault = at < 0 ? undefined : queue.splice(at, 1)[0];
    if (fault?.kind === 'slow') await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000));
    if (fault?.kind === 'reset') {
      record(req, path, 0);
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'expire' || (opts.enforcePresignExpiry && presignExpired(url.searchParams))) {
      if (fault && fault.kind !== 'expire' && fault.kind !== 'slow') queue.unshift(fault);
      record(req, path, 403);
      res.writeHead(403, { 'content-type': 'application/xml' }).end(EXPIRED_XML);
      req.resume();
      return;
    }
    if (fault?.kind === 'fail') {
      record(req, path, fault.status);
      const headers: Record<string, string> = { 'content-type': 'application/xml' };
      if (fault.retryAfterSec !== undefined) headers['retry-after'] = String(fault.retryAfterSec);
      res.writeHead(fault.status, headers).end('<Error><Code>InternalError</Code><Message>injected fault</Message></Error>');
      req.resume();
      return;
    }
    // Hop-by-hop headers stay here: Node already answered `Expect: 100-continue` (the AWS SDK sends it
    // for large parts), and undici refuses to forward it.
    const { expect: _expect, connection: _connection, 'keep-alive': _keepAlive, 'transfer-encoding': _te, ...rest } = req.headers;
    const headers = { ...rest, host: target.host };
    const forward = storageKnobs.forward(req, res, url);
    if (forward === 'answered') return void record(req, path, 200);
    const upstream = await request(new URL(forward.pathname + forward.search, target), {
      method: (req.method ?? 'GET') as 'GET',
      headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
      dispatcher: agent,
    });
    record(req, path, upstream.statusCode);
    const outHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upstream.headers)) if (v !== undefined && k !== 'connection' && k !== 'keep-alive') outHeaders[k] = v;
    const etag = storageKnobs.etag(req, url, upstream.statusCode, typeof outHeaders.etag === 'string' ? outHeaders.etag : undefined);
    if (etag === undefined) delete outHeaders.etag;
    else outHeaders.etag = etag;
    if (bad) return mangle(bad, upstream.statusCode, outHeaders, upstream.body, res);
    res.writeHead(upstream.statusCode, outHeaders);
    if (fault?.kind === 'short') {
      // Send part of the body, then cut the connection: the client sees a short body.
      const first = await upstream.body[Symbol.asyncIterator]().next();
      const chunk = first.value as Buffer | undefined;
      if (chunk) res.write(chunk.subarray(0, Math.max(1, Math.floor(chunk.length / 2))));
      upstream.body.destroy();
      res.socket?.destroy();
      return;
    }
    await pipeline(upstream.body, res);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502).end('proxy error');
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    knobs: storageKnobs.knobs,
    failNext: (n, status = 500, o) => add('fail', n, status, o?.retryAfterSec, o?.method),
    clearFaults: () => void queue.splice(0),
    hold: (match) => {
      let arrived!: () => void;
      let release!: () => void;
      const reached = new Promise<void>((r) => (arrived = r));
      const released = new Promise<void>((r) => (release = r));
      holds.push({ match, arrived, released, release });
      return { reached, release };
    },
    expireNext: (n) => add('expire', n, 403),
    resetNext: (n) => add('reset', n),
    shortBodyNext: (n) => add('short', n),
    slowNext: (n, delayMs, method) => {
      for (let i = 0; i < n; i++) queue.push({ kind: 'slow', status: 200, delayMs, method });
    },
    misbehave: (m, o) => void hostile.push({ m, left: o?.times ?? 1, match: o?.match }),
    behave: () => void hostile.splice(0),
    misbehaved: () => misbehaved,
    requests: () => [...log],
    clearLog: () => void log.splice(0),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await agent.close();
    },
  };
}

/** A hostile answer that needs no upstream: a redirect, a replaced body, a huge body. */
async function answerWithout(m: Misbehaviour, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (m.kind === 'redirect') {
    const to = new URL(m.to);
    const base = to.pathname === '/' ? to.origin : to.href.replace(/\/+$/, '');
    res.writeHead(m.status ?? 302, { location: `${base}${req.url ?? '/'}`, 'content-length': '0' }).end();
    return;
  }
  if (m.kind === 'body') {
    res.writeHead(m.status ?? 200, { 'content-type': m.contentType ?? 'application/json', 'content-length': String(Buffer.byteLength(m.body)) }).end(m.body);
    return;
  }
  if (m.kind !== 'huge') return;
  const [open, close] = m.format === 'json' ? ['{"value":[', ']}'] : ['<?xml version="1.0" encoding="utf-8"?><EnumerationResults>', '</EnumerationResults>'];
  const headers: Record<string, string> = { 'content-type': m.format === 'json' ? 'application/json' : 'application/xml' };
  if (m.declared) headers['content-length'] = String(m.bytes);
  res.writeHead(200, headers);
  const pad = Buffer.alloc(64 * 1024, 0x20);
  let left = m.bytes - open.length - close.length;
  res.write(open);
  while (left > 0 && !res.destroyed) {
    const chunk = left >= pad.length ? pad : pad.subarray(0, left);
    left -= chunk.length;
    if (!res.write(chunk)) await drained(res);
  }
  if (!res.destroyed) res.end(close);
}

/** Resolves when `res` can take more, or has closed. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** The upstream answer, mangled as `m` says. */
async function mangle(m: Misbehaviour, status: number, headers: Record<string, string | string[]>, body: AsyncIterable<Buffer> & { destroy(): void; on(e: 'error', f: () => void): unknown }, res: ServerResponse): Promise<void> {
  if (m.kind === 'stall' || m.kind === 'trickle') {
    body.on('error', () => undefined);
    res.writeHead(status, headers);
    res.flushHeaders();
    if (m.kind === 'stall') {
      body.destroy();
      return; // the socket stays open until the client gives up (or the proxy closes)
    }
    for await (const chunk of body) {
      for (let i = 0; i < chunk.length && !res.destroyed; i++) {
        res.write(chunk.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, m.intervalMs));
      }
      if (res.destroyed) break;
    }
    body.destroy();
    if (!res.destroyed) res.end();
    return;
  }
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  let data = Buffer.concat(chunks);
  if (m.kind === 'rewrite') data = Buffer.from(m.edit(data.toString('utf8')));
  if (m.kind === 'range') {
    const cr = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(headers['content-range'] ?? ''));
    if (cr) headers['content-range'] = `bytes ${Number(cr[1]) + m.shift}-${Number(cr[2]) + m.shift}/${cr[3]}`;
  }
  if (m.kind === 'length') {
    const claimed = Math.max(0, data.length + m.delta);
    res.writeHead(status, { ...headers, 'content-length': String(claimed) });
    res.write(data.subarray(0, Math.min(claimed, data.length)));
    if (claimed > data.length) res.socket?.destroy(); // the claimed rest never comes
    else res.end();
    return;
  }
  delete headers['transfer-encoding'];
  res.writeHead(status, { ...headers, 'content-length': String(data.length) }).end(data);
}
