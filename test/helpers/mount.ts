/**
 * Runs the real daemon (`node bin/assetfs.js mount`) in a child process and drives its mount from
 * this process with async APIs and child commands only: fuse-native serves on the daemon's main
 * thread, so nothing here may touch the mount synchronously. `stop()` always leaves nothing mounted.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';

const pexec = promisify(execFile);
/** The repository root (this file runs from test/helpers/ under vitest, or dist/test/helpers/ in the bench). */
export const ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('dist')) dir = dirname(dir);
  return dir;
})();
export const BIN = join(ROOT, 'bin', 'assetfs.js');
/** The Node flags of BIN's `#!/usr/bin/env -S node …` line: the daemon runs as it does when started as a command. */
export const NODE_FLAGS: readonly string[] = readFileSync(BIN, 'utf8').split('\n', 1)[0]!.split(/\s+/).slice(3);

export async function isMounted(path: string): Promise<boolean> {
  const mounts = await readFile('/proc/mounts', 'utf8');
  return mounts.split('\n').some((l) => l.split(' ')[1] === path.replace(/ /g, '\\040'));
}

/**
 * Lazily unmount a mount this test made (`fusermount -uz`, or `fusermount3` where only that is
 * installed), without a shell; ignores "not mounted". Never aim it at someone else's mount.
 */
export async function forceUnmount(path: string): Promise<void> {
  for (const bin of ['fusermount', 'fusermount3']) {
    try {
      await pexec(bin, ['-uz', '--', path]);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return;
    }
  }
}

/** Run a shell command (bash -c) and return stdout; throws with stderr on failure. */
export async function sh(cmd: string, opts: { timeoutMs?: number } = {}): Promise<string> {
  const { stdout } = await pexec('bash', ['-o', 'pipefail', '-c', cmd], { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Like sh() but resolves with the exit code and stderr instead of throwing. */
export async function shResult(cmd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await pexec('bash', ['-o', 'pipefail', '-c', cmd], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

export interface MountedDaemon {
  readonly mountpoint: string;
  readonly dir: string;
  readonly child: ChildProcess;
  /** Daemon stderr so far (pino JSON lines). */
  logs(): string;
  /** SIGTERM and wait; then make sure nothing is left mounted. */
  stop(): Promise<number | null>;
  /** SIGKILL, as a crash would. The mount is left stale on purpose. */
  kill(): Promise<void>;
}

/** Polls `cond` every `intervalMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 60_000, intervalMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Start a daemon for `config` (mountpoint and cacheDir are filled in) and wait until it is mounted. */
export async function mountDaemon(config: Record<string, unknown>, opts: { logLevel?: string; env?: Record<string, string>; nodeArgs?: readonly string[] } = {}): Promise<MountedDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'assetfs-fuse-'));
  const mountpoint = join(dir, 'mnt');
  await mkdir(mountpoint);
  const file = join(dir, 'config.json');
  await writeFile(file, JSON.stringify({ cacheDir: join(dir, 'cache'), log: { level: opts.logLevel ?? 'info' }, ...config, mountpoint }));
  const child = spawn(process.execPath, [...NODE_FLAGS, ...(opts.nodeArgs ?? []), BIN, 'mount', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const cleanup = async () => {
    if (await isMounted(mountpoint)) await forceUnmount(mountpoint);
  };
  const handle: MountedDaemon = {
    mountpoint,
    dir,
    child,
    logs: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(t);
      await cleanup();
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      return code;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
  try {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
        return isMounted(mountpoint);
      },
      'the mount',
      60_000,
      100,
    );
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}

/** Part numbers the upload journal under `cacheDir` has confirmed (read-only; [] before it exists). */
export function journaledParts(cacheDir: string): number[] {
  let db: Database.Database;
  try {
    db = new Database(join(cacheDir, 'journal.db'), { readonly: true, fileMustExist: true });
  } catch {
    return [];
  }
  try {
    return (db.prepare('SELECT number FROM parts ORDER BY number').all() as { number: number }[]).map((r) => r.number);
  } finally {
    db.close();
  }
}
