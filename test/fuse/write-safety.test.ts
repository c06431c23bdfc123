/**
 * What a write into the mount may never do (docs/semantics.md, "Writes into the mount"), on a real
 * mount over s3rver behind the fault proxy: truncate a remote file when its copy-on-open fails,
 * overwrite a remote file that moved since it was opened (or appeared since it was created), take a
 * rename over a remote file for a conflict, answer EIO for a full staging area or leave the failed
 * file in the mount, let fsync run into the FUSE layer's ETIMEDOUT; and what `assetfs retry <path>`
 * and `assetfs discard <path>` do with files kept for attention after a crash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { BIN, mountDaemon, sh, shResult, until, type MountedDaemon } from '../helpers/mount.js';
import { daemonStatus } from '../helpers/status.js';

const MiB = 1024 * 1024;
let storage: ProxiedBucket;
let work: string;
let cacheDir: string;
let d: MountedDaemon;

interface Status {
  errors: { message: string }[];
  uploads: { active: unknown[]; queued: { remote: string }[]; failed: unknown[]; recent: { remote: string; state: string; conflictOf?: string }[] };
  writes: { files: number; bytes: number; attention: { path: string; staged: string; reason: string }[] };
}
const status = () => daemonStatus<Status>(cacheDir);
const cli = (args: string) => shResult(`node ${BIN} ${args} --socket ${join(cacheDir, 'control.sock')}`);
/** Files under <cacheDir>/staging (staged copies and their sidecars). */
const staged = () => readdir(join(cacheDir, 'staging'));
/** Uploads a staged file now: an fsync through a descriptor that writes nothing. */
const fsyncNow = (path: string) => shResult(`dd if=/dev/null of=${path} conv=notrunc,fsync status=none`);

const config = () => ({
  cacheDir,
  sources: [storage.source()],
  // The write-back delay is out of the way: uploads start at fsync (or a restart).
  uploads: { writeBack: '1h', stagingMax: '4MiB' },
  retry: { maxTime: '1s', requestTimeout: '1s' },
});

beforeAll(async () => {
  storage = await startProxiedBucket('media', {
    files: [
      { path: 'cow/remote.txt', data: Buffer.from('remote v1\n') },
      { path: 'conflict/take.txt', data: Buffer.from('theirs v1\n') },
      { path: 'upd/a.txt', data: Buffer.from('old a\n') },
    ],
  });
  work = await mkdtemp(join(tmpdir(), 'assetfs-wsafety-'));
  cacheDir = join(work, 'cache');
  d = await mountDaemon(config());
}, 120_000);
afterAll(async () => {
  await d?.stop();
  await storage?.close();
  await rm(work, { recursive: true, force: true });
});

