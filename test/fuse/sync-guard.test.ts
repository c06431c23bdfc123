/**
 * Watched folders never reach outside themselves, through the real daemon: symlinks (to a folder
 * outside, to a file outside, a loop, the folder itself) are skipped with a warning and nothing
 * outside is uploaded; with `deleteRemote: true`, a mass `rm`, a deleted folder and an unmounted disk
 * pause the remote deletions with a status line until `assetfs retry` confirms them, and a restart
 * drops them with the remote copies kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { BIN, isMounted, mountDaemon, sh, type MountedDaemon, until } from '../helpers/mount.js';
import type { UploadsStatus } from '../../src/upload/service.js';
import { callControl } from '../../src/daemon/control.js';

const pexec = promisify(execFile);
const isRoot = process.getuid?.() === 0;

let storage: ProxiedBucket;
let work: string;
let local: string;
let disk: string;

const keys = async (prefix = 'watched/') => (await storage.keys(prefix)).sort();
const socket = () => join(work, 'cache', 'control.sock');
/** The daemon's status document, asked over its socket from here (the CLI's text is checked where it matters). */
const status = async () => ((await callControl(socket(), 'GET', '/status')) as { uploads: UploadsStatus }).uploads;
const pausedOf = async (i = 0) => (await status()).syncs[i]!.paused;

const config = () => ({
  cacheDir: join(work, 'cache'),
  sources: [storage.directSource()],
  sync: [
    { local, remote: 's3/watched', stableFor: '300ms', deleteRemote: true },
    ...(isRoot ? [{ local: disk, remote: 's3/disk', stableFor: '300ms', deleteRemote: true }] : []),
  ],
});

