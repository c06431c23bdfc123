/**
 * A reverse proxy that tests and the demo put in front of s3rver/Azurite:
 *  - enforces presigned-URL expiry (X-Amz-Date + X-Amz-Expires), which s3rver never checks;
 *  - injects faults on command (5xx/429, 403 "expired", connection resets, short bodies, delays), in-process
 *    or from another process through POST /__faults {kind, n, status?, retryAfterSec?};
 *  - records every request (method, path, range, status) so tests can count what reached storage;
 *  - holds a chosen request (hold()) until the test releases it, or drops it unanswered when its
 *    client goes away first: a daemon SIGKILLed while its request is held never had it served.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Agent, request } from 'undici';

export type FaultKind = 'fail' | 'expire' | 'reset' | 'short' | 'slow';

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  /** The query string ('' or '?…'); tests read e.g. partNumber from it. */
  readonly query: string;
  readonly range: string | undefined;
  readonly status: number;
}

/** A request held by hold(): `reached` resolves once one matching request is being held. */
export interface Hold {
  readonly reached: Promise<void>;
  /** Forward it (if its client is still there). */
  release(): void;
}

export type RequestMatch = (r: { readonly method: string; readonly path: string; readonly query: string }) => boolean;

export interface FaultProxy {
  readonly url: string;
  /** Fail the next n requests (matching `opts.method`, when given) with `status`. */
  failNext(n: number, status?: number, opts?: { retryAfterSec?: number; method?: string }): void;
  /** Forget every fault not yet applied. */
  clearFaults(): void;
  expireNext(n: number): void;
  resetNext(n: number): void;
  shortBodyNext(n: number): void;
  /** Hold the next n requests (matching `method`, when given) back `delayMs` before forwarding them. */
  slowNext(n: number, delayMs: number, method?: string): void;
  /** Hold the next request that `match` accepts (see Hold). */
  hold(match: RequestMatch): Hold;
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
  const holds: { match: RequestMatch; arrived(): void; released: Promise<void>; release(): void }[] = [];
  const add = (kind: FaultKind, n: number, status = 500, retryAfterSec?: number, method?: string) => {
    for (let i = 0; i < n; i++) queue.push({ kind, status, retryAfterSec, method });
  };

  const record = (req: IncomingMessage, path: string, status: number) =>
    log.push({ method: req.method ?? 'GET', path, query: new URL(req.url ?? '/', 'http://proxy').search, range: req.headers.range, status });

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
    const upstream = await request(new URL(req.url ?? '/', target), {
      method: (req.method ?? 'GET') as 'GET',
      headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req,
      dispatcher: agent,
    });
    record(req, path, upstream.statusCode);
    const outHeaders: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(upstream.headers)) if (v !== undefined && k !== 'connection' && k !== 'keep-alive') outHeaders[k] = v;
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
    failNext: (n, status = 500, o) => add('fail', n, status, o?.retryAfterSec, o?.method),
    clearFaults: () => void queue.splice(0),
    expireNext: (n) => add('expire', n, 403),
    resetNext: (n) => add('reset', n),
    shortBodyNext: (n) => add('short', n),
    slowNext: (n, delayMs, method) => {
      for (let i = 0; i < n; i++) queue.push({ kind: 'slow', status: 200, delayMs, method });
    },
    hold: (match) => {
      let arrived!: () => void;
      let release!: () => void;
      const reached = new Promise<void>((r) => (arrived = r));
      const released = new Promise<void>((r) => (release = r));
      holds.push({ match, arrived, released, release });
      return { reached, release };
    },
    requests: () => [...log],
    clearLog: () => void log.splice(0),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await agent.close();
    },
  };
}
