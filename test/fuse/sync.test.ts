/**
 * Watched folders (`sync:`), through the real daemon: nested files go up once stable, ignored names
 * never, changes made while the daemon was down are found at start (and untouched-but-touched files
 * are not sent again), a remote file changed behind our back gets a conflict copy beside it, local
 * deletes never delete remotely without `deleteRemote`, and `assetfs status`/`retry` report on it all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFile, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { s3rverClient } from '@assetfs/lab/demo/seed-storage.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { BIN, mountDaemon, sh, type MountedDaemon, until } from '../helpers/mount.js';

let storage: ProxiedBucket;
let work: string;
let local: string;

const object = async (key: string) => (await storage.object(key))?.toString();
const keys = async () => (await storage.keys('watched/')).sort();
const puts = (key: string) => storage.proxy.requests().filter((r) => r.method === 'PUT' && r.path === `/media/${key}`).length;

const config = () => ({
  cacheDir: join(work, 'cache'),
  sources: [storage.source()],
  sync: [{ local, remote: 's3/watched', stableFor: '300ms', ignore: ['*.bak'] }],
});

beforeAll(async () => {
  storage = await startProxiedBucket('media');
  work = await mkdtemp(join(tmpdir(), 'assetfs-sync-'));
  local = join(work, 'outgoing');
  await mkdir(join(local, 'shots', 'day1'), { recursive: true });
  await writeFile(join(local, 'present-at-start.txt'), 'was here before the daemon\n');
});
afterAll(async () => {
  await storage?.close();
  await rm(work, { recursive: true, force: true });
});

describe.sequential('watched folder', () => {
  let d: MountedDaemon;
  afterAll(async () => d?.stop());

  it('uploads files once stable, nested folders to nested remote folders, never ignored names', async () => {
    d = await mountDaemon(config());
    await writeFile(join(local, 'shots', 'day1', 'take1.txt'), 'take one\n');
    for (const junk of ['.take1.txt.swp', '~$script.docx', '.DS_Store', 'movie.mp4.part', 'notes.bak']) await writeFile(join(local, junk), 'junk');
    // A file still growing goes up once, after it stopped changing.
    const growing = join(local, 'growing.log');
    for (let i = 0; i < 5; i++) {
      await appendFile(growing, `line ${i}\n`);
      await new Promise((r) => setTimeout(r, 150));
    }
    await until(async () => (await keys()).length >= 3, 'three uploads');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await keys()).toEqual(['watched/growing.log', 'watched/present-at-start.txt', 'watched/shots/day1/take1.txt']);
    expect(await object('watched/growing.log')).toBe('line 0\nline 1\nline 2\nline 3\nline 4\n');
    expect(puts('watched/growing.log')).toBe(1);
  });

  it('status shows the watched folder and the finished jobs; retry reports nothing to retry', async () => {
    const socket = join(work, 'cache', 'control.sock');
    const s = JSON.parse(await sh(`node ${BIN} status --json --socket ${socket}`)) as { uploads: { syncs: unknown[]; recent: { remote: string; state: string }[] } };
    expect(s.uploads.syncs).toEqual([{ local, remote: 's3/watched', deleteRemote: false, paused: null }]);
    expect(s.uploads.recent.map((j) => j.remote)).toContain('s3/watched/shots/day1/take1.txt');
    expect(await sh(`node ${BIN} status --socket ${socket}`)).toMatch(/uploads: +0 uploading, 0 queued, 0 failed; watching/);
    expect(await sh(`node ${BIN} retry --socket ${socket}`)).toMatch(/^0 failed uploads queued for retry/);
  });

  it('a remote file changed since our upload is kept; ours goes up beside it as a conflict copy', async () => {
    const c = s3rverClient(storage.s3.url);
    await c.send(new PutObjectCommand({ Bucket: 'media', Key: 'watched/shots/day1/take1.txt', Body: 'edited by a colleague\n' }));
    c.destroy();
    await writeFile(join(local, 'shots', 'day1', 'take1.txt'), 'take one, our second version\n');
    await until(async () => (await keys()).some((k) => k.includes('.conflict-')), 'the conflict copy');
    const copy = (await keys()).find((k) => k.includes('.conflict-'))!;
    expect(copy).toMatch(/^watched\/shots\/day1\/take1\.conflict-[A-Za-z0-9_-]+-\d{8}T\d{6}Z\.txt$/);
    expect(await object(copy)).toBe('take one, our second version\n');
    expect(await object('watched/shots/day1/take1.txt')).toBe('edited by a colleague\n');
  });

  it('a local delete does not delete remotely (deleteRemote is off)', async () => {
    await rm(join(local, 'growing.log'));
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await object('watched/growing.log')).toBeDefined();
  });

  it('changes made while the daemon was down are found at start; a merely touched file is not sent again', async () => {
    await d.stop();
    await writeFile(join(local, 'present-at-start.txt'), 'changed while the daemon was down\n');
    await writeFile(join(local, 'new-while-down.txt'), 'new\n');
    const later = new Date(Date.now() + 60_000);
    await utimes(join(local, 'shots', 'day1', 'take1.txt'), later, later); // same bytes, new mtime
    storage.proxy.clearLog();
    d = await mountDaemon(config());
    await until(async () => (await object('watched/new-while-down.txt')) === 'new\n', 'the new file');
    await until(async () => (await object('watched/present-at-start.txt')) === 'changed while the daemon was down\n', 'the changed file');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(puts('watched/shots/day1/take1.txt')).toBe(0);
    expect((await keys()).filter((k) => k.includes('.conflict-')).length).toBe(1);
  });
});
