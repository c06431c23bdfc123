/**
 * Writes into a real mount, uploaded by the daemon's engine to s3rver and Azurite: cp and rsync -a of a
 * tree, reading a file back before its upload, fsync surfacing a rejected upload, mkdir/rmdir/unlink/mv,
 * EROFS where a source cannot take uploads, and a SIGKILL in the middle of an upload resumed after restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AccountSASPermissions, BlobServiceClient, StorageSharedKeyCredential, generateAccountSASQueryParameters } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY, azuriteConnectionString, startAzurite, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { journaledParts, mountDaemon, sh, shResult, type MountedDaemon, until } from '../helpers/mount.js';

const MiB = 1024 * 1024;
let storage: ProxiedBucket;
let az: StorageServer;
let work: string;
let d: MountedDaemon;

const s3Object = (key: string) => storage.object(key);
const s3Keys = (prefix: string) => storage.keys(prefix);

const sources = () => [
  storage.source(),
  { name: 'blob', type: 'azure-blob', accountUrl: az.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY },
  storage.source({ name: 'ro', readOnly: true }),
  // Lists, but refuses every upload: a read-only SAS (a missing bucket would fail the write at open).
  { name: 'broken', type: 'azure-blob', accountUrl: az.url, container: 'media', sasToken: readOnlySas() },
];

function readOnlySas(): string {
  const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  return generateAccountSASQueryParameters({ expiresOn: new Date(Date.now() + 86_400_000), permissions: AccountSASPermissions.parse('rl'), resourceTypes: 'sco', services: 'b' }, credential).toString();
}

beforeAll(async () => {
  [storage, az] = await Promise.all([startProxiedBucket('media', { files: [{ path: 'existing/old.txt', data: Buffer.from('old remote file\n') }] }), startAzurite()]);
  await BlobServiceClient.fromConnectionString(azuriteConnectionString(az)).getContainerClient('media').createIfNotExists();
  work = await mkdtemp(join(tmpdir(), 'assetfs-writes-'));
  d = await mountDaemon({ cacheDir: join(work, 'cache'), sources: sources(), uploads: { writeBack: '500ms' }, metadataTtl: '1s' });
}, 120_000);
afterAll(async () => {
  await d?.stop();
  await Promise.allSettled([storage?.close(), az?.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe('writes into the mount', () => {
  it('cp of a multi-part file uploads it byte-exact, readable from the staged copy meanwhile', async () => {
    const data = deterministicBytes('cp-into-mount', 19 * MiB + 3);
    await writeFile(join(work, 'clip.bin'), data);
    await sh(`mkdir -p ${d.mountpoint}/s3/incoming && cp ${work}/clip.bin ${d.mountpoint}/s3/incoming/clip.bin`);
    // Before the upload has finished, the file is listed with its size and reads back from staging.
    expect(await sh(`stat -c %s ${d.mountpoint}/s3/incoming/clip.bin`)).toBe(`${data.length}\n`);
    expect((await sh(`sha256sum ${d.mountpoint}/s3/incoming/clip.bin`)).split(' ')[0]).toBe(sha256(data));
    await until(async () => (await s3Object('incoming/clip.bin'))?.length === data.length, 'the upload');
    expect(sha256((await s3Object('incoming/clip.bin'))!)).toBe(sha256(data));
    // Multipart: the 19 MiB file went up in parts (8 MiB by default).
    const parts = storage.proxy.requests().filter((r) => r.method === 'PUT' && r.path.endsWith('/incoming/clip.bin') && /partNumber=/.test(r.query));
    expect(parts.length).toBe(3);
  });

  it('rsync -a of a tree uploads every file under its final name, once', async () => {
    const tree = join(work, 'tree');
    await mkdir(join(tree, 'sub', 'deeper'), { recursive: true });
    const files: Record<string, Buffer> = {
      'a.txt': Buffer.from('alpha\n'),
      'sub/b.bin': deterministicBytes('rsync-b', 300_000),
      'sub/deeper/c.srt': Buffer.from('1\n00:00:01,000 --> 00:00:02,000\nHi\n'),
    };
    for (const [p, data] of Object.entries(files)) await writeFile(join(tree, p), data);
    storage.proxy.clearLog();
    await sh(`rsync -a ${tree}/ ${d.mountpoint}/blob/synced/`);
    const container = BlobServiceClient.fromConnectionString(azuriteConnectionString(az)).getContainerClient('media');
    const names = async () => {
      const out: string[] = [];
      for await (const b of container.listBlobsFlat({ prefix: 'synced/' })) out.push(b.name);
      return out.sort();
    };
    await until(async () => (await names()).length >= 3, 'the rsync uploads');
    await new Promise((r) => setTimeout(r, 1_500)); // nothing else (no temp names) arrives later
    expect(await names()).toEqual(['synced/a.txt', 'synced/sub/b.bin', 'synced/sub/deeper/c.srt']);
    for (const [p, data] of Object.entries(files)) expect(sha256(await container.getBlobClient(`synced/${p}`).downloadToBuffer())).toBe(sha256(data));
  });

  it('fsync waits for the upload and reports its failure', async () => {
    const ok = await shResult(`head -c 100000 /dev/urandom | dd of=${d.mountpoint}/s3/fsynced.bin conv=fsync status=none`);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect((await s3Object('fsynced.bin'))?.length).toBe(100_000); // already there when dd returned
    const bad = await shResult(`echo data | dd of=${d.mountpoint}/broken/x.txt conv=fsync status=none`);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/Input\/output error/);
    expect(d.logs()).toMatch(/upload failed/);
  });

  it('EROFS where the source cannot take uploads (read-only source, platform without uploads)', async () => {
    const r = await shResult(`touch ${d.mountpoint}/ro/new.txt`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Read-only file system/);
    expect((await shResult(`mkdir ${d.mountpoint}/ro/dir`)).stderr).toMatch(/Read-only file system/);
  });

  it('mkdir, rmdir, unlink and mv (EXDEV → copy and delete) behave like a disk', async () => {
    const m = d.mountpoint;
    await sh(`mkdir ${m}/s3/made && rmdir ${m}/s3/made`);
    expect((await shResult(`ls ${m}/s3/made`)).code).not.toBe(0);
    expect((await shResult(`rmdir ${m}/s3/existing`)).stderr).toMatch(/not empty/);
    await sh(`mv ${m}/s3/existing/old.txt ${m}/s3/existing/renamed.txt`);
    await until(async () => (await s3Keys('existing/')).join() === 'existing/renamed.txt', 'the move');
    expect((await s3Object('existing/renamed.txt'))!.toString()).toBe('old remote file\n');
    await sh(`rm ${m}/s3/existing/renamed.txt`);
    expect(await s3Keys('existing/')).toEqual([]);
  });

  it('a file still open can be removed: remote (the unlink reaches the platform) and staged (nothing is uploaded)', async () => {
    const m = d.mountpoint;
    await storage.seed([{ path: 'open/remote.txt', data: Buffer.from('still open\n') }]);
    await new Promise((r) => setTimeout(r, 1_100)); // the metadata TTL: the listing may be cached
    // bash holds fd 3 open across rm. libfuse without hard_remove renamed the open file to .fuse_hidden…
    // instead of unlinking it, and the platform's EXDEV for that rename failed the rm.
    expect(await sh(`bash -c 'exec 3< ${m}/s3/open/remote.txt; rm ${m}/s3/open/remote.txt && echo removed; exec 3<&-'`)).toBe('removed\n');
    await until(async () => (await s3Keys('open/')).length === 0, 'the remote delete');
    // fstat and writes through the open handle after rm: libfuse gives those operations a null path.
    expect(await sh(`bash -c 'exec 3> ${m}/s3/open/staged.txt; echo first >&3; rm ${m}/s3/open/staged.txt; echo second >&3; stat -L -c %s /dev/fd/3 || true; exec 3>&-; echo closed'`)).toMatch(/closed\n$/);
    await new Promise((r) => setTimeout(r, 1_500)); // past the 500 ms write-back delay
    expect(await s3Keys('open/')).toEqual([]);
    expect((await shResult(`ls -a ${m}/s3/open`)).stdout).not.toMatch(/fuse_hidden|staged/);
    expect(d.logs()).not.toMatch(/could not queue an upload/); // the removed file's close queued nothing
  });
});

describe('SIGKILL during an upload', () => {
  it('a restarted daemon finishes from the first unconfirmed part; confirmed parts are not sent again', async () => {
    const cacheDir = join(work, 'kill-cache');
    const data = deterministicBytes('killed-upload', 200 * MiB + 7);
    await writeFile(join(work, 'big.bin'), data);
    const cfg = { cacheDir, sources: sources(), uploads: { writeBack: '100ms', parallelParts: 1, partsPerFile: 1 } };
    const first = await mountDaemon(cfg);
    let confirmed: number[] = [];
    try {
      await sh(`cp ${work}/big.bin ${first.mountpoint}/s3/killed.bin`);
      await until(async () => {
        confirmed = journaledParts(cacheDir);
        return confirmed.length >= 3;
      }, 'three confirmed parts');
      await first.kill();
    } finally {
      await first.stop();
    }
    const db = new Database(join(cacheDir, 'journal.db'), { readonly: true });
    confirmed = (db.prepare('SELECT number FROM parts ORDER BY number').all() as { number: number }[]).map((r) => r.number);
    db.close();
    expect(confirmed.length).toBeGreaterThanOrEqual(3);
    expect(confirmed.length).toBeLessThan(25); // 200 MiB in 8 MiB parts: the upload was really cut short
    expect(await s3Object('killed.bin')).toBeUndefined();
    storage.proxy.clearLog();
    const second = await mountDaemon(cfg);
    try {
      await until(async () => (await s3Object('killed.bin'))?.length === data.length, 'the resumed upload', 120_000);
    } finally {
      await second.stop();
    }
    expect(sha256((await s3Object('killed.bin'))!)).toBe(sha256(data));
    const resent = storage.proxy.requests().filter((r) => r.method === 'PUT' && /partNumber=/.test(r.query)).map((r) => Number(/partNumber=(\d+)/.exec(r.query)![1]));
    expect(resent.length).toBeGreaterThan(0);
    for (const n of confirmed) expect(resent).not.toContain(n);
    expect(second.logs()).toMatch(/upload resuming/);
  });
});
