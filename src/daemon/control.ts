/**
 * The daemon's control endpoint: HTTP over a unix socket in the cache dir. `assetfs status`, `retry`,
 * `pin`, `unpin`, `refresh`, `cache` and `locate` talk to it; `GET /metrics` is the Prometheus scrape.
 *
 * Who may connect: root or the daemon's own user, enforced by the kernel at connect(), which needs
 * write permission on the socket file. The socket is 0600 and owned by the daemon from the moment
 * any other user could reach it: it is bound inside a fresh 0700 directory, chmod-ed there, and only
 * then renamed into place (listenPrivately). Node has no API for SO_PEERCRED, and the packages that
 * add one are unmaintained native addons; the file mode is the same rule, checked by the kernel.
 *
 * What it accepts: bodies up to MAX_BODY_BYTES of JSON, requests within REQUEST_TIMEOUT_MS. Error
 * replies are one redacted line (util/redact.ts): no stack, no signed URL, no token.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmod, mkdtemp, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { redactText } from '../util/redact.js';

export type ControlHandler = (body: unknown) => Promise<unknown>;

/** A handler's answer sent as it is, with its content type, instead of as JSON (GET /metrics). */
export class TextReply {
  constructor(
    readonly contentType: string,
    readonly body: string,
  ) {}
}

/** Largest request body: the commands take a path at most. */
export const MAX_BODY_BYTES = 64 * 1024;
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_ERROR_CHARS = 500;

export function controlSocketPath(cacheDir: string): string {
  return join(cacheDir, 'control.sock');
}

/** One line of an error for a reply: first line, redacted, bounded. */
export function errorReply(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const line = redactText(text.split('\n')[0] ?? '');
  return line.length > MAX_ERROR_CHARS ? `${line.slice(0, MAX_ERROR_CHARS)}…` : line;
}

/**
 * `server` listening at `path`, with mode 0600, and reachable by no one else at any moment: bound in a
 * new 0700 directory beside `path` (mkdtemp), chmod-ed there, then renamed over `path`.
 */
export async function listenPrivately(server: Server, path: string): Promise<void> {
  const dir = await mkdtemp(join(dirname(path), '.control-'));
  try {
    const staged = join(dir, 'sock');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(staged, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(staged, 0o600);
    await rename(staged, path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  if (body instanceof TextReply) {
    res.writeHead(status, { 'content-type': body.contentType }).end(body.body);
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', ...(status === 413 ? { connection: 'close' } : {}) }).end(JSON.stringify(body));
}

function serve(routes: Record<string, ControlHandler>, req: IncomingMessage, res: ServerResponse): void {
  const handler = routes[`${req.method} ${req.url}`];
  if (!handler) {
    req.resume();
    return reply(res, 404, { error: 'unknown command' });
  }
  const tooLarge = () => reply(res, 413, { error: `request body over ${MAX_BODY_BYTES} bytes` });
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
    req.resume();
    return tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (d: Buffer) => {
    size += d.length;
    if (size > MAX_BODY_BYTES) {
      chunks.length = 0;
      return tooLarge();
    }
    chunks.push(d);
  });
  req.on('end', () => {
    if (size > MAX_BODY_BYTES) return;
    const raw = Buffer.concat(chunks).toString();
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return reply(res, 400, { error: 'the request body is not JSON' });
    }
    Promise.resolve()
      .then(() => handler(body))
      .then(
        (out) => reply(res, 200, out),
        (e: unknown) => reply(res, 500, { error: errorReply(e) }),
      );
  });
}

export async function startControlServer(path: string, routes: Record<string, ControlHandler>): Promise<{ close(): Promise<void> }> {
  const server: Server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS }, (req, res) => serve(routes, req, res));
  await listenPrivately(server, path);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => rm(path, { force: true })),
  };
}

/**
 * The mount point of the daemon answering on the control socket of `cacheDir`, if one answers within
 * `timeoutMs`: named in the message that refuses a second daemon on that dir (cache-dir-lock.ts).
 */
export async function mountpointOfDaemonAt(cacheDir: string, timeoutMs = 1_000): Promise<string | undefined> {
  try {
    const status = (await callControl(controlSocketPath(cacheDir), 'GET', '/status', undefined, timeoutMs)) as { mountpoint?: unknown };
    return typeof status.mountpoint === 'string' ? status.mountpoint : undefined;
  } catch {
    return undefined;
  }
}

/** Call the running daemon; throws a one-line error when none answers at `path`. */
export async function callControl(path: string, method: 'GET' | 'POST', url: string, body?: unknown, timeoutMs?: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, method, path: url, headers: { 'content-type': 'application/json' }, timeout: timeoutMs }, (res) => {
      let raw = '';
      res.on('data', (d: Buffer) => (raw += d.toString()));
      res.on('end', () => {
        try {
          const parsed = JSON.parse(raw) as { error?: string };
          if (res.statusCode !== 200) reject(new Error(parsed.error ?? `daemon answered ${res.statusCode}`));
          else resolve(parsed);
        } catch {
          reject(new Error(`the daemon's answer was not JSON (status ${res.statusCode})`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`the daemon at ${path} did not answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new Error(`no running assetfs daemon answers at ${path}`));
      else reject(e);
    });
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
