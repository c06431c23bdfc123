/**
 * The upload engine → AMS v2 (emulator, bytes in a real Azurite): staged blocks through a write SAS
 * locator, CreateFileInfos + MERGE, resume after a crash (the crashed run's locator reused, then deleted),
 * a file changed mid-upload, a platform refusal (locator limit), and mkdir/rmdir/rename/remove.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AmsProvider } from '../../src/providers/ams/index.js';
import { startAmsEmulator, type AmsEmulator } from '@assetfs/lab/emulators/ams/index.js';
import { AzureBacking } from '@assetfs/lab/emulators/common/backing.js';
import { startAzurite, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';
import { Journal } from '../../src/upload/journal.js';

import type { Uploader, UploadTarget } from '../../src/upload/types.js';
import type { Provider, RemoteEntry } from '../../src/core/types.js';
import { walk } from '../contract/provider-suite.js';
import { countingUploader, localFile, resumeUpload, testEngine, uploadUntilCrash, uploadWhileAppending } from './harness.js';

const KiB = 1024;
const PART = 256 * KiB; // Azure blocks have no minimum size: small parts keep the test quick
let azurite: StorageServer;
let backing: AzureBacking;
let emu: AmsEmulator;
let p: AmsProvider;
let dir: string;
const providers: AmsProvider[] = [];

function amsProvider(cfg: Record<string, unknown> = {}): AmsProvider {
  const c = ConfigSchema.parse({
    sources: [{ name: 'ams', type: 'ams', restUrl: emu.apiUrl, tokenUrl: emu.tokenUrl, clientId: emu.clientId, clientSecret: emu.clientSecret, ...cfg }],
  }).sources[0] as SourceConfigOf<'ams'>;
  const prov = new AmsProvider(c, { log: silentLogger });
  providers.push(prov);
  return prov;
}

beforeAll(async () => {
  azurite = await startAzurite();
  backing = new AzureBacking(azurite.url, azurite.url);
  emu = await startAmsEmulator({ azure: backing });
  p = amsProvider();
  dir = await mkdtemp(join(tmpdir(), 'assetfs-ams-upload-'));
}, 120_000);
afterAll(async () => {
  for (const x of providers) await x.close();
  await emu?.close();
  await azurite?.stop();
  await rm(dir, { recursive: true, force: true });
});

const local = (name: string, data: Buffer) => localFile(dir, name, data);
/** The bytes Azurite holds for `<asset>/<file>`, or undefined. */
async function stored(asset: string, file: string): Promise<Buffer | undefined> {
  const id = emu.findAsset(asset);
  if (!id) return undefined;
  return backing.container(emu.catalog.asset(id).container).getBlobClient(file).downloadToBuffer().catch(() => undefined);
}
async function listing(prov: Provider, ref: string): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of prov.list(ref)) out.push(e);
  return out;
}
/** The uploader with a small part size, some methods replaced, and the parts it sent. */
function wrap(inner: Uploader, over: Partial<Uploader> = {}, onPart?: (n: number) => Promise<void> | void) {
  return countingUploader(inner, { over, onPart, partSize: PART });
}
const engine = (journal: Journal, u: Uploader, partsPerFile = 2) => testEngine(journal, u, { partsPerFile });
const t = (path: string): UploadTarget => ({ source: 'ams', path: path.split('/') });
const assetRef = (name: string) => `${emu.findAsset(name)}/`;

