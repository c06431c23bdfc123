/**
 * The upload engine → Nomad (emulator): multipart upload through presigned S3 part URLs into s3rver
 * (behind the expiry-enforcing proxy), resume after a crash, a lost session, a file changed mid-upload,
 * rejections with the platform's message, expired part URLs, and the folder hooks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { NomadProvider } from '../../src/providers/nomad/index.js';
import { startNomadEmulator, type NomadEmulator } from '@assetfs/lab/emulators/nomad/index.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';
import { Journal } from '../../src/upload/journal.js';

import type { Uploader, UploadTarget } from '../../src/upload/types.js';
import type { RemoteEntry } from '../../src/core/types.js';
import { walk } from '../contract/provider-suite.js';
import { countingUploader, localFile, resumeUpload, testEngine, uploadUntilCrash, uploadWhileAppending } from './harness.js';
import { startS3BackedStorage, type S3BackedStorage } from '../helpers/s3-backed.js';
import type { FaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';

const MiB = 1024 * 1024;
const USER = { userName: 'uploader@nomad.example', password: 'up-pw' };
const PART = 5 * MiB; // S3's (and the emulator's) smallest part

let storage: S3BackedStorage;
let proxy: FaultProxy;
let emu: NomadEmulator;
let p: NomadProvider;
let dir: string;

beforeAll(async () => {
  storage = await startS3BackedStorage('nomad-up');
  ({ proxy } = storage);
  emu = await startNomadEmulator({ s3: storage.backing, users: [USER] });
  emu.ensurePath('media/in/afolder');
  const cfg = ConfigSchema.parse({
    sources: [{ name: 'nm', type: 'nomad', baseUrl: emu.url, username: USER.userName, password: USER.password, applicationId: randomUUID() }],
  }).sources[0] as SourceConfigOf<'nomad'>;
  p = new NomadProvider(cfg, { log: silentLogger });
  dir = await mkdtemp(join(tmpdir(), 'assetfs-nomad-upload-'));
});
afterAll(async () => {
  await p?.close();
  await emu?.close();
  await storage?.close();
  await rm(dir, { recursive: true, force: true });
});

const local = (name: string, data: Buffer) => localFile(dir, name, data);
/** The stored bytes of the catalog file at `path` (read straight from s3rver). */
async function stored(path: string): Promise<Buffer | undefined> {
  const rec = emu.find(path);
  return rec?.type === 'File' ? storage.object(rec.objectKey) : undefined;
}
async function list(ref: string): Promise<RemoteEntry[]> {
  const out: RemoteEntry[] = [];
  for await (const e of p.list(ref)) out.push(e);
  return out;
}
const T = (path: string): UploadTarget => ({ source: 'nm', path: path.split('/') });
/** The uploader with some methods replaced (its methods live on the prototype: bind them). */
function wrap(inner: Uploader, over: Partial<Uploader> = {}, onPart?: (n: number) => Promise<void> | void) {
  return countingUploader(inner, { over, onPart });
}
const engine = (journal: Journal, u: Uploader, partsPerFile = 2) => testEngine(journal, u, { partsPerFile });
const uploads = (what: RegExp) => emu.server.requests().filter((r) => what.test(r.path));
const job = (f: { path: string; size: number; mtimeMs: number }, remotePath: string) =>
  ({ localPath: f.path, source: 'nm', remotePath, producer: 'sync' as const, size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });

