/** `assetfs demo`: mounts sample media from local servers, and Ctrl-C leaves nothing mounted or running. */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, isMounted, sh } from '../helpers/mount.js';
import { mediaDir, sha256 } from '../../src/demo/sample-media.js';

describe('assetfs demo', () => {
  it('mounts s3 and blob sample trees, serves real media byte-exact, and cleans up on SIGINT', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'assetfs-demo-test-'));
    const mnt = join(dir, 'mnt');
    const child = spawn(process.execPath, [BIN, 'demo', mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      const deadline = Date.now() + 120_000;
      while (!out.includes('Press Ctrl-C')) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`demo did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect((await sh(`ls ${mnt}`)).split('\n').filter(Boolean).sort()).toEqual(['blob', 's3']);
      const want = sha256(await readFile(join(mediaDir(), 'sample.mp4')));
      for (const src of ['s3', 'blob']) {
        expect((await sh(`sha256sum ${mnt}/${src}/videos/sample.mp4`)).split(' ')[0]).toBe(want);
      }
      expect(await sh(`ls ${mnt}/s3/large`)).toMatch(/random-72MiB\.bin/);
      const pids = (await sh(`pgrep -P ${child.pid} || true`)).split('\n').filter(Boolean);
      expect(pids.length).toBeGreaterThanOrEqual(2); // s3rver and Azurite
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(await isMounted(mnt)).toBe(false);
      for (const pid of pids) expect((await sh(`kill -0 ${pid} 2>/dev/null && echo alive || echo gone`)).trim()).toBe('gone');
      expect(out).toMatch(/nothing left mounted/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (await isMounted(mnt)) await sh(`fusermount -uz ${mnt}`);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
