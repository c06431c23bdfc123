/**
 * The daemon's control endpoint: HTTP over a unix socket in the cache dir (0600, like the cache),
 * so only the daemon's user can ask. `assetfs status` (and later pin/retry) talk to it.
 */
import { createServer, request, type Server } from 'node:http';
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';

export type ControlHandler = (body: unknown) => Promise<unknown>;

/** A handler's answer sent as it is, with its content type, instead of as JSON (GET /metrics). */
export class TextReply {
  constructor(
    readonly contentType: string,
    readonly body: string,
  ) {}
}

export function controlSocketPath(cacheDir: string): string {
  return join(cacheDir, 'control.sock');
}

export async function startControlServer(path: string, routes: Record<string, ControlHandler>): Promise<{ close(): Promise<void> }> {
  await rm(path, { force: true });
  const server: Server = createServer((req, res) => {
    const handler = routes[`${req.method} ${req.url}`];
    if (!handler) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'unknown command' }));
      return;
    }
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString()));
    req.on('end', () => {
      Promise.resolve()
        .then(() => handler(raw ? JSON.parse(raw) : undefined))
        .then(
          (out) =>
            out instanceof TextReply
              ? res.writeHead(200, { 'content-type': out.contentType }).end(out.body)
              : res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out)),
          (e: unknown) => res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String((e as Error).message ?? e) })),
        );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
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