describe('upload engine → nomad', () => {
  it('uploads a file of several parts byte-exact into folders it creates; nothing shows before completion; listed with remoteVersion', async () => {
    const data = deterministicBytes('nomad-multi', 3 * PART + 17); // 4 parts
    const f = await local('multi.bin', data);
    const journal = new Journal(join(dir, 'a.db'));
    const inner = p.uploader({ partSize: PART });
    const seenEarly: unknown[] = [];
    const { u, sent } = wrap(inner, {}, () => void seenEarly.push(emu.find('media/new/deeper/multi.bin'), emu.find('media/new')));
    const e = engine(journal, u);
    e.start();
    const j = e.enqueue(job(f, 'media/new/deeper/multi.bin'));
    await e.waitFor(j.id);
    await e.stop();
    expect(sent.sort()).toEqual([1, 2, 3, 4]);
    expect(seenEarly.every((x) => x === undefined)).toBe(true); // neither the file nor its new folders before complete
    expect(sha256((await stored('media/new/deeper/multi.bin'))!)).toBe(sha256(data));
    const listed = await walk(p, 'media/new/deeper/multi.bin');
    expect(listed).toMatchObject({ kind: 'file', size: data.length });
    expect(listed.unreadable).toBeUndefined();
    expect(await inner.remoteVersion(T('media/new/deeper/multi.bin'))).toBe(listed.version);
    expect(journal.synced(f.path)).toMatchObject({ size: data.length, sha256: sha256(data), remoteVersion: listed.version });
    // The documented calls, once each per part: start, PUT + part/complete, complete.
    expect(uploads(/^\/api\/asset\/upload\/start$/).length).toBeGreaterThanOrEqual(1);
    expect(uploads(/^\/api\/asset\/upload\/part\/[^/]+\/complete$/).length).toBe(4);
    expect(emu.uploads.sessions.size).toBe(0);
    journal.close();
  });

  it('after a crash, resumes the same session and sends only the parts the platform has not confirmed', async () => {
    const data = deterministicBytes('nomad-resume', 4 * PART + 5); // 5 parts
    const f = await local('resume.bin', data);
    const db = join(dir, 'b.db');
    const journal = new Journal(db);
    const id = await uploadUntilCrash(journal, p.uploader({ partSize: PART }), job(f, 'media/in/resume.bin'), 3);
    const uploadId = journal.get(id)!.uploadId!;
    expect(journal.parts(id).map((x) => x.number)).toEqual([1, 2]);
    expect(emu.uploads.sessions.get(uploadId)!.parts.map((x) => x.etag !== null)).toEqual([true, true, false, false, false]);
    journal.close();

    emu.server.clearLog();
    const second = await resumeUpload(db, p.uploader({ partSize: PART }), id); // a new process: nothing cached
    expect(second.sent.sort()).toEqual([3, 4, 5]);
    expect(uploads(new RegExp(`^/api/asset/upload/${uploadId}$`)).length).toBeGreaterThanOrEqual(1); // the resume query
    expect(uploads(/^\/api\/asset\/upload\/start$/).length).toBe(0); // same session, no new one
    expect(sha256((await stored('media/in/resume.bin'))!)).toBe(sha256(data));
    second.journal.close();
  });

  it('a session the platform forgot is begun anew, all parts sent again', async () => {
    const data = deterministicBytes('nomad-lost', 2 * PART + 1);
    const f = await local('lost.bin', data);
    const db = join(dir, 'c.db');
    const journal = new Journal(db);
    const id = await uploadUntilCrash(journal, p.uploader({ partSize: PART }), { ...job(f, 'media/in/lost.bin'), producer: 'mount' }, 2);
    const oldId = journal.get(id)!.uploadId!;
    journal.close();
    await emu.uploads.expire(oldId);

    const second = await resumeUpload(db, p.uploader({ partSize: PART }), id);
    expect(second.sent.sort()).toEqual([1, 2, 3]);
    expect(second.journal.get(id)!.uploadId).not.toBe(oldId);
    expect(sha256((await stored('media/in/lost.bin'))!)).toBe(sha256(data));
    second.journal.close();
  });

  it('a file modified during its upload ends remotely with the new content', async () => {
    const data = deterministicBytes('nomad-changing', 2 * PART + 100);
    const f = await local('changing.bin', data);
    const tail = Buffer.from('tail written during the upload');
    const journal = new Journal(join(dir, 'd.db'));
    await uploadWhileAppending(journal, p.uploader({ partSize: PART }), job(f, 'media/in/changing.bin'), tail);
    expect(sha256((await stored('media/in/changing.bin'))!)).toBe(sha256(Buffer.concat([data, tail])));
    expect((await walk(p, 'media/in/changing.bin')).size).toBe(data.length + tail.length);
    journal.close();
  });

  it('an upload the platform rejects reaches waitFor with the platform message', async () => {
    const f = await local('afolder', Buffer.from('not a folder'));
    const journal = new Journal(join(dir, 'e.db'));
    const e = engine(journal, p.uploader({ partSize: PART }));
    e.start();
    const j = e.enqueue({ ...job(f, 'media/in/afolder'), producer: 'mount' });
    await expect(e.waitFor(j.id)).rejects.toThrow(/HTTP 400: An asset named "afolder" already exists here and is a folder/);
    await e.stop();
    expect(emu.find('media/in/afolder')!.type).toBe('Folder');
    journal.close();
  });

  it('uploading over an existing file replaces its bytes and keeps its id; the version changes', async () => {
    const id = await emu.putPath('media/in/over.txt', Buffer.from('old bytes'));
    const before = await walk(p, 'media/in/over.txt');
    const f = await local('over.txt', Buffer.from('new bytes, longer'));
    const journal = new Journal(join(dir, 'f.db'));
    const e = engine(journal, p.uploader({ partSize: PART }));
    e.start();
    // A write into the mount carries the version it opened: that one is replaced (another would be a conflict).
    const j = e.enqueue({ ...job(f, 'media/in/over.txt'), producer: 'mount', baseVersion: before.version });
    await e.waitFor(j.id);
    await e.stop();
    const after = await walk(p, 'media/in/over.txt');
    expect(after.ref).toBe(id);
    expect(after.version).not.toBe(before.version);
    expect((await stored('media/in/over.txt'))!.toString()).toBe('new bytes, longer');
    journal.close();
  });

  it('an expired part URL (403 from storage) is replaced from the upload query and the PUT retried once', async () => {
    const u: Uploader = p.uploader({ partSize: PART });
    const data = Buffer.from('short-lived part url');
    emu.partUrlTtlMs = 1000;
    try {
      const id = await u.begin(T('media/in/expiring.txt'), data.length);
      await new Promise((r) => setTimeout(r, 2100)); // the URL from start is past X-Amz-Expires now
      proxy.clearLog();
      emu.server.clearLog();
      const etag = await u.part(T('media/in/expiring.txt'), id, 1, data);
      expect(proxy.requests().filter((r) => r.method === 'PUT').map((r) => r.status)).toEqual([403, 200]);
      expect(uploads(new RegExp(`^/api/asset/upload/${id}$`)).length).toBe(1);
      const done = await u.complete(T('media/in/expiring.txt'), id, [{ number: 1, etag, size: data.length }], { size: data.length, sha256: sha256(data) });
      expect(done.version).toBe((await walk(p, 'media/in/expiring.txt')).version);
    } finally {
      emu.partUrlTtlMs = 60 * 60_000;
    }
  });

  it('abort cancels the session: nothing is stored, the platform forgets it', async () => {
    const u = p.uploader({ partSize: PART });
    const id = await u.begin(T('media/in/aborted.txt'), 3);
    await u.part(T('media/in/aborted.txt'), id, 1, Buffer.from('abc'));
    await u.abort(T('media/in/aborted.txt'), id);
    expect(emu.uploads.sessions.has(id)).toBe(false);
    expect(await u.confirmed(T('media/in/aborted.txt'), id)).toBeUndefined();
    expect(emu.find('media/in/aborted.txt')).toBeUndefined();
  });
});