describe('writes into the mount never lose or hide what is there', () => {
  it('copy-on-open that fails answers EIO and stages nothing: the remote file stays whole', async () => {
    const file = `${d.mountpoint}/s3/cow/remote.txt`;
    expect(await sh(`stat -c %s ${file}`)).toBe('10\n'); // the listing is cached: only the copy's GETs fail now
    storage.proxy.failNext(1000, 500, { method: 'GET' });
    let r: Awaited<ReturnType<typeof shResult>>;
    try {
      r = await shResult(`echo appended >> ${file}`);
    } finally {
      storage.proxy.clearFaults();
    }
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Input\/output error/);
    expect(await staged()).toEqual([]);
    expect(await sh(`stat -c %s ${file}`)).toBe('10\n');
    expect(await sh(`cat ${file}`)).toBe('remote v1\n');
    expect((await status()).writes.files).toBe(0);
    expect((await storage.object('cow/remote.txt'))!.toString()).toBe('remote v1\n');
  });

  it('a remote file that changed since it was opened for writing, or appeared since the file was created, is not overwritten: ours goes up as a conflict copy', async () => {
    const m = `${d.mountpoint}/s3/conflict`;
    await sh(`printf 'ours\\n' > ${m}/take.txt && printf 'new ours\\n' > ${m}/new.txt`);
    // Meanwhile someone else replaces take.txt and creates new.txt.
    await storage.seed([{ path: 'conflict/take.txt', data: Buffer.from('theirs v2\n') }, { path: 'conflict/new.txt', data: Buffer.from('new theirs\n') }]);
    for (const name of ['take.txt', 'new.txt']) expect((await fsyncNow(`${m}/${name}`)).code).toBe(0);
    const keys = await storage.keys('conflict/');
    const copy = (stem: string) => keys.find((k) => new RegExp(`^conflict/${stem}\\.conflict-[A-Za-z0-9_-]+-\\d{8}T\\d{6}Z\\.txt$`).test(k));
    expect(keys).toHaveLength(4);
    expect((await storage.object('conflict/take.txt'))!.toString()).toBe('theirs v2\n');
    expect((await storage.object(copy('take')!))!.toString()).toBe('ours\n');
    expect((await storage.object('conflict/new.txt'))!.toString()).toBe('new theirs\n');
    expect((await storage.object(copy('new')!))!.toString()).toBe('new ours\n');
    expect(d.logs()).toMatch(/conflict: the remote file changed since the file was opened for writing/);
    expect(d.logs()).toMatch(/conflict: the remote file appeared since the file was created in the mount/);
    const recent = (await status()).uploads.recent;
    expect(recent.filter((j) => j.conflictOf).map((j) => j.conflictOf).sort()).toEqual(['s3/conflict/new.txt', 's3/conflict/take.txt']);
  });

  it("a rename over a remote file replaces it (rsync's update of an existing file is no conflict)", async () => {
    const m = `${d.mountpoint}/s3/upd`;
    expect(await sh(`cat ${m}/a.txt`)).toBe('old a\n');
    await sh(`printf 'new a\\n' > ${m}/.a.txt.Xy12Zq && mv ${m}/.a.txt.Xy12Zq ${m}/a.txt`);
    expect((await fsyncNow(`${m}/a.txt`)).code).toBe(0);
    expect(await storage.keys('upd/')).toEqual(['upd/a.txt']);
    expect((await storage.object('upd/a.txt'))!.toString()).toBe('new a\n');
  });

  it('a write past uploads.stagingMax fails with ENOSPC, and the failed file does not stay in the mount', async () => {
    const m = `${d.mountpoint}/s3/cap`;
    await sh(`mkdir -p ${m}`);
    // The writer writes 1 MiB at a time until a write fails, says how, and keeps its descriptor open.
    const js = `const fs = require('fs'); const fd = fs.openSync(process.argv[1], 'w'); const b = Buffer.alloc(1 << 20);
      try { for (let i = 0; i < 5; i++) fs.writeSync(fd, b); console.log('wrote all'); } catch (e) { console.log(e.code); } setTimeout(() => {}, 600000);`;
    const w = spawn(process.execPath, ['-e', js, `${m}/big.bin`], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const said = await new Promise<string>((r) => w.stdout!.once('data', (b: Buffer) => r(b.toString().trim())));
      expect(said).toBe('ENOSPC');
      // Still open, and already out of the mount: nothing partial looks like a file.
      expect((await shResult(`stat ${m}/big.bin`)).code).not.toBe(0);
      expect(await sh(`ls -A ${m}`)).toBe('');
    } finally {
      w.kill('SIGKILL');
    }
    const r = await shResult(`head -c ${5 * MiB} /dev/zero > ${m}/big2.bin`);
    expect(r.stderr).toMatch(/No space left on device/);
    await until(async () => (await staged()).length === 0, 'the failed files deleted');
    expect((await status()).writes.bytes).toBe(0);
    // What fits still goes.
    await sh(`head -c ${1 * MiB} /dev/zero > ${m}/small.bin`);
    expect((await fsyncNow(`${m}/small.bin`)).code).toBe(0);
    expect((await storage.object('cap/small.bin'))?.length).toBe(MiB);
    expect(await storage.keys('cap/')).toEqual(['cap/small.bin']);
  });
});

