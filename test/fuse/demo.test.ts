/** `assetfs demo`: mounts sample media from local servers, and Ctrl-C leaves nothing mounted or running. */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, NODE_FLAGS, forceUnmount, isMounted, sh } from '../helpers/mount.js';
import { mediaDir, sha256 } from '@assetfs/lab/demo/sample-media.js';

describe('assetfs demo', () => {
  it('mounts all seven sources, serves real media byte-exact, and cleans up on SIGINT', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'assetfs-demo-test-'));
    const mnt = join(dir, 'mnt');
    const child = spawn(process.execPath, [...NODE_FLAGS, BIN, 'demo', mnt], { stdio: ['ignore', 'pipe', 'pipe'] });
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
      expect((await sh(`ls ${mnt}`)).split('\n').filter(Boolean).sort()).toEqual(['ams', 'blob', 'mediahub', 'mkio', 'nomad', 's3', 'wordbee']);
      const want = sha256(await readFile(join(mediaDir(), 'sample.mp4')));
      const videos = [
        's3/videos/sample.mp4', 'blob/videos/sample.mp4', 'wordbee/pr7214/19641/27665601/en/videos/teaser.mp4', 'mkio/launch-teaser/teaser.mp4',
        "'ams/Launch Teaser/teaser.mp4'", 'nomad/media-bucket/Projects/2026/Launch/teaser.mp4', 'mediahub/pl-launch/uploads/teaser.mp4',
      ];
      for (const v of videos) expect((await sh(`cd ${mnt} && sha256sum ${v}`)).split(' ')[0]).toBe(want);
      expect(await sh(`ls ${mnt}/wordbee/pr7214/19641/27665601`)).toMatch(/de\s+en\s+fr/);
      expect((await sh(`cat ${mnt}/nomad/media-bucket/Archive/2019-master.mp4 2>&1 || true`))).toMatch(/Permission denied/);
      expect(await sh(`ls ${mnt}/s3/large`)).toMatch(/random-72MiB\.bin/);
      const pids = (await sh(`pgrep -P ${child.pid} || true`)).split('\n').filter(Boolean);
      expect(pids.length).toBeGreaterThanOrEqual(2); // s3rver and Azurite (the emulators run in the daemon's process)
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(await isMounted(mnt)).toBe(false);
      for (const pid of pids) expect((await sh(`kill -0 ${pid} 2>/dev/null && echo alive || echo gone`)).trim()).toBe('gone');
      expect(out).toMatch(/nothing left mounted/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (await isMounted(mnt)) await forceUnmount(mnt);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
