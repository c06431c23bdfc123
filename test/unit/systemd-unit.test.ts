/**
 * The shipped unit passes `systemd-analyze verify` (where systemd is installed). verify exits 0 even
 * on lines it ignores ("Unknown key", "Failed to parse …, ignoring"), so any message about our unit
 * fails the test too. The template is verified through an instance name, as systemd loads it.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/mount.js';

const pexec = promisify(execFile);
const UNIT = join(ROOT, 'systemd', 'assetfs@.service');

const analyze = await pexec('systemd-analyze', ['--version']).then(
  () => true,
  () => false,
);

describe('systemd/assetfs@.service', () => {
  const name = 'passes systemd-analyze verify without a single complaint about the unit';
  it.skipIf(!analyze)(analyze ? name : `${name} (skipped: systemd-analyze is not installed)`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'assetfs-unit-'));
    try {
      await copyFile(UNIT, join(dir, 'assetfs@.service'));
      const r = await pexec('systemd-analyze', ['verify', join(dir, 'assetfs@ci.service')]).then(
        ({ stderr }) => ({ code: 0, stderr }),
        (e: { code?: number; stderr?: string }) => ({ code: e.code ?? 1, stderr: e.stderr ?? '' }),
      );
      const aboutUs = r.stderr.split('\n').filter((l) => l.includes('assetfs@'));
      expect(aboutUs).toEqual([]);
      expect(r.code).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