describe('upload engine → ams', () => {
  it('uploads files of several blocks byte-exact into a new asset; the provider lists them with the same version', async () => {
    const a = deterministicBytes('ams-a', 3 * PART + 4321); // 4 parts
    const b = deterministicBytes('ams-b', 2 * PART + 1); // 3 parts
    const fa = await local('a.mp4', a);
    const fb = await local('b.mp4', b);
    const journal = new Journal(join(dir, 'a.db'));
    let maxWrite = 0;
    const { u, sent } = wrap(p.uploader(), {}, () => void (maxWrite = Math.max(maxWrite, emu.liveWriteLocators())));
    const e = engine(journal, u);
    e.start();
    const ja = e.enqueue({ localPath: fa.path, source: 'ams', remotePath: 'uploads/a.mp4', producer: 'sync', size: fa.size, mtimeMs: fa.mtimeMs, baseVersion: null });
    const jb = e.enqueue({ localPath: fb.path, source: 'ams', remotePath: 'uploads/b.mp4', producer: 'sync', size: fb.size, mtimeMs: fb.mtimeMs, baseVersion: null });
    await Promise.all([e.waitFor(ja.id), e.waitFor(jb.id)]);
    await e.stop();
    expect(sent.sort()).toEqual([1, 1, 2, 2, 3, 3, 4]);
    expect(sha256((await stored('uploads', 'a.mp4'))!)).toBe(sha256(a));
    expect(sha256((await stored('uploads', 'b.mp4'))!)).toBe(sha256(b));
    // One asset made by begin (sync into a new folder), one write locator shared, none left afterwards.
    expect(emu.catalog.assetList.filter((x) => x.Name === 'uploads')).toHaveLength(1);
    expect(maxWrite).toBe(1);
    expect(emu.liveWriteLocators()).toBe(0);
    expect(emu.liveWritePolicies()).toBe(0);
    const listed = await walk(p, 'uploads/a.mp4');
    expect(listed).toMatchObject({ kind: 'file', size: a.length });
    expect(await p.uploader().remoteVersion(t('uploads/a.mp4'))).toBe(listed.version);
    expect(journal.synced(fa.path)).toMatchObject({ remoteVersion: listed.version });
    const files = [...emu.catalog.files.values()].filter((f) => f.ParentAssetId === emu.findAsset('uploads'));
    expect(files.map((f) => [f.Name, f.MimeType, f.ContentFileSize]).sort()).toEqual([
      ['a.mp4', 'video/mp4', a.length],
      ['b.mp4', 'video/mp4', b.length],
    ]);
    expect(files.filter((f) => f.IsPrimary)).toHaveLength(1); // whichever finished first
    // Reading through the provider's read locator gives the same bytes.
    const read = await fetch((await p.locate({ source: 'ams', ref: listed.ref, version: listed.version, size: listed.size })).url);
    expect(sha256(Buffer.from(await read.arrayBuffer()))).toBe(sha256(a));
    journal.close();
  });

  it('after a crash, a second run sends only the unconfirmed blocks, reuses the crashed run\'s locator and deletes it', async () => {
    const data = deterministicBytes('ams-resume', 4 * PART + 99); // 5 parts
    const f = await local('resume.mov', data);
    const db = join(dir, 'b.db');
    const journal = new Journal(db);
    const first = amsProvider(); // the crashed process
    const id = await uploadUntilCrash(journal, first.uploader(), { localPath: f.path, source: 'ams', remotePath: 'uploads/resume.mov', producer: 'sync', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null }, 3, PART);
    // Nothing more is recorded, the write locator stays behind.
    expect(journal.parts(id).map((x) => x.number)).toEqual([1, 2]);
    expect(emu.liveWriteLocators()).toBe(1);
    expect(await listing(p, assetRef('uploads'))).not.toContainEqual(expect.objectContaining({ name: 'resume.mov' }));
    journal.close();

    const posts = () => emu.server.requests().filter((r) => r.method === 'POST' && r.path === '/api/Locators').length;
    const before = posts();
    const second = amsProvider(); // the restarted process
    const w2 = await resumeUpload(db, second.uploader(), id, PART);
    expect(w2.sent.sort()).toEqual([3, 4, 5]);
    expect(posts()).toBe(before); // the journaled locator was still alive: adopted, not replaced
    expect(sha256((await stored('uploads', 'resume.mov'))!)).toBe(sha256(data));
    expect(emu.liveWriteLocators()).toBe(0);
    expect(emu.liveWritePolicies()).toBe(0);
    expect((await walk(second, 'uploads/resume.mov')).size).toBe(data.length);
    w2.journal.close();
  });

  it('a file modified during its upload ends remotely with the new content (and a new version)', async () => {
    const data = deterministicBytes('ams-change', 2 * PART + 5);
    const f = await local('change.mp4', data);
    const journal = new Journal(join(dir, 'c.db'));
    const oldVersion = await p.uploader().remoteVersion(t('uploads/a.mp4'));
    // Over an existing file whose version we know (no conflict): the AssetFile keeps its Id, gets the new size and version.
    const id = await uploadWhileAppending(journal, p.uploader(), { localPath: f.path, source: 'ams', remotePath: 'uploads/a.mp4', producer: 'sync', size: f.size, mtimeMs: f.mtimeMs, baseVersion: oldVersion! }, 'tail written during the upload', { partSize: PART });
    const want = Buffer.concat([data, Buffer.from('tail written during the upload')]);
    expect(sha256((await stored('uploads', 'a.mp4'))!)).toBe(sha256(want));
    const listed = await walk(p, 'uploads/a.mp4');
    expect(listed.size).toBe(want.length);
    expect(listed.version).not.toBe(oldVersion);
    expect(journal.get(id)!.remotePath).toBe('uploads/a.mp4'); // no conflict copy
    expect(journal.synced(f.path)?.remoteVersion).toBe(listed.version);
    expect((await listing(p, assetRef('uploads'))).filter((x) => x.name === 'a.mp4')).toHaveLength(1);
    expect(emu.liveWriteLocators()).toBe(0);
    expect(emu.liveWritePolicies()).toBe(0);
    journal.close();
  });

  it('a stale base version makes a conflict copy whose name AMS accepts (one dot: name-conflict-host-time.ext)', async () => {
    const data = deterministicBytes('ams-conflict', PART + 9);
    const f = await local('conflict.mp4', data);
    const journal = new Journal(join(dir, 'conflict.db'));
    const e = engine(journal, p.uploader());
    e.start();
    const job = e.enqueue({ localPath: f.path, source: 'ams', remotePath: 'uploads/a.mp4', producer: 'sync', size: f.size, mtimeMs: f.mtimeMs, baseVersion: 'a version the platform no longer has' });
    await e.waitFor(job.id);
    await e.stop();
    const copy = journal.get(job.id)!.remotePath;
    expect(copy).toMatch(/^uploads\/a-conflict-[A-Za-z0-9_-]+-\d{8}T\d{6}Z\.mp4$/);
    const name = copy.split('/')[1]!;
    expect(sha256((await stored('uploads', name))!)).toBe(sha256(data));
    expect(sha256((await stored('uploads', 'a.mp4'))!)).not.toBe(sha256(data)); // theirs is kept
    journal.close();
  });

  it('a refusal of the platform (no free locator slot) reaches waitFor with its message; nothing is left behind', async () => {
    const asset = emu.createAsset('crowded');
    await emu.putFile(asset, 'seed.txt', Buffer.from('seed'));
    const api = (path: string, json: unknown, method = 'POST') =>
      fetch(`${emu.apiUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${emu.issueToken()}`, 'x-ms-version': '2.19', accept: 'application/json', 'content-type': 'application/json' },
        body: json === undefined ? undefined : JSON.stringify(json),
      });
    const policy = (await (await api('AccessPolicies', { Name: 'someone-else', DurationInMinutes: 60, Permissions: 1 })).json()) as { Id: string };
    const foreign: string[] = [];
    for (let i = 0; i < 5; i++) foreign.push(((await (await api('Locators', { AccessPolicyId: policy.Id, AssetId: asset, Type: 1 })).json()) as { Id: string }).Id);
    const f = await local('late.mp4', Buffer.from('late'));
    const journal = new Journal(join(dir, 'd.db'));
    const e = engine(journal, wrap(p.uploader()).u);
    e.start();
    const job = e.enqueue({ localPath: f.path, source: 'ams', remotePath: 'crowded/late.mp4', producer: 'mount', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
    await expect(e.waitFor(job.id)).rejects.toThrow(/Locator limit exceeded: an asset can have at most 5 locators/);
    expect(emu.liveWritePolicies()).toBe(0); // the policy made for the refused locator was deleted
    expect(emu.liveWriteLocators()).toBe(0);
    await api(`Locators('${encodeURIComponent(foreign[0]!)}')`, undefined, 'DELETE');
    e.retryNow();
    await e.waitFor(job.id);
    await e.stop();
    expect((await stored('crowded', 'late.mp4'))!.toString()).toBe('late');
    expect(emu.liveWriteLocators()).toBe(0);
    journal.close();
  });

  it('a write locator revoked mid-upload is replaced; a new one that has not propagated yet is waited for', async () => {
    const data = deterministicBytes('ams-revoke', 3 * PART);
    const f = await local('revoke.mp4', data);
    const journal = new Journal(join(dir, 'r.db'));
    let revoked = false;
    const { u } = wrap(p.uploader(), {}, async (n) => {
      if (n !== 2 || revoked) return;
      revoked = true; // someone deletes our locator: storage refuses its SAS from now on
      const l = [...emu.catalog.locators.values()].find((x) => x.permissions.includes('w'))!;
      await emu.catalog.deleteLocator(l.Id);
      emu.locatorDelayMs = 1_500; // and the replacement takes a while to work (AMS: 30–40 s)
    });
    const e = engine(journal, u, 1);
    e.start();
    const started = Date.now();
    const job = e.enqueue({ localPath: f.path, source: 'ams', remotePath: 'uploads/revoke.mp4', producer: 'mount', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
    try {
      await e.waitFor(job.id); // one attempt: the refusals are handled inside the uploader
    } finally {
      emu.locatorDelayMs = 0;
      await e.stop();
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    expect(journal.get(job.id)!.attempts).toBe(0);
    expect(sha256((await stored('uploads', 'revoke.mp4'))!)).toBe(sha256(data));
    expect(emu.liveWriteLocators()).toBe(0);
    expect(emu.liveWritePolicies()).toBe(0);
    journal.close();
  });

  it('mkdir makes an asset, rename renames it, remove and rmdir delete; files cannot be renamed, nothing nests', async () => {
    const u = p.uploader();
    await u.mkdir!(t('new-asset'));
    expect((await walk(p, 'new-asset')).kind).toBe('dir');
    await expect(u.mkdir!(t('new-asset'))).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(u.mkdir!(t('new-asset/sub'))).rejects.toMatchObject({ code: 'ENOTSUP' });
    // Upload into the (empty) asset made by mkdir.
    const f = await local('clip.srt', Buffer.from('1\n00:00:01,000 --> 00:00:02,000\nhi\n'));
    const journal = new Journal(join(dir, 'e.db'));
    const e = engine(journal, wrap(u).u);
    e.start();
    const job = e.enqueue({ localPath: f.path, source: 'ams', remotePath: 'new-asset/clip.srt', producer: 'mount', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
    await e.waitFor(job.id);
    await e.stop();
    journal.close();
    await expect(u.rename!(t('new-asset/clip.srt'), t('new-asset/other.srt'))).rejects.toMatchObject({ code: 'EXDEV' });
    await expect(u.rmdir!(t('new-asset'))).rejects.toMatchObject({ code: 'ENOTEMPTY' });

    await u.rename!(t('new-asset'), t('renamed-asset'));
    const root = await listing(p, '');
    expect(root.map((x) => x.name)).toContain('renamed-asset');
    expect(root.map((x) => x.name)).not.toContain('new-asset');
    expect((await walk(p, 'renamed-asset/clip.srt')).size).toBe(f.size);

    await u.remove!(t('renamed-asset/clip.srt'));
    expect(await listing(p, assetRef('renamed-asset'))).toEqual([]);
    expect(await stored('renamed-asset', 'clip.srt')).toBeUndefined(); // the blob went with the AssetFile
    expect(await u.remoteVersion(t('renamed-asset/clip.srt'))).toBeUndefined();
    await expect(u.remove!(t('renamed-asset/clip.srt'))).rejects.toMatchObject({ code: 'ENOENT' });

    const container = emu.catalog.asset(emu.findAsset('renamed-asset')!).container;
    await u.rmdir!(t('renamed-asset'));
    expect((await listing(p, '')).map((x) => x.name)).not.toContain('renamed-asset');
    expect(await backing.container(container).exists()).toBe(false);
  });

  it('a storage-encrypted asset takes no uploads (its blobs must be AMS ciphertext)', async () => {
    emu.createAsset('sealed', { options: 1 });
    await expect(p.uploader().begin(t('sealed/x.mp4'), 1)).rejects.toMatchObject({ code: 'EACCES', message: expect.stringMatching(/storage-encrypted/) });
    expect(emu.liveWriteLocators()).toBe(0);
  });

  it('names break no AMS rule: EINVAL with the rule, before anything is sent', async () => {
    const u = p.uploader();
    const calls = emu.server.requests().length;
    await expect(u.mkdir!(t('a:b'))).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/cannot contain/) });
    await expect(u.begin(t('uploads/no-extension'), 1)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/exactly one "\."/) });
    await expect(u.begin(t('uploads/two.dots.mp4'), 1)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(u.begin(t(`uploads/${'x'.repeat(258)}.mp4`), 1)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/at most 260/) });
    await expect(u.begin(t('uploads/deeper/c.mp4'), 1)).rejects.toMatchObject({ code: 'ENOTSUP' });
    await expect(u.rename!(t('uploads'), t('bad#name'))).rejects.toMatchObject({ code: 'EINVAL' });
    expect(emu.server.requests().length).toBe(calls);
  });

  it('abort and close delete the write locator and policy; the emulator takes MERGE tunnelled through POST', async () => {
    const own = amsProvider();
    const u = own.uploader();
    const id1 = await u.begin(t('uploads/x.mp4'), 10);
    expect(emu.liveWriteLocators()).toBe(1);
    await u.abort(t('uploads/x.mp4'), id1);
    expect(emu.liveWriteLocators()).toBe(0);
    expect(emu.liveWritePolicies()).toBe(0);
    await u.begin(t('uploads/y.mp4'), 10);
    expect(emu.liveWriteLocators()).toBe(1);
    providers.splice(providers.indexOf(own), 1);
    await own.close();
    expect(emu.liveWriteLocators()).toBe(0);
    expect(emu.liveWritePolicies()).toBe(0);

    const file = [...emu.catalog.files.values()].find((f) => f.Name === 'b.mp4')!;
    const r = await fetch(`${emu.apiUrl}Files('${encodeURIComponent(file.Id)}')`, {
      method: 'POST',
      headers: { authorization: `Bearer ${emu.issueToken()}`, 'x-ms-version': '2.19', 'x-http-method': 'MERGE', 'content-type': 'application/json' },
      body: JSON.stringify({ MimeType: 'video/x-test' }),
    });
    expect(r.status).toBe(204);
    expect(file.MimeType).toBe('video/x-test');
  });

  it('a read-only source offers no uploads', () => {
    expect(amsProvider({ readOnly: true }).caps.upload).toBe(false);
    expect(p.caps.upload).toBe(true);
  });
});
