import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CacheDirBusyError, lockCacheDir } from '../../src/daemon/cache-dir-lock.js';

const MODULE = new URL('../../dist/src/daemon/cache-dir-lock.js', import.meta.url).href;

/** A process that tries the lock, says `locked` or `busy` on stdout, and holds what it got until killed. */
function contender(dir: string): { child: ChildProcess; answer: Promise<string> } {
  const script = `const { lockCacheDir } = await import(${JSON.stringify(MODULE)});
    try { lockCacheDir(${JSON.stringify(dir)}); process.stdout.write('locked\\n'); } catch (e) { process.stdout.write(e.constructor.name === 'CacheDirBusyError' ? 'busy\\n' : 'error ' + e.message + '\\n'); }
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const answer = new Promise<string>((resolve) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', () => resolve(out.trim() || 'exited'));
  });
  return { child, answer };
}

const killed = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : (c.once('exit', () => r()), c.kill('SIGKILL'))));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-lock-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('cache dir lock', () => {
  it('is exclusive within a process, private (0600), and free again once released', async () => {
    const a = lockCacheDir(dir);
    expect(() => lockCacheDir(dir)).toThrow(CacheDirBusyError);
    expect((await stat(join(dir, 'daemon.lock'))).mode & 0o777).toBe(0o600);
    a.release();
    a.release(); // idempotent
    lockCacheDir(dir).release();
  });

  it('refuses while another process holds it, and a killed holder leaves no stale lock', async () => {
    const holder = contender(dir);
    try {
      expect(await holder.answer).toBe('locked');
      expect(() => lockCacheDir(dir)).toThrow(/another assetfs daemon uses the cache dir/);
    } finally {
      await killed(holder.child);
    }
    lockCacheDir(dir).release(); // SIGKILL dropped the lock with the process
  });

  it('of two daemons starting at the same instant, exactly one gets it', async () => {
    for (let round = 0; round < 3; round++) {
      const both = [contender(dir), contender(dir)];
      try {
        const answers = (await Promise.all(both.map((c) => c.answer))).sort();
        expect(answers).toEqual(['busy', 'locked']);
      } finally {
        await Promise.all(both.map((c) => killed(c.child)));
      }
    }
  });
});