beforeAll(async () => {
  storage = await startProxiedBucket('media');
  work = await mkdtemp(join(tmpdir(), 'assetfs-sync-guard-'));
  local = join(work, 'watched');
  disk = join(work, 'disk');
  const outside = join(work, 'outside');
  await mkdir(join(outside, 'd'), { recursive: true });
  await writeFile(join(outside, 'secret.txt'), 'outside the watched folder\n');
  await writeFile(join(outside, 'd', 'inner.txt'), 'also outside\n');
  await mkdir(local);
  await writeFile(join(local, 'plain.txt'), 'inside\n');
  await symlink('../outside', join(local, 'outside-dir'));
  await symlink('../outside/secret.txt', join(local, 'outside-file'));
  await symlink('loop-b', join(local, 'loop-a'));
  await symlink('loop-a', join(local, 'loop-b'));
  await symlink('.', join(local, 'self'));
  if (isRoot) {
    // A disk of its own: unmounting it while watched is what an unplugged or unmounted drive does.
    await mkdir(disk);
    await pexec('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'assetfs-test-disk', disk]);
    for (const n of ['a', 'b', 'c']) await writeFile(join(disk, `${n}.txt`), `${n}\n`);
  }
});
afterAll(async () => {
  if (isRoot && (await isMounted(disk))) await pexec('umount', ['-l', disk]).catch(() => undefined);
  await storage?.close();
  await rm(work, { recursive: true, force: true });
});

describe.sequential('watched folders never reach outside themselves', () => {
  let d: MountedDaemon;
  afterAll(async () => d?.stop());

  it('symlinks are skipped with a warning, present at start or made later; nothing outside is uploaded', async () => {
    d = await mountDaemon(config());
    await until(() => status().then(() => true, () => false), 'the control socket'); // it follows the mount
    await symlink('../outside/secret.txt', join(local, 'later-link'));
    await symlink('../outside', join(local, 'later-dir-link'));
    await writeFile(join(local, 'later.txt'), 'later\n');
    await until(async () => (await keys()).includes('watched/later.txt'), 'the later file');
    await until(async () => {
      const s = await status();
      return s.queued.length + s.active.length === 0;
    }, 'an idle engine');
    expect(await keys()).toEqual(['watched/later.txt', 'watched/plain.txt']);
    expect((await storage.keys('')).filter((k) => !k.startsWith('watched/') && !k.startsWith('disk/'))).toEqual([]);
    const warned = (name: string) => d.logs().split('\n').some((l) => l.includes('symlink in a watched folder not followed') && l.includes(join(local, name)));
    await until(async () => ['outside-dir', 'outside-file', 'loop-a', 'loop-b', 'self', 'later-link', 'later-dir-link'].every(warned), 'a warning per symlink', 10_000);
  });

  it('a mass rm pauses the deletions with a status line; retry deletes what is still missing', async () => {
    const many = Array.from({ length: 4 }, (_, i) => `m${i}.txt`);
    for (const n of many) await writeFile(join(local, n), `${n}\n`);
    await until(async () => (await keys()).length === 6, 'six uploads');
    await rm(join(local, 'm0.txt')); // one of 6: within maxDelete (50 files or 10 %, never less than one)
    await until(async () => !(await keys()).includes('watched/m0.txt'), 'the single remote delete');
    expect(await pausedOf()).toBeNull();

    await sh(`rm ${many.slice(1).map((n) => join(local, n)).join(' ')}`);
    await until(async () => (await pausedOf()) !== null, 'the pause');
    expect(await pausedOf()).toMatchObject({ reason: 'mass', held: 3 });
    expect((await keys()).length).toBe(5); // nothing deleted remotely
    const human = await sh(`node ${BIN} status --socket ${socket()}`);
    expect(human).toContain(`PAUSED    ${local} → s3/watched: paused: 3 files deleted at once, more than maxDelete allows (1 of 5: 50 files or 10 %)`);

    await writeFile(join(local, 'm1.txt'), 'm1.txt\n'); // one comes back before the confirmation
    await until(async () => (await pausedOf())?.held === 2, 'the restored file leaving the held deletions');
    expect(await sh(`node ${BIN} retry --socket ${socket()}`)).toMatch(/^0 failed uploads queued for retry; 2 held remote deletions confirmed and done$/m);
    expect(await keys()).toEqual(['watched/later.txt', 'watched/m1.txt', 'watched/plain.txt']);
    expect(await pausedOf()).toBeNull();
  });

  it('a deleted folder pauses whatever the count; retry does nothing until it is back, then watches it again', async () => {
    await rm(local, { recursive: true, force: true });
    await until(async () => (await pausedOf())?.reason === 'gone', 'the pause');
    expect((await pausedOf())!.message).toMatch(/^paused: the watched folder is gone \(an unmounted disk\? a renamed folder\?\): 3 remote deletions held/);
    expect(await sh(`node ${BIN} retry --socket ${socket()}`)).toMatch(/^0 failed uploads queued for retry; 1 watched folder still paused \(gone: see assetfs status\)$/m);
    expect((await pausedOf())?.reason).toBe('gone');
    expect(await keys()).toEqual(['watched/later.txt', 'watched/m1.txt', 'watched/plain.txt']);

    await mkdir(local);
    await writeFile(join(local, 'plain.txt'), 'inside\n'); // restored from a backup: its remote copy stays
    expect(await sh(`node ${BIN} retry --socket ${socket()}`)).toMatch(/; 2 held remote deletions confirmed and done$/m);
    expect(await keys()).toEqual(['watched/plain.txt']);
    await writeFile(join(local, 'after.txt'), 'after\n');
    await until(async () => (await keys()).includes('watched/after.txt'), 'an upload from the folder watched again');
  });

  it.skipIf(!isRoot)('an unmounted disk pauses its deletions; mounted again, retry deletes nothing and the disk is watched again', async () => {
    await until(async () => (await keys('disk/')).length === 3, "the disk's three uploads");
    await pexec('umount', ['-l', disk]);
    await until(async () => (await pausedOf(1)) !== null, 'the pause');
    expect(await pausedOf(1)).toMatchObject({ reason: 'mass', held: 3 });
    expect(await keys('disk/')).toEqual(['disk/a.txt', 'disk/b.txt', 'disk/c.txt']);

    await pexec('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'assetfs-test-disk', disk]); // the disk is back, with its files
    for (const n of ['a', 'b', 'c', 'd']) await writeFile(join(disk, `${n}.txt`), `${n}\n`);
    expect(await sh(`node ${BIN} retry --socket ${socket()}`)).toMatch(/^0 failed uploads queued for retry$/m);
    expect(await pausedOf(1)).toBeNull();
    await until(async () => (await keys('disk/')).includes('disk/d.txt'), 'an upload from the disk watched again');
    expect(await keys('disk/')).toEqual(['disk/a.txt', 'disk/b.txt', 'disk/c.txt', 'disk/d.txt']);
  });

  it('a restart drops held deletions: no pause, the remote copies kept', async () => {
    for (const n of ['r1', 'r2', 'r3']) await writeFile(join(local, `${n}.txt`), n);
    await until(async () => (await keys()).length === 5, 'five uploads');
    await sh(`rm ${local}/r*.txt ${local}/after.txt`);
    await until(async () => (await pausedOf()) !== null, 'the pause');
    await d.stop();
    d = await mountDaemon(config());
    await until(() => status().then(() => true, () => false), 'the control socket'); // it follows the mount
    expect(await pausedOf()).toBeNull();
    expect(await keys()).toEqual(['watched/after.txt', 'watched/plain.txt', 'watched/r1.txt', 'watched/r2.txt', 'watched/r3.txt']);
  });
});
