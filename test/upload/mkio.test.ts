/**
 * The upload engine → MK.IO (emulator; bytes in a real Azurite, and in a real s3rver behind the fault
 * proxy). MK.IO has no upload endpoint, so the uploader writes straight to the asset's storage with the
 * source's `storage:` credential, checked by the storage server itself. Per storage kind: multipart
 * byte-exact and listed by the provider with version = remoteVersion(), resume after a crash, a file
 * changed mid-upload, refusals (MK.IO's, the storage's, another account's asset), and the hooks
 * mkdir (create asset) / rmdir (delete empty asset) / remove (delete from storage); no rename.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MkioProvider } from '../../src/providers/mkio/index.js';
import { MKIO_DEFAULT_TOKEN, startMkioEmulator, type MkioEmulator, type StorageCredentialConfig, type StorageKind } from '@assetfs/lab/emulators/mkio/index.js';
import { AzureBacking } from '@assetfs/lab/emulators/common/backing.js';
import { startAzurite, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';
import { Journal } from '../../src/upload/journal.js';
import { startS3BackedStorage, type S3BackedStorage } from '../helpers/s3-backed.js';

import type { Uploader, UploadTarget } from '../../src/upload/types.js';
import type { RemoteEntry } from '../../src/core/types.js';
import { countingUploader, localFile, resumeUpload, testEngine, uploadUntilCrash, uploadWhileAppending } from './harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let az: StorageServer, storage: S3BackedStorage, emu: MkioEmulator, dir: string;
const providers: MkioProvider[] = [];

function mkio(storage: StorageCredentialConfig | undefined, extra: Record<string, unknown> = {}): MkioProvider {
  const cfg = ConfigSchema.parse({ sources: [{ name: 'mk', type: 'mkio', baseUrl: emu.url, project: emu.project, token: MKIO_DEFAULT_TOKEN, storage, ...extra }] }).sources[0] as SourceConfigOf<'mkio'>;
  const p = new MkioProvider(cfg, { log: silentLogger });
  providers.push(p);
  return p;
}

beforeAll(async () => {
  [az, storage] = await Promise.all([startAzurite(), startS3BackedStorage('mkio')]);
  emu = await startMkioEmulator({ azure: new AzureBacking(az.url, az.url), s3: storage.backing });
  dir = await mkdtemp(join(tmpdir(), 'assetfs-mkio-upload-'));
}, 120_000);
afterAll(async () => {
  for (const p of providers) await p.close();
  await emu?.close();
  await Promise.all([az?.stop(), storage?.close()]);
  await rm(dir, { recursive: true, force: true });
});

const local = (name: string, data: Buffer) => localFile(dir, name, data);

/** The stored bytes of `asset/path`, read from the real storage server (not through our code). */
async function stored(asset: string, path: string): Promise<Buffer | undefined> {
  const rec = emu.asset(asset);
  if (!rec) return undefined;
  const kind = rec.storageAccountName === 'primary-azure' ? 'azure' : 's3';
  const res = await fetch(await emu.store.signedGet(kind, rec.container, [rec.subPath, path].filter(Boolean).join('/'), 60_000));
  return res.status === 200 ? Buffer.from(await res.arrayBuffer()) : undefined;
}

async function list(p: MkioProvider, ref: string): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of p.list(ref)) out.push(e);
  return out;
}

/** Small parts (S3's 5 MiB minimum; Azure blocks have none); counts and optionally intercepts parts. */
function counting(inner: Uploader, part: number, onPart?: (n: number) => Promise<void> | void) {
  return countingUploader(inner, { partSize: part, onPart });
}

const engine = (journal: Journal, uploader: Uploader, over: Parameters<typeof testEngine>[2] = {}) => testEngine(journal, uploader, over);

const other = (k: StorageKind): StorageKind => (k === 'azure' ? 's3' : 'azure');

