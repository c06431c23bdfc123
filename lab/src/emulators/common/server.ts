/**
 * The small HTTP core every platform emulator shares: a method+path router over node:http on
 * loopback, JSON helpers, a request log, and the fault queue (faults.ts) applied before any route.
 * Emulators are test and demo infrastructure: they favour faithfulness to docs/providers.md over speed.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { FaultQueue, type FaultSpec } from './faults.js';
import { knobsControl, type EmulatorKnobs } from './knobs.js';

export interface Ctx {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Regex groups of the matched route, URI-decoded. */
  readonly params: string[];
  body(): Promise<Buffer>;
  json<T = Record<string, unknown>>(): Promise<T>;
}

export type Route = (ctx: Ctx) => Promise<void> | void;

export interface LoggedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly range: string | undefined;
  status: number;
}

export interface EmulatorServer {
  readonly url: string;
  readonly port: number;
  readonly faults: FaultQueue;
  /** Requests seen so far (the control route excluded). */
  requests(): readonly LoggedRequest[];
  clearLog(): void;
  close(): Promise<void>;
}

export class Router {
  private readonly routes: { method: string; pattern: RegExp; fn: Route }[] = [];

  on(method: string, pattern: RegExp, fn: Route): this {
    this.routes.push({ method: method.toUpperCase(), pattern, fn });
    return this;
  }

  match(method: string, path: string): { fn: Route; params: string[] } | 'method' | undefined {
    let pathMatched = false;
    for (const r of this.routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method && !(r.method === 'GET' && method === 'HEAD')) continue;
      return { fn: r.fn, params: m.slice(1).map((s) => (s === undefined ? '' : safeDecode(s))) };
    }
    return pathMatched ? 'method' : undefined;
  }
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' && headers['content-type'] ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-length': '0', ...headers });
  res.end();
}

async function readBody(req: IncomingMessage, limit = 512 * 1024 * 1024): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new HttpError(413, 'body too large');
    parts.push(c);
  }
  return Buffer.concat(parts);
}

/** Thrown by routes: turned into the platform's error body by the emulator's `errorBody`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export interface StartOptions {
  router: Router;
  /** The platform's error body for a status and message (docs/providers.md, each platform's "Errors"). */
  errorBody(status: number, message: string, extra: Record<string, unknown>): unknown;
  /** Called by an `expire-tokens` fault: the emulator forgets every token it issued. */
  expireTokens?(): void;
  /** The emulator's behaviour knobs (knobs.ts), set from other processes through `/__knobs`. */
  knobs?: EmulatorKnobs;
  port?: number;
}

export async function startEmulatorServer(opts: StartOptions): Promise<EmulatorServer> {
  const log: LoggedRequest[] = [];
  const faults = new FaultQueue({ expireTokens: opts.expireTokens });
  const fail = (res: ServerResponse, status: number, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
    if (res.headersSent) return void res.destroy();
    sendJson(res, status, opts.errorBody(status, message, extra), headers);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://emulator');
    if (url.pathname === '/__faults') return faults.control(req, res);
    if (url.pathname === '/__knobs' && opts.knobs) return knobsControl(opts.knobs, req, res);
    const entry: LoggedRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.search, range: req.headers.range, status: 0 };
    log.push(entry);
    res.once('finish', () => (entry.status = res.statusCode));
    let cached: Promise<Buffer> | undefined;
    const body = () => (cached ??= readBody(req));
    const applied = await faults.apply(req, res, url.pathname);
    if (applied === 'handled') return;
    if (applied) return fail(res, applied.status, applied.message, {}, applied.headers);
    const m = opts.router.match(req.method ?? 'GET', url.pathname);
    if (!m) return fail(res, 404, `no route for ${req.method} ${url.pathname}`);
    if (m === 'method') return fail(res, 405, `${req.method} is not allowed on ${url.pathname}`);
    try {
      await m.fn({
        req, res, url, params: m.params, body,
        json: async <T>() => {
          const raw = (await body()).toString('utf8');
          try {
            return (raw ? JSON.parse(raw) : {}) as T;
          } catch {
            throw new HttpError(400, 'request body is not valid JSON');
          }
        },
      });
    } catch (e) {
      if (e instanceof HttpError) return fail(res, e.status, e.message, e.extra);
      fail(res, 500, e instanceof Error ? e.message : String(e));
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    faults,
    requests: () => [...log],
    clearLog: () => void log.splice(0),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export type { FaultSpec };
