/**
 * Preflight checks against real directories, files and the real mount table. A stale FUSE mount can
 * only be made with FUSE itself: that case is covered by the FUSE tests (test/fuse/).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  PreflightError,
  autofsAt,
  checkDevFuse,
  checkFusermount,
  checkMountpoint,
  explainBindingLoadError,
  isMounted,
  parseMountTable,
  preflight,
  unescapeMountField,
} from '../../src/daemon/preflight.js';
import { UnmountError, unmount } from '../../src/daemon/unmount.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-preflight-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function preflightMessage(p: Promise<void>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PreflightError);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n'); // one line, always
    return msg;
  }
  throw new Error('expected a PreflightError');
}

describe('mount table parsing', () => {
  const MOUNTINFO = [
    '22 27 0:21 / /proc rw,relatime - proc proc rw',
    '36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
    '410 27 0:55 / /home/me/Asset\\040Library\\011tab\\134slash rw,nosuid,nodev,relatime shared:300 - fuse.assetfs assetfs rw,user_id=0,group_id=0',
    '411 27 0:56 / /srv/a rw,relatime - fuse fuse\\040src rw',
    'garbage',
    '',
  ].join('\n');

  it('reads mountinfo, undoing the octal escapes of names with spaces, tabs and backslashes', () => {
    expect(parseMountTable(MOUNTINFO)).toEqual([
      { mountpoint: '/proc', fstype: 'proc', source: 'proc' },
      { mountpoint: '/mnt/with space', fstype: 'ext3', source: '/dev/root' },
      { mountpoint: '/home/me/Asset Library\ttab\\slash', fstype: 'fuse.assetfs', source: 'assetfs' },
      { mountpoint: '/srv/a', fstype: 'fuse', source: 'fuse src' },
    ]);
  });

  it('reads the /proc/mounts format too', () => {
    const mounts = 'proc /proc proc rw,relatime 0 0\nassetfs /mnt/my\\040assets fuse.assetfs rw,nosuid,nodev 0 0\n';
    expect(parseMountTable(mounts)).toEqual([
      { mountpoint: '/proc', fstype: 'proc', source: 'proc' },
      { mountpoint: '/mnt/my assets', fstype: 'fuse.assetfs', source: 'assetfs' },
    ]);
  });

  it('leaves text without escapes alone', () => {
    expect(unescapeMountField('/a/b\\x')).toBe('/a/b\\x');
    expect(unescapeMountField('\\012')).toBe('\n');
  });

  it('isMounted finds an escaped name in a mount table, through a symlinked parent', async () => {
    const parent = join(dir, 'real parent');
    const target = join(parent, 'my mnt');
    await mkdir(target, { recursive: true });
    await symlink(parent, join(dir, 'link'));
    const table = join(dir, 'mountinfo');
    const escaped = target.replace(/ /g, '\\040');
    await writeFile(table, `22 27 0:21 / /proc rw - proc proc rw\n500 27 0:70 / ${escaped} rw,nosuid shared:1 - fuse.assetfs assetfs rw\n`);
    expect(await isMounted(target, table)).toBe('live');
    expect(await isMounted(join(dir, 'link', 'my mnt'), table)).toBe('live');
    expect(await isMounted(parent, table)).toBe(false);
  });

  it('an autofs mount at the mount point (x-systemd.automount) is no busy or stale mount point: the check passes without touching the path', async () => {
    const mp = join(dir, 'automount point');
    const table = join(dir, 'mountinfo-autofs');
    const escaped = mp.replace(/ /g, '\\040');
    // Left by systemd for `x-systemd.automount` in fstab: autofs at the path, the real mount not made yet.
    await writeFile(table, `22 27 0:21 / /proc rw - proc proc rw\n612 27 0:80 / ${escaped} rw,relatime shared:310 - autofs systemd-1 rw,fd=52,pgrp=1,timeout=0,minproto=5,maxproto=5,direct,pipe_ino=31462\n`);
    expect(parseMountTable(await readFile(table, 'utf8')).at(-1)).toEqual({ mountpoint: mp, fstype: 'autofs', source: 'systemd-1' });
    expect(await autofsAt(mp, table)).toBe(true);
    // The directory does not even exist here: any stat or readdir of it would have refused.
    await expect(checkMountpoint(mp, { mountTable: table })).resolves.toBeUndefined();
    // Without the autofs line, the same path is checked as usual.
    await writeFile(table, '22 27 0:21 / /proc rw - proc proc rw\n');
    expect(await autofsAt(mp, table)).toBe(false);
    expect(await preflightMessage(checkMountpoint(mp, { mountTable: table }))).toMatch(/does not exist/);
    // A FUSE mount on top of the autofs one (the automount done) is busy again.
    await writeFile(table, `612 27 0:80 / ${escaped} rw - autofs systemd-1 rw,direct\n700 612 0:90 / ${escaped} rw - fuse.assetfs assetfs rw\n`);
    expect(await autofsAt(mp, table)).toBe(false);
  });

  it('isMounted reads the real mount table', async () => {
    expect(await isMounted('/proc')).toBe('live');
    expect(await isMounted(dir)).toBe(false);
  });
});

describe('checkMountpoint', () => {
  it('accepts an empty directory', async () => {
    const mp = join(dir, 'empty');
    await mkdir(mp);
    await expect(checkMountpoint(mp)).resolves.toBeUndefined();
  });

  it('says a missing mount point does not exist, and how to create it', async () => {
    const mp = join(dir, 'no such dir');
    expect(await preflightMessage(checkMountpoint(mp))).toBe(`mount point ${mp} does not exist: create it first (mkdir -p '${mp}')`);
  });

  it('refuses a file', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    expect(await preflightMessage(checkMountpoint(file))).toMatch(/^mount point .*a-file is not a directory/);
    expect(await preflightMessage(checkMountpoint(join(file, 'below')))).toMatch(/is not a directory \(part of its path is a file\)$/);
  });

  it('refuses a non-empty directory, saying how many entries it holds', async () => {
    const mp = join(dir, 'full');
    await mkdir(join(mp, 'sub'), { recursive: true });
    await writeFile(join(mp, '.hidden'), '');
    expect(await preflightMessage(checkMountpoint(mp))).toBe(`mount point ${mp} is not empty (2 entries; the mount would hide them): use an empty directory`);
  });

  it('refuses a path where something is already mounted', async () => {
    expect(await preflightMessage(checkMountpoint('/proc'))).toMatch(/^mount point \/proc is busy: proc from proc is already mounted there; unmount it first \(assetfs unmount \/proc\)/);
  });

  describe.skipIf(!isRoot)('with a real (non-FUSE) mount, as root', () => {
    let mp: string;
    let mounted = false;
    beforeAll(async () => {
      mp = join(dir, 'tmpfs mount');
      await mkdir(mp);
      await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'assetfs-test', mp]);
      mounted = true;
    });
    afterAll(async () => {
      if (mounted) await run('umount', [mp]);
    });

    it('an empty directory with a live mount on it is busy, not free', async () => {
      expect(await isMounted(mp)).toBe('live');
      expect(await preflightMessage(checkMountpoint(mp, { force: true }))).toMatch(/is busy: tmpfs from assetfs-test is already mounted there/);
    });

    it('unmount refuses a mount that is not FUSE and leaves it mounted', async () => {
      await expect(unmount(mp)).rejects.toThrow(new UnmountError(`${mp} is not a FUSE mount (it is tmpfs): not unmounting it`));
      expect(await isMounted(mp)).toBe('live');
    });
  });
});

describe('system checks', () => {
  it('a missing /dev/fuse names both fixes', async () => {
    expect(await preflightMessage(checkDevFuse(join(dir, 'no-fuse-device')))).toBe(
      `${join(dir, 'no-fuse-device')} is missing: load the fuse module (modprobe fuse) or run the container with --device /dev/fuse`,
    );
  });

  it.skipIf(isRoot)('an unopenable device is reported when fusermount cannot step in', async () => {
    const dev = join(dir, 'locked-device');
    await writeFile(dev, '');
    await chmod(dev, 0o000);
    await expect(checkDevFuse(dev)).rejects.toBeInstanceOf(PreflightError);
  });

  it('a missing fusermount says which package to install; fusermount3 alone is enough', async () => {
    const empty = join(dir, 'empty-bin');
    await mkdir(empty);
    expect(await preflightMessage(checkFusermount(empty))).toBe('fusermount is missing: install it with `apt-get install fuse3`');

    const only3 = join(dir, 'bin3');
    await mkdir(only3);
    await writeFile(join(only3, 'fusermount3'), '#!/bin/sh\n', { mode: 0o755 });
    await expect(checkFusermount(only3)).resolves.toBeUndefined(); // unmounting falls back to it (vendor/fuse-native patch 7)

    const both = join(dir, 'bin-both');
    await mkdir(both);
    await writeFile(join(both, 'fusermount'), '#!/bin/sh\n', { mode: 0o644 }); // not executable: does not count
    await expect(checkFusermount(both)).rejects.toBeInstanceOf(PreflightError);
    await chmod(join(both, 'fusermount'), 0o755);
    await expect(checkFusermount(both)).resolves.toBeUndefined();
  });

  it('a failed dlopen of libfuse3.so.3 becomes the apt-get line', () => {
    const dlopen = new Error('libfuse3.so.3: cannot open shared object file: No such file or directory');
    expect(explainBindingLoadError(dlopen)).toBe('libfuse3.so.3 is missing: install it with `apt-get install fuse3`');
    expect(explainBindingLoadError(new Error('No native build was found for platform=linux\nmore'))).toBe(
      'the FUSE binding (fuse-native) could not be loaded (No native build was found for platform=linux): reinstall the npm packages (npm ci)',
    );
  });

  it('unmount says so when the path is not mounted', async () => {
    await expect(unmount(dir)).rejects.toThrow(new UnmountError(`${dir} is not mounted`));
  });

  it.skipIf(!existsSync('/dev/fuse'))('the whole preflight passes the system checks here and stops at the mount point', async () => {
    const mp = join(dir, 'whole');
    expect(await preflightMessage(preflight(mp, {}))).toMatch(/does not exist/);
    await mkdir(mp);
    await expect(preflight(mp, {})).resolves.toBeUndefined();
  });
});