for (const kind of ['azure', 's3'] as const) {
  describe.sequential(`upload engine → mkio (${kind} storage)`, () => {
    const PART = kind === 'azure' ? 512 * KiB : 5 * MiB;
    const A = `${kind}-clips`; // pre-made asset with a subPath
    let p: MkioProvider;
    const tgt = (path: string): UploadTarget => ({ source: 'mk', path: path.split('/') });
    beforeAll(async () => {
      await emu.createAsset(A, { storage: kind, subPath: 'incoming' });
      p = mkio(emu.storageCredential(kind));
    });

    it('caps: uploads only with a storage credential and not read-only', () => {
      expect(p.caps.upload).toBe(true);
      expect(mkio(undefined).caps.upload).toBe(false);
      expect(mkio(emu.storageCredential(kind), { readOnly: true }).caps.upload).toBe(false);
      expect((p.uploader() as Uploader).rename).toBeUndefined(); // the name is the key: mv copies
    });

    it('uploads a file of 3 parts byte-exact into the asset storage; the provider lists it with version = remoteVersion()', async () => {
      const data = deterministicBytes(`multi-${kind}`, 2 * PART + 17);
      const f = await local(`multi-${kind}.bin`, data);
      const journal = new Journal(join(dir, `j1-${kind}.db`));
      const { u, sent } = counting(p.uploader(), PART);
      const e = engine(journal, u);
      e.start();
      const job = e.enqueue({ localPath: f.path, source: 'mk', remotePath: `${A}/in/multi.bin`, producer: 'sync', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
      await e.waitFor(job.id);
      await e.stop();
      expect(sent.sort()).toEqual([1, 2, 3]);
      expect(sha256((await stored(A, 'in/multi.bin'))!)).toBe(sha256(data)); // below the asset's subPath
      const version = await p.uploader().remoteVersion(tgt(`${A}/in/multi.bin`));
      expect(version).toBeTruthy();
      const listed = (await list(p, `${A}/in/`)).find((x) => x.name === 'multi.bin');
      expect(listed).toMatchObject({ kind: 'file', size: data.length, version });
      expect(await p.stat(listed!.ref)).toMatchObject({ size: data.length, version });
      emu.listingDetail = true; // the listing's own etag (GUESS extension) is the same version
      try {
        expect((await list(p, `${A}/in/`)).find((x) => x.name === 'multi.bin')?.version).toBe(version);
      } finally {
        emu.listingDetail = false;
      }
      expect(journal.synced(f.path)).toMatchObject({ size: data.length, sha256: sha256(data) });
      journal.close();
    });

    it('after a crash, resumes from the journal and sends only the parts not yet confirmed', async () => {
      const data = deterministicBytes(`resume-${kind}`, 4 * PART + 5); // 5 parts
      const f = await local(`resume-${kind}.bin`, data);
      const dbFile = join(dir, `j2-${kind}.db`);
      const journal = new Journal(dbFile);
      const job = { localPath: f.path, source: 'mk', remotePath: `${A}/resume.bin`, producer: 'sync' as const, size: f.size, mtimeMs: f.mtimeMs, baseVersion: null };
      const id = await uploadUntilCrash(journal, p.uploader(), job, 3, PART);
      expect(journal.get(id)!.state).toBe('uploading');
      expect(journal.parts(id).map((x) => x.number)).toEqual([1, 2]);
      expect(await stored(A, 'resume.bin')).toBeUndefined(); // nothing visible before complete
      journal.close();

      const fresh = mkio(emu.storageCredential(kind)); // a new daemon: no cached lookups
      const second = await resumeUpload(dbFile, fresh.uploader(), id, PART);
      expect(second.sent.sort()).toEqual([3, 4, 5]);
      expect(sha256((await stored(A, 'resume.bin'))!)).toBe(sha256(data));
      second.journal.close();
    });

    it('a file modified during its upload ends remotely with the new content', async () => {
      const data = deterministicBytes(`changing-${kind}`, 2 * PART);
      const tail = Buffer.from('tail written during the upload');
      const f = await local(`changing-${kind}.bin`, data);
      const journal = new Journal(join(dir, `j3-${kind}.db`));
      const job = { localPath: f.path, source: 'mk', remotePath: `${A}/changing.bin`, producer: 'sync' as const, size: f.size, mtimeMs: f.mtimeMs, baseVersion: null };
      await uploadWhileAppending(journal, p.uploader(), job, tail, { partSize: PART });
      expect(sha256((await stored(A, 'changing.bin'))!)).toBe(sha256(Buffer.concat([data, tail])));
      journal.close();
    });

    it('refusals reach waitFor with the platform message: MK.IO (asset name), storage (credential), another account', async () => {
      const journal = new Journal(join(dir, `j4-${kind}.db`));
      let runs = 0;
      const run = async (uploader: Uploader, remotePath: string) => {
        const f = await local(`rejected-${kind}-${++runs}.bin`, Buffer.from('x'));
        const e = engine(journal, counting(uploader, PART).u);
        e.start();
        const job = e.enqueue({ localPath: f.path, source: 'mk', remotePath, producer: 'mount', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
        try {
          await e.waitFor(job.id);
        } finally {
          await e.stop();
        }
      };
      // A new top-level folder becomes an asset; MK.IO refuses this name (400 with its error body).
      await expect(run(p.uploader(), 'bad?name/x.bin')).rejects.toThrow(/Asset names are 1–260 characters/);
      expect(emu.asset('bad?name')).toBeUndefined();
      // The storage server itself checks the credential (a read-only SAS; s3rver checks the key id only, not SigV4).
      const wrong: StorageCredentialConfig = kind === 'azure' ? emu.storageCredential('azure', { permissions: 'rl' }) : { ...emu.storageCredential('s3'), accessKeyId: 'NOT-S3RVER' };
      await expect(run(mkio(wrong).uploader(), `${A}/denied.bin`)).rejects.toThrow(/access denied/);
      expect(await stored(A, 'denied.bin')).toBeUndefined();
      // An asset on the other storage account is not written with this account's credential.
      await emu.createAsset(`${kind}-elsewhere`, { storage: other(kind) });
      await expect(run(p.uploader(), `${kind}-elsewhere/x.bin`)).rejects.toThrow(/lives in storage account "primary-/);
      // A file at the project root is not inside any asset.
      await expect(run(p.uploader(), 'loose.bin')).rejects.toThrow(/project root holds assets only/);
      journal.close();
    });

    it('mkdir creates an asset (container from the name, unique), begin() into a new asset too; deeper mkdir answers "prefix" (kept locally by the mount)', async () => {
      const up = p.uploader();
      const name = `New ${kind} Asset!`;
      await up.mkdir!(tgt(name));
      const rec = emu.asset(name)!;
      expect(rec).toMatchObject({ storageAccountName: kind === 'azure' ? 'primary-azure' : 'primary-s3', container: `new-${kind}-asset` });
      expect((await list(p, '')).some((x) => x.name === name && x.kind === 'dir')).toBe(true);
      await expect(up.mkdir!(tgt(name))).rejects.toMatchObject({ code: 'EEXIST' });
      await expect(up.mkdir!(tgt(`${name}/sub/deeper`))).resolves.toBe('prefix');
      // Another asset already holds the container its name derives to: a suffix keeps it unique.
      await emu.createAsset(`${kind}-holder`, { storage: kind, container: `dup-${kind}` });
      await up.mkdir!(tgt(`DUP ${kind}`));
      expect(emu.asset(`DUP ${kind}`)!.container).toMatch(new RegExp(`^dup-${kind}-[0-9a-f]{6}$`));
      // A sync of a new top-level folder: the asset appears with the file.
      const f = await local(`auto-${kind}.txt`, Buffer.from('made by begin'));
      const journal = new Journal(join(dir, `j5-${kind}.db`));
      const e = engine(journal, counting(up, PART).u);
      e.start();
      const job = e.enqueue({ localPath: f.path, source: 'mk', remotePath: `auto-${kind}/a/b.txt`, producer: 'sync', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
      await e.waitFor(job.id);
      await e.stop();
      journal.close();
      expect(emu.asset(`auto-${kind}`)?.container).toBe(`auto-${kind}`);
      expect((await list(p, `auto-${kind}/a/`)).map((x) => [x.name, x.size])).toEqual([['b.txt', 13]]);
    });

    it('remove deletes the file from storage; rmdir deletes an empty asset and refuses a full one', async () => {
      const up = p.uploader();
      const name = `${kind}-gone`;
      await up.mkdir!(tgt(name));
      const f = await local(`gone-${kind}.txt`, Buffer.from('short-lived'));
      const journal = new Journal(join(dir, `j6-${kind}.db`));
      const e = engine(journal, counting(up, PART).u);
      e.start();
      const job = e.enqueue({ localPath: f.path, source: 'mk', remotePath: `${name}/dir/f.txt`, producer: 'mount', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
      await e.waitFor(job.id);
      await e.stop();
      journal.close();
      expect((await list(p, `${name}/`)).map((x) => x.name)).toEqual(['dir']);
      await expect(up.rmdir!(tgt(name))).rejects.toMatchObject({ code: 'ENOTEMPTY' });
      await up.remove!(tgt(`${name}/dir/f.txt`));
      expect(await stored(name, 'dir/f.txt')).toBeUndefined();
      expect(await up.remoteVersion(tgt(`${name}/dir/f.txt`))).toBeUndefined();
      await expect(p.stat(`${encodeURIComponent(name)}/dir/f.txt`)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await list(p, `${name}/`)).toEqual([]); // the folder went with its last file
      await expect(up.rmdir!(tgt(`${name}/dir`))).resolves.toBeUndefined();
      await up.rmdir!(tgt(name));
      expect(emu.asset(name)).toBeUndefined();
      await expect(p.stat(`${encodeURIComponent(name)}/`)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await up.remoteVersion(tgt(`${name}/dir/f.txt`))).toBeUndefined();
    });
  });
}

describe('mkio uploads with a container SAS (Azure)', () => {
  it('write into the one asset whose container the SAS names', async () => {
    const rec = await emu.createAsset('sas-scoped', { storage: 'azure', subPath: 'in' });
    const up = mkio(emu.storageCredential('azure', { container: rec.container })).uploader();
    const f = await local('sas.bin', deterministicBytes('sas', 300 * KiB));
    const journal = new Journal(join(dir, 'j7.db'));
    const e = engine(journal, counting(up, 128 * KiB).u);
    e.start();
    const job = e.enqueue({ localPath: f.path, source: 'mk', remotePath: 'sas-scoped/sas.bin', producer: 'sync', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
    await e.waitFor(job.id);
    await e.stop();
    journal.close();
    expect(sha256((await stored('sas-scoped', 'sas.bin'))!)).toBe(sha256(deterministicBytes('sas', 300 * KiB)));
  });
});
