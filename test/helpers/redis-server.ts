/**
 * A real redis-server (Debian's package; scripts/setup.sh installs it) for the shared tier's tests,
 * started by the test itself on a unix socket in a fresh temp dir: no port, no persistence, nothing
 * shared with another test. `pause()`/`resume()` SIGSTOP/SIGCONT it (a hung Redis), `down()`/`up()`
 * stop it and start it again on the same socket (a restarted Redis), `cli()` runs redis-cli against it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sh, until } from './mount.js';

export interface RedisServer {
  readonly dir: string;
  /** The socket path: also a valid `shared.redis` address. */
  readonly socket: string;
  readonly pid: () => number;
  cli(args: string): Promise<string>;
  pause(): void;
  resume(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisOptions {
  /** e.g. '2mb'; with policy 'noeviction' a full Redis answers writes with OOM errors. */
  maxmemory?: string;
  policy?: 'allkeys-lru' | 'noeviction';
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'assetfs-redis-'));
  const socket = join(dir, 'redis.sock');
  let child: ChildProcess | undefined;
  const args = [
    '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--maxmemory', opts.maxmemory ?? '512mb', '--maxmemory-policy', opts.policy ?? 'allkeys-lru',
  ];
  const cli = (a: string) => sh(`redis-cli -s ${socket} ${a}`, { timeoutMs: 10_000 });
  const up = async () => {
    const c = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child = c;
    await until(async () => {
      if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}: ${stderr}`);
      return existsSync(socket) && (await cli('ping').catch(() => '')).trim() === 'PONG';
    }, 'redis-server', 15_000, 50);
  };
  const down = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGCONT');
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
    await rm(socket, { force: true });
  };
  try {
    await up();
  } catch (e) {
    await down();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    socket,
    pid: () => child?.pid ?? 0,
    cli,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    down,
    up,
    async stop() {
      await down();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
