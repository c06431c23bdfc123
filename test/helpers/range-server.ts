/**
 * A real loopback node:http (or node:https) server for read-path tests: serves named buffers with
 * Range / 206 / Content-Range / ETag like S3 and Azure do, records every request with its range, counts
 * the connections it accepted, and can be told to misbehave for the next N requests of an object (5xx,
 * 429 + Retry-After, 403, short body, reset, stalled body or head, a trickled body, a dropped
 * connection, chunked framing, another ETag, Range ignored). Optionally it checks a `sig` query token that tests can
 * revoke, so that "the URL expired" is real server behaviour rather than a stub.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Fault =
  /** Any status, e.g. 500, 503, 403 (expired), 429 with `retryAfter` seconds. */
  | { kind: 'status'; status: number; retryAfter?: string }
  /** A 206 with the right Content-Range but only half the bytes (declared so, or chunked when `declared` is false). */
  | { kind: 'short'; declared?: boolean }
  /** Headers and half the body, then the socket is destroyed. */
  | { kind: 'reset' }
  /** Valid headers (a 206 by default, with Content-Length), then no body until the client gives up. */
  | { kind: 'stall'; status?: number }
  /** No answer at all until the client gives up (not even a status line). */
  | { kind: 'mute' }
  /** The connection is closed without an answer (what a request meets on a connection the server closed while idle). */
  | { kind: 'drop' }
  /** The right 206 and bytes, framed with Transfer-Encoding: chunked instead of a Content-Length. */
  | { kind: 'chunked' }
  /** Valid headers, then the body one byte every `intervalMs` (never a pause long enough for a stall timeout). */
  | { kind: 'trickle'; intervalMs: number }
  /** The right bytes under another ETag (the object changed between listing and read). */
  | { kind: 'etag'; etag: string }
  /** 200 with the whole object, as servers that do not support Range answer. */
  | { kind: 'ignore-range' }
  /** 200 with the whole object (Range ignored), pausing after `after` bytes until `release` settles. */
  | { kind: 'hold'; after: number; release: Promise<void> };

export interface RecordedRequest {
  readonly name: string;
  readonly method: string;
  /** Half-open range asked for, when the request had a Range header. */
  readonly range?: { start: number; end: number };
  readonly status: number;
  readonly fault?: Fault['kind'];
}

interface StoredObject {
  data: Buffer;
  etag: string;
}

