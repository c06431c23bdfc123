/**
 * The daemon's control endpoint: HTTP over a unix socket in the cache dir (0600, like the cache),
 * so only the daemon's user can ask. `assetfs status` (and later pin/retry) talk to it.
 */
import { createServer, request, type Server } from 'node:http';
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';

export type ControlHandler = (body: unknown) => Promise<unknown>;

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
          (out) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out)),
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
 * Refuses a cache dir another running daemon uses: two daemons would share its disk tier's slab, its
 * upload journal and staging files, and the second would take over the first's control socket.
 * Something that accepts the connection but does not answer within `timeoutMs` is a daemon too (a
 * busy one); a socket file nobody listens on is a crashed daemon's and is free.
 */
export async function assertCacheDirFree(cacheDir: string, timeoutMs = 3_000): Promise<void> {
  const path = controlSocketPath(cacheDir);
  const answer = await new Promise<{ mountpoint?: string } | 'silent' | undefined>((resolve) => {
    const req = request({ socketPath: path, method: 'GET', path: '/status', timeout: timeoutMs }, (res) => {
      let raw = '';
      res.on('data', (d: Buffer) => (raw += d.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(raw) as { mountpoint?: string });
        } catch {
          resolve({});
        }
      });
    });
    req.on('timeout', () => {
      req.destroy();
      resolve('silent');
    });
    req.on('error', () => resolve(undefined)); // ENOENT, ECONNREFUSED: nobody there
    req.end();
  });
  if (answer === undefined) return;
  const where = answer !== 'silent' && answer.mountpoint ? ` (mounted at ${answer.mountpoint})` : '';
  throw new Error(`another assetfs daemon${where} uses the cache dir ${cacheDir}: give each mount its own cacheDir`);
}

/** Call the running daemon; throws a one-line error when none answers at `path`. */
export async function callControl(path: string, method: 'GET' | 'POST', url: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, method, path: url, headers: { 'content-type': 'application/json' } }, (res) => {
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
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new Error(`no running assetfs daemon answers at ${path}`));
      else reject(e);
    });
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