describe('nomad folder hooks, seen through the provider', () => {
  const names = async (path: string) => (await list((await walk(p, path)).ref)).map((e) => `${e.name}${e.kind === 'dir' ? '/' : ''}`).sort();

  it('mkdir creates a folder (spaces allowed); a taken name is refused by the platform', async () => {
    const u = p.uploader();
    await u.mkdir!(T('media/in/New Folder'));
    expect(await names('media/in')).toContain('New Folder/');
    await expect(u.mkdir!(T('media/in/New Folder'))).rejects.toThrow(/already exists/);
    await expect(u.mkdir!(T('media/nope/x'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(u.mkdir!(T('newbucket'))).rejects.toMatchObject({ code: 'EPERM' });
  });

  it('rename within a folder (PATCH) and to another folder (move) keep the asset and its version', async () => {
    const u = p.uploader();
    const id = await emu.putPath('media/in/ren/a.txt', Buffer.from('renamed bytes'));
    const v = (await walk(p, 'media/in/ren/a.txt')).version;
    await u.rename!(T('media/in/ren/a.txt'), T('media/in/ren/b.txt'));
    expect(await names('media/in/ren')).toEqual(['b.txt']);
    expect(uploads(/^\/api\/admin\/asset\/[^/]+$/).filter((r) => r.method === 'PATCH').length).toBeGreaterThanOrEqual(1);
    await u.rename!(T('media/in/ren/b.txt'), T('media/in/New Folder/c.txt'));
    expect(await names('media/in/ren')).toEqual([]);
    const moved = await walk(p, 'media/in/New Folder/c.txt');
    expect(moved).toMatchObject({ ref: id, version: v });
    expect(uploads(/\/move$/).length).toBeGreaterThanOrEqual(1);
    expect((await stored('media/in/New Folder/c.txt'))!.toString()).toBe('renamed bytes');
    // A folder moves with its contents.
    await u.rename!(T('media/in/ren'), T('media/in/New Folder/ren2'));
    expect(await names('media/in/New Folder')).toEqual(['c.txt', 'ren2/']);
  });

  it('rename onto an existing file replaces it', async () => {
    const u = p.uploader();
    await emu.putPath('media/in/x/src.txt', Buffer.from('source'));
    await emu.putPath('media/in/x/dst.txt', Buffer.from('destination'));
    await u.rename!(T('media/in/x/src.txt'), T('media/in/x/dst.txt'));
    expect(await names('media/in/x')).toEqual(['dst.txt']);
    expect((await stored('media/in/x/dst.txt'))!.toString()).toBe('source');
  });

  it('remove deletes a file and its stored bytes; rmdir deletes only empty folders', async () => {
    const u = p.uploader();
    await emu.putPath('media/in/gone/f.txt', Buffer.from('bye'));
    const key = emu.find('media/in/gone/f.txt')!.objectKey;
    await expect(u.rmdir!(T('media/in/gone'))).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    await expect(u.remove!(T('media/in/gone'))).rejects.toMatchObject({ code: 'EISDIR' });
    await u.remove!(T('media/in/gone/f.txt'));
    expect(await names('media/in/gone')).toEqual([]);
    expect(await u.remoteVersion(T('media/in/gone/f.txt'))).toBeUndefined();
    expect(await storage.object(key)).toBeUndefined();
    await u.rmdir!(T('media/in/gone'));
    expect(await names('media/in')).not.toContain('gone/');
    await expect(u.remove!(T('media/in/gone/f.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('nomad emulator upload routes', () => {
  async function token(): Promise<string> {
    const r = await fetch(`${emu.url}/api/account/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...USER }) });
    return ((await r.json()) as { token: string }).token;
  }
  const post = async (tok: string, path: string, body: unknown) => {
    const r = await fetch(`${emu.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as any };
  };

  it('start answers the documented shape: inclusive part ranges of chunkSize, presigned S3 part URLs', async () => {
    const tok = await token();
    const parentId = emu.find('media/in')!.id;
    const r = await post(tok, '/api/asset/upload/start', { displayName: 'shape.bin', relativePath: 'shape.bin', parentId, contentLength: 11 * MiB, chunkSize: 5 * MiB, uploadOverwriteOption: 'Replace', existingAssetId: null, languageId: null });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: expect.any(String), assetId: expect.any(String), contentLength: 11 * MiB });
    expect(r.body.parts.map((x: any) => [x.partNumber, x.startingPosition, x.endingPosition, x.isCompleted])).toEqual([
      [1, 0, 5 * MiB - 1, false], [2, 5 * MiB, 10 * MiB - 1, false], [3, 10 * MiB, 11 * MiB - 1, false],
    ]);
    const url = new URL(r.body.parts[0].url);
    expect(url.origin).toBe(proxy.url);
    expect(url.pathname.startsWith('/nomad-up/')).toBe(true);
    expect([url.searchParams.get('partNumber'), !!url.searchParams.get('uploadId'), !!url.searchParams.get('X-Amz-Signature')]).toEqual(['1', true, true]);
    expect((await post(tok, `/api/asset/upload/${r.body.id}/complete`, {})).status).toBe(400); // parts missing
    expect((await post(tok, `/api/asset/upload/${r.body.id}/cancel?message=test`, {})).status).toBe(200);
    expect((await post(tok, `/api/asset/upload/${r.body.id}/complete`, {})).status).toBe(404);
  });

  it('Continue answers the open session of the same place and size; the upload query (GUESS) shows completed parts', async () => {
    const tok = await token();
    const parentId = emu.find('media/in')!.id;
    const body = { displayName: 'cont.txt', relativePath: 'sub/cont.txt', parentId, contentLength: 5, chunkSize: 8 * MiB, uploadOverwriteOption: 'Replace' };
    const a = (await post(tok, '/api/asset/upload/start', body)).body;
    const put = await fetch(a.parts[0].url, { method: 'PUT', body: Buffer.from('hello') });
    expect(put.status).toBe(200);
    expect((await post(tok, `/api/asset/upload/part/${a.parts[0].id}/complete`, { etag: put.headers.get('etag') })).status).toBe(200);
    const b = (await post(tok, '/api/asset/upload/start', { ...body, uploadOverwriteOption: 'Continue' })).body;
    expect(b.id).toBe(a.id);
    expect(b.parts[0]).toMatchObject({ isCompleted: true, etag: put.headers.get('etag') });
    const q = await fetch(`${emu.url}/api/asset/upload/${a.id}`, { headers: { authorization: `Bearer ${tok}` } });
    expect(((await q.json()) as any).parts[0].isCompleted).toBe(true);
    const done = await post(tok, `/api/asset/upload/${a.id}/complete`, {});
    expect(done.body).toMatchObject({ totalItemCount: 1, items: [{ id: a.assetId, title: 'cont.txt' }] });
    expect((await stored('media/in/sub/cont.txt'))!.toString()).toBe('hello');
  });

  it('a name clash with uploadOverwriteOption Cancel is refused with an RFC 7807 body; small chunks are refused', async () => {
    const tok = await token();
    await emu.putPath('media/in/taken.txt', Buffer.from('taken'));
    const parentId = emu.find('media/in')!.id;
    const r = await post(tok, '/api/asset/upload/start', { displayName: 'taken.txt', relativePath: 'taken.txt', parentId, contentLength: 5, chunkSize: 8 * MiB, uploadOverwriteOption: 'Cancel' });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ type: expect.stringContaining('rfc9110'), title: 'Bad Request', status: 400, detail: expect.stringMatching(/already exists/), instance: '/api/asset/upload/start' });
    const small = await post(tok, '/api/asset/upload/start', { displayName: 's.txt', parentId, contentLength: 5, chunkSize: 1024, uploadOverwriteOption: 'Replace' });
    expect(small.status).toBe(400);
  });
});