export interface RangeServerOptions {
  /** Require `?sig=<token>` from issueToken(); unknown or revoked tokens get 403. */
  tokens?: boolean;
  /** Serve HTTPS with this key and certificate. */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

export interface RangeServer {
  readonly origin: string;
  readonly requests: RecordedRequest[];
  /** Connections accepted so far. */
  readonly connections: number;
  /** Close every connection that is not in the middle of a request (as a server's keep-alive timeout does). */
  closeIdleConnections(): void;
  /** URL of an object, with `sig=token` when given. */
  url(name: string, token?: string): string;
  /** A URL that answers 302 to url(name, token), like a platform's download endpoint. */
  redirectUrl(name: string, token?: string): string;
  /** Store (or replace) an object; returns its quoted ETag. */
  put(name: string, data: Buffer): string;
  etag(name: string): string;
  /** Misbehave for the next `times` requests of `name` (Infinity: until cleared). */
  inject(name: string, fault: Fault, times?: number): void;
  clearFaults(name?: string): void;
  issueToken(): string;
  /** Every token issued so far is refused from now on (the signed URLs "expired"). */
  revokeTokens(): void;
  /** Requests recorded for `name`, in arrival order. */
  requestsFor(name: string): RecordedRequest[];
  resetLog(): void;
  close(): Promise<void>;
}

function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'invalid' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'invalid';
  if (m[1] === '') {
    const n = Number(m[2]);
    return n === 0 ? 'invalid' : { start: Math.max(0, size - n), end: size };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size : Math.min(Number(m[2]) + 1, size);
  return start >= size || end <= start ? 'invalid' : { start, end };
}

const REDIRECT_PREFIX = '/__redirect/';

export async function startRangeServer(opts: RangeServerOptions = {}): Promise<RangeServer> {
  const objects = new Map<string, StoredObject>();
  const faults = new Map<string, Array<{ fault: Fault; remaining: number }>>();
  const requests: RecordedRequest[] = [];
  const valid = new Set<string>();
  let tokenCounter = 0;

  function nextFault(name: string): Fault | undefined {
    const queue = faults.get(name);
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    if (--head.remaining <= 0) queue.shift();
    return head.fault;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.startsWith(REDIRECT_PREFIX)) {
      requests.push({ name: decodeURIComponent(url.pathname.slice(REDIRECT_PREFIX.length)), method: req.method ?? 'GET', status: 302 });
      res.writeHead(302, { location: `/${url.pathname.slice(REDIRECT_PREFIX.length)}${url.search}` }).end();
      return;
    }
    const name = decodeURIComponent(url.pathname.slice(1));
    const obj = objects.get(name);
    const record = (status: number, range?: { start: number; end: number }, fault?: Fault['kind']) =>
      requests.push({ name, method: req.method ?? 'GET', range, status, fault });

    if (opts.tokens && !valid.has(url.searchParams.get('sig') ?? '')) {
      record(403);
      res.writeHead(403, { 'content-type': 'text/plain' }).end('AuthenticationFailed: signature expired');
      return;
    }
    if (!obj) {
      record(404);
      res.writeHead(404).end('BlobNotFound');
      return;
    }
    const size = obj.data.length;
    const parsed = parseRange(req.headers.range, size);
    if (parsed === 'invalid') {
      record(416);
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    const range = parsed ?? { start: 0, end: size };
    const fault = nextFault(name);
    let etag = obj.etag;
    let ranged = parsed !== undefined;

    switch (fault?.kind) {
      case 'status': {
        record(fault.status, parsed, fault.kind);
        const headers: Record<string, string> = { 'content-type': 'text/plain' };
        if (fault.retryAfter !== undefined) headers['retry-after'] = fault.retryAfter;
        res.writeHead(fault.status, headers).end(`injected ${fault.status}`);
        return;
      }
      case 'stall': {
        const status = fault.status ?? 206;
        record(status, parsed, fault.kind);
        const headers: Record<string, string> = { 'content-length': String(range.end - range.start), etag };
        if (status === 206) headers['content-range'] = `bytes ${range.start}-${range.end - 1}/${size}`;
        res.writeHead(status, headers);
        res.flushHeaders();
        return;
      }
      case 'mute':
        record(0, parsed, fault.kind);
        return;
      case 'drop':
        record(0, parsed, fault.kind);
        req.socket.destroy();
        return;
      case 'etag':
        etag = fault.etag;
        break;
      case 'ignore-range':
      case 'hold':
        ranged = false;
        break;
      default:
        break;
    }

    const status = ranged ? 206 : 200;
    const body = ranged ? obj.data.subarray(range.start, range.end) : obj.data;
    record(status, parsed, fault?.kind);
    const headers: Record<string, string> = { etag, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (ranged) headers['content-range'] = `bytes ${range.start}-${range.end - 1}/${size}`;

    if (fault?.kind === 'short') {
      const half = body.subarray(0, Math.floor(body.length / 2));
      if (fault.declared !== false) headers['content-length'] = String(half.length);
      res.writeHead(status, headers).end(half);
      return;
    }
    if (fault?.kind === 'trickle') {
      headers['content-length'] = String(body.length);
      res.writeHead(status, headers);
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed || at >= body.length) return clearInterval(timer);
        res.write(body.subarray(at, ++at));
        if (at === body.length) res.end();
      }, fault.intervalMs);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (fault?.kind === 'chunked') {
      res.writeHead(status, headers); // no Content-Length: node:http frames the body in chunks
      res.write(body.subarray(0, Math.floor(body.length / 3)));
      res.end(body.subarray(Math.floor(body.length / 3)));
      return;
    }
    if (fault?.kind === 'hold') {
      headers['content-length'] = String(body.length);
      res.writeHead(status, headers);
      res.write(body.subarray(0, fault.after));
      await fault.release;
      res.end(body.subarray(fault.after));
      return;
    }
    if (fault?.kind === 'reset') {
      headers['content-length'] = String(body.length);
      res.writeHead(status, headers);
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => req.socket.destroy());
      return;
    }
    headers['content-length'] = String(body.length);
    res.writeHead(status, headers).end(req.method === 'HEAD' ? undefined : body);
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => void handle(req, res).catch(() => res.destroy());
  const server: Server = opts.tls ? createHttpsServer(opts.tls, onRequest) : createServer(onRequest);
  server.keepAliveTimeout = 30_000;
  let connections = 0;
  server.on(opts.tls ? 'secureConnection' : 'connection', () => connections++);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;

  return {
    origin,
    requests,
    get connections() {
      return connections;
    },
    closeIdleConnections: () => server.closeIdleConnections(),
    url: (name, token) => `${origin}/${encodeURIComponent(name)}${token === undefined ? '' : `?sig=${token}`}`,
    redirectUrl: (name, token) => `${origin}${REDIRECT_PREFIX}${encodeURIComponent(name)}${token === undefined ? '' : `?sig=${token}`}`,
    put(name, data) {
      const etag = `"${createHash('md5').update(data).digest('hex')}"`;
      objects.set(name, { data, etag });
      return etag;
    },
    etag(name) {
      const o = objects.get(name);
      if (!o) throw new Error(`no object ${name}`);
      return o.etag;
    },
    inject(name, fault, times = 1) {
      const queue = faults.get(name) ?? [];
      queue.push({ fault, remaining: times });
      faults.set(name, queue);
    },
    clearFaults(name) {
      if (name === undefined) faults.clear();
      else faults.delete(name);
    },
    issueToken() {
      const token = `t${++tokenCounter}-${randomBytes(6).toString('hex')}`;
      valid.add(token);
      return token;
    },
    revokeTokens() {
      valid.clear();
    },
    requestsFor: (name) => requests.filter((r) => r.name === name),
    resetLog() {
      requests.length = 0;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