// Its own daemon: every network call is bounded by retry.maxTime (docs/semantics.md, "Bounded calls"),
// so the held upload must be allowed to outlast uploads.fsyncTimeout. fuse-native's timer for fsync is
// set past that bound (run.ts), so the answer is fsync's own EIO, not ETIMEDOUT.
describe('fsync with an upload that takes longer than uploads.fsyncTimeout', () => {
  let slow: MountedDaemon;
  const slowCache = () => join(work, 'cache-fsync');
  beforeAll(async () => {
    slow = await mountDaemon({ cacheDir: slowCache(), sources: [storage.source()], uploads: { writeBack: '1h', fsyncTimeout: '5s' }, retry: { maxTime: '30s', requestTimeout: '30s' } });
  }, 120_000);
  afterAll(async () => {
    await slow?.stop();
  });

  it('fsync answers EIO after uploads.fsyncTimeout, never ETIMEDOUT; the upload carries on', async () => {
    const data = deterministicBytes('fsync-bound', 300_000);
    await writeFile(join(work, 'slow.bin'), data);
    const held = storage.proxy.hold((r) => r.method === 'PUT' && r.path.endsWith('/slow/f.bin'));
    const r = await shResult(`mkdir -p ${slow.mountpoint}/s3/slow && dd if=${work}/slow.bin of=${slow.mountpoint}/s3/slow/f.bin conv=fsync status=none`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Input\/output error/);
    expect(r.stderr).not.toMatch(/timed out/);
    const messages = (await daemonStatus<Status>(slowCache())).errors.map((e) => e.message).join('\n');
    expect(messages).toMatch(/fsync: EIO: .*did not finish within 5 s \(uploads.fsyncTimeout\); it carries on/);
    await held.reached;
    held.release();
    await until(async () => (await storage.object('slow/f.bin'))?.length === data.length, 'the upload');
    expect(sha256((await storage.object('slow/f.bin'))!)).toBe(sha256(data));
  }, 90_000);
});

describe('files kept for attention after a crash', () => {
  it('status lists them with their staged copy; `assetfs retry <path>` uploads one as it is, `assetfs discard <path>` deletes one', async () => {
    const m = `${d.mountpoint}/s3/att`;
    await sh(`mkdir -p ${m}`);
    // Two writers keep their descriptors open when the daemon is killed.
    const js = `const fs = require('fs'); for (const [p, t] of [[process.argv[1], 'kept x\\n'], [process.argv[2], 'kept y\\n']]) fs.writeSync(fs.openSync(p, 'w'), t); setTimeout(() => {}, 600000);`;
    const w = spawn(process.execPath, ['-e', js, `${m}/x.txt`, `${m}/y.txt`], { stdio: 'ignore' });
    try {
      await until(async () => (await sh(`cat ${m}/x.txt ${m}/y.txt 2>/dev/null || true`)) === 'kept x\nkept y\n', 'the writers');
      await d.kill();
    } finally {
      w.kill('SIGKILL');
      await d.stop();
    }
    d = await mountDaemon(config());
    const s = await status();
    expect(s.writes.attention.map((a) => a.path).sort()).toEqual(['/s3/att/x.txt', '/s3/att/y.txt']);
    for (const a of s.writes.attention) {
      expect(a.reason).toMatch(/stopped while a program was writing it/);
      expect(existsSync(a.staged)).toBe(true);
    }
    expect(await sh(`node ${BIN} status --socket ${join(cacheDir, 'control.sock')}`)).toMatch(/ATTENTION .* \/s3\/att\/x\.txt {2}kept at .*assetfs retry \/s3\/att\/x\.txt/);
    // Not in the mount, not uploaded.
    expect((await shResult(`stat ${m}/x.txt`)).code).not.toBe(0);
    expect(await storage.keys('att/')).toEqual([]);

    expect((await cli('retry /s3/att/x.txt')).stdout).toMatch(/queued for upload as it is/);
    await until(async () => (await storage.object('att/x.txt'))?.toString() === 'kept x\n', 'the retried upload');
    const ystaged = s.writes.attention.find((a) => a.path === '/s3/att/y.txt')!.staged;
    expect((await cli('discard /s3/att/y.txt')).stdout).toMatch(/kept copy deleted/);
    expect(existsSync(ystaged)).toBe(false);
    await until(async () => (await status()).writes.files === 0, 'the upload of x');
    const after = await status();
    expect(after.writes.attention).toEqual([]);
    expect(await staged()).toEqual([]);
    expect(await storage.keys('att/')).toEqual(['att/x.txt']);
  });
});
