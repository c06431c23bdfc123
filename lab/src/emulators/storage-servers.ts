/**
 * Starts the real storage servers (s3rver, Azurite) as child processes on loopback, for tests,
 * benchmarks and `assetfs demo`. Children are killed when the returned handle stops, and (best effort)
 * when this process exits. Importing this module changes nothing: the exit hook is installed by each
 * start, for its child, and removed when that child exits; s3rver's fixes are applied inside its own
 * process (S3RVER_PRELUDE).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const S3RVER_KEY = 'S3RVER';

/**
 * A config `sources` entry for `bucket` on s3rver, or on a proxy in front of it, with s3rver's
 * credentials; named 's3' unless `extra` says otherwise.
 */
export function s3rverSource(endpoint: string, bucket: string, extra: Record<string, unknown> = {}) {
  return { name: 's3', type: 's3' as const, endpoint, bucket, accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY, ...extra };
}

export interface StorageServer {
  /** Base URL: `http://127.0.0.1:PORT` for s3rver, `http://127.0.0.1:PORT/devstoreaccount1` for Azurite. */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Kill and start again on the same port and data dir (e.g. to shed Azurite's leaked file handles). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: string | undefined;
  child.once('exit', (code, sig) => (exited = `${what} exited early (code ${code}, signal ${sig})`));
  for (;;) {
    if (exited) throw new Error(exited);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    child.kill('SIGTERM');
  });
}

async function startChild(
  what: string,
  args: string[],
  port: number,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  // A process that exits without stopping its servers does not leave them running.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.off('exit', killOnExit));
  try {
    await waitForPort(port, child, what);
  } catch (e) {
    await stopChild(child);
    throw new Error(`${(e as Error).message}${stderr ? `: ${stderr.trim()}` : ''}`);
  }
  return child;
}

async function makeServer(
  what: string,
  opts: { port?: number; dir?: string },
  args: (port: number, dir: string) => string[],
  url: (port: number) => string,
): Promise<StorageServer> {
  const port = opts.port ?? (await freePort());
  const ownDir = !opts.dir;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), `assetfs-${what}-`)));
  let child = await startChild(what, args(port, dir), port);
  return {
    url: url(port),
    port,
    dir,
    async restart() {
      await stopChild(child);
      child = await startChild(what, args(port, dir), port);
    },
    async stop() {
      await stopChild(child);
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * s3rver 3.7 has two listing bugs that real S3 does not. Both are fixed where the server is started,
 * in the s3rver child process only; nothing in the process importing this module is patched:
 *  - its continuation tokens use DES, which Node 20's OpenSSL 3 refuses (every second page → 500):
 *    the child runs with `--openssl-legacy-provider`;
 *  - with a delimiter it prunes folders nested two levels below the prefix before seeing any key in
 *    them, so `a/b/c.mp4` never yields the common prefix `a/`: this prelude, run before s3rver's bin,
 *    replaces `walk` in s3rver's own lib/utils with a walk without the pruning filter.
 */
const S3RVER_PRELUDE = `
const { createRequire } = require('node:module');
const bin = process.argv[1];
const r = createRequire(bin);
const utils = r('../lib/utils');
const walk = utils.walk;
utils.walk = (dir) => walk(dir);
process.argv = [process.argv[0], bin, ...process.argv.slice(2)];
r(bin);
`;

/** s3rver with the given buckets; credentials S3RVER/S3RVER, path-style. */
export function startS3rver(opts: { port?: number; dir?: string; buckets?: string[] } = {}): Promise<StorageServer> {
  const bin = join(dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js');
  return makeServer(
    's3rver',
    opts,
    (port, dir) => ['--openssl-legacy-provider', '-e', S3RVER_PRELUDE, bin, '-d', dir, '-a', '127.0.0.1', '-p', String(port), '--silent', ...(opts.buckets ?? []).flatMap((b) => ['--configure-bucket', b])],
    (port) => `http://127.0.0.1:${port}`,
  );
}

/** Azurite's blob service; account devstoreaccount1 with its well-known key. */
export function startAzurite(opts: { port?: number; dir?: string } = {}): Promise<StorageServer> {
  const bin = join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'blob', 'main.js');
  return makeServer(
    'azurite',
    opts,
    (port, dir) => [bin, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--location', dir, '--silent', '--skipApiVersionCheck', '--disableTelemetry', '--loose'],
    (port) => `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`,
  );
}

export function azuriteConnectionString(server: StorageServer): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${server.url};`;
}
