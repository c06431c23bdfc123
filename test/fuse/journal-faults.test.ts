/**
 * The daemon on its own errors (docs/semantics.md, "Writes into the mount" and "The daemon's own
 * robustness"), on a real mount over s3rver: a journal that cannot be opened is set aside and the
 * staged files are rescanned from their sidecars; a journal locked by another process fails writes
 * (status says why) while reads go on; a full staging disk answers ENOSPC, not EIO, and writes go
 * through again once there is room.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { mountDaemon, sh, shResult, until, type MountedDaemon } from '../helpers/mount.js';
import { daemonStatus } from '../helpers/status.js';

const MiB = 1024 * 1024;
let storage: ProxiedBucket;
let work: string;

interface Status {
  uploads: { journal: { setAside?: string; setAsideCause?: string; lastError?: { code: string; op: string; message: string } } };
  writes: { files: number; attention: unknown[] };
}
const status = (cacheDir: string) => daemonStatus<Status>(cacheDir);
const fsyncNow = (path: string) => shResult(`dd if=/dev/null of=${path} conv=notrunc,fsync status=none`);

beforeAll(async () => {
  storage = await startProxiedBucket('media', { files: [{ path: 'read/me.txt', data: Buffer.from('still readable\n') }] });
  work = await mkdtemp(join(tmpdir(), 'assetfs-jfaults-'));
}, 60_000);
afterAll(async () => {
  await storage?.close();
  await rm(work, { recursive: true, force: true });
});

describe('journal faults', () => {
  it('a journal that cannot be opened is set aside with a timestamp; the staged files are rescanned and uploaded', async () => {
    const cacheDir = join(work, 'aside');
    const cfg = { cacheDir, sources: [storage.source()], uploads: { writeBack: '1h' } };
    const first = await mountDaemon(cfg);
    try {
      await sh(`mkdir -p ${first.mountpoint}/s3/aside && printf 'closed before the crash\\n' > ${first.mountpoint}/s3/aside/a.txt`);
      await first.kill();
    } finally {
      await first.stop();
    }
    for (const ext of ['-wal', '-shm']) await rm(join(cacheDir, `journal.db${ext}`), { force: true });
    await writeFile(join(cacheDir, 'journal.db'), Buffer.alloc(16384, 'garbage '));
    const second = await mountDaemon(cfg);
    try {
      expect(second.logs()).toMatch(/upload journal unreadable \(SQLITE_NOTADB: file is not a database\): set aside as .*journal\.db\.broken-\d{8}T\d{6}Z; starting a fresh one/);
      const aside = (await readdir(cacheDir)).filter((f) => /^journal\.db\.broken-\d{8}T\d{6}Z$/.test(f));
      expect(aside).toHaveLength(1);
      expect((await status(cacheDir)).uploads.journal.setAside).toBe(join(cacheDir, aside[0]!));
      await until(async () => (await storage.object('aside/a.txt'))?.toString() === 'closed before the crash\n', 'the rescanned upload');
      await until(async () => (await readdir(join(cacheDir, 'staging'))).length === 0, 'the staging folder emptied');
      expect(await sh(`cat ${second.mountpoint}/s3/read/me.txt`)).toBe('still readable\n');
    } finally {
      await second.stop();
    }
  });

  it('after a journal set aside, the sync adopts remote copies that already have the local bytes; only a file that differs goes up as a conflict copy', async () => {
    const cacheDir = join(work, 'adopt');
    const local = join(work, 'adopt-local');
    await mkdir(local, { recursive: true });
    const files: Record<string, string | Buffer> = { 'a.txt': 'alpha\n', 'sub/b.txt': 'bravo, one folder down\n', 'c.txt': 'charlie before\n', 'big.bin': Buffer.alloc(6 * MiB, 7) };
    for (const [p, data] of Object.entries(files)) {
      await mkdir(join(local, p, '..'), { recursive: true });
      await writeFile(join(local, p), data);
    }
    const cfg = { cacheDir, sources: [storage.source()], sync: [{ local, remote: 's3/adopt', stableFor: '300ms' }] };
    const idle = async () => {
      const u = (await daemonStatus<{ uploads: { queued: unknown[]; active: unknown[] } }>(cacheDir)).uploads;
      return u.queued.length + u.active.length === 0;
    };
    const first = await mountDaemon(cfg);
    try {
      await until(async () => (await storage.keys('adopt/')).length === 4 && (await idle()), 'the first sync');
    } finally {
      await first.stop();
    }
    // While the daemon is down: c.txt changes (same size, other bytes), and d.txt appears both here and,
    // put by another tool as a single-part object, remotely.
    await writeFile(join(local, 'c.txt'), 'charlie after!\n');
    await writeFile(join(local, 'd.txt'), 'delta, uploaded by someone else\n');
    await storage.seed([{ path: 'adopt/d.txt', data: Buffer.from('delta, uploaded by someone else\n') }]);
    for (const ext of ['-wal', '-shm']) await rm(join(cacheDir, `journal.db${ext}`), { force: true });
    await writeFile(join(cacheDir, 'journal.db'), Buffer.alloc(16384, 'garbage '));
    storage.proxy.clearLog();
    const second = await mountDaemon(cfg);
    try {
      expect(second.logs()).toMatch(/upload journal unreadable .*set aside/);
      await until(async () => (await storage.keys('adopt/')).some((k) => k.includes('.conflict-')) && (await idle()), 'the rescan');
      const keys = await storage.keys('adopt/');
      expect(keys.filter((k) => !k.includes('.conflict-')).sort()).toEqual(['adopt/a.txt', 'adopt/big.bin', 'adopt/c.txt', 'adopt/d.txt', 'adopt/sub/b.txt']);
      expect(keys.filter((k) => k.includes('.conflict-'))).toEqual([expect.stringMatching(/^adopt\/c\.conflict-.*\.txt$/)]);
      expect((await storage.object(keys.find((k) => k.includes('.conflict-'))!))?.toString()).toBe('charlie after!\n');
      expect((await storage.object('adopt/c.txt'))?.toString()).toBe('charlie before\n');
      // Nothing but the conflict copy was sent: the four adopted files cost a HEAD each.
      const sent = storage.proxy.requests().filter((r) => r.method === 'PUT' || r.method === 'POST');
      expect(sent.every((r) => r.path.includes('.conflict-'))).toBe(true);
      expect(second.logs().match(/the remote copy already has these bytes: adopted, nothing uploaded/g)).toHaveLength(4);
    } finally {
      await second.stop();
    }
  });

  it('a journal locked by another process: writes fail and status names SQLITE_BUSY, reads go on; once released, writes work', async () => {
    const cacheDir = join(work, 'busy');
    const d = await mountDaemon({ cacheDir, sources: [storage.source()], uploads: { writeBack: '1h' } });
    const other = new Database(join(cacheDir, 'journal.db'));
    try {
      other.exec('BEGIN EXCLUSIVE');
      const r = await shResult(`printf x > ${d.mountpoint}/s3/busy.txt`);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/Input\/output error/);
      expect(await sh(`cat ${d.mountpoint}/s3/read/me.txt`)).toBe('still readable\n');
      expect((await status(cacheDir)).uploads.journal.lastError).toMatchObject({ code: 'SQLITE_BUSY' });
      expect(d.logs()).toMatch(/upload journal error \(SQLITE_BUSY\)/);
      other.exec('COMMIT');
      await sh(`printf 'after\\n' > ${d.mountpoint}/s3/busy.txt`);
      expect((await fsyncNow(`${d.mountpoint}/s3/busy.txt`)).code).toBe(0);
      expect((await storage.object('busy.txt'))?.toString()).toBe('after\n');
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await d.stop();
    }
  });

  describe('a full staging disk', () => {
    const disk = join(tmpdir(), `assetfs-full-${process.pid}`);
    let d: MountedDaemon | undefined;
    beforeAll(async () => {
      await mkdir(disk, { recursive: true });
      await sh(`mount -t tmpfs -o size=16m assetfs-test ${disk}`);
    });
    afterAll(async () => {
      await d?.stop();
      await shResult(`umount ${disk}`);
      await rm(disk, { recursive: true, force: true });
    });

    it('answers ENOSPC (not EIO), keeps serving reads, and takes writes again once there is room', async () => {
      const cacheDir = join(disk, 'cache');
      d = await mountDaemon({ cacheDir, sources: [storage.source()], uploads: { writeBack: '1h' }, cache: { disk: 0 } });
      await sh(`mkdir -p ${d.mountpoint}/s3/full`);
      const avail = Number((await sh(`df --output=avail -B1 ${disk} | tail -1`)).trim());
      await sh(`head -c ${Math.max(0, avail - MiB)} /dev/zero > ${disk}/filler`);
      const r = await shResult(`head -c ${3 * MiB} /dev/zero > ${d.mountpoint}/s3/full/big.bin`);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/No space left on device/);
      expect((await shResult(`stat ${d.mountpoint}/s3/full/big.bin`)).code).not.toBe(0);
      expect(await sh(`cat ${d.mountpoint}/s3/read/me.txt`)).toBe('still readable\n');
      await rm(join(disk, 'filler'));
      await sh(`head -c ${2 * MiB} /dev/zero > ${d.mountpoint}/s3/full/big.bin`);
      expect((await fsyncNow(`${d.mountpoint}/s3/full/big.bin`)).code).toBe(0);
      expect((await storage.object('full/big.bin'))?.equals(Buffer.alloc(2 * MiB))).toBe(true);
      await until(async () => (await readdir(join(cacheDir, 'staging'))).length === 0, 'the staging folder emptied');
      expect(existsSync(join(cacheDir, 'journal.db'))).toBe(true);
    });
  });
});
