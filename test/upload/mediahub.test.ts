/**
 * The upload engine → Xvid MediaHub (emulator): upload records, one S3 POST form per chunk into s3rver
 * (policy-checked by the emulator), PUT nb_chunks and polling until FINISHED. Byte-exact multi-chunk
 * uploads, resume after a crash, a lost session, a file changed mid-upload, rejections carrying the
 * platform's message, the form policy's checks, re-upload in place, and the remove hook.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { MediahubProvider, splitUploadId } from '../../src/providers/mediahub/index.js';
import { MEDIAHUB_CLIENT, startMediahubEmulator, type MediahubEmulator } from '@assetfs/lab/emulators/mediahub/index.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';
import { NotFoundError } from '../../src/core/errors.js';
import { Journal } from '../../src/upload/journal.js';

import type { Uploader, UploadTarget } from '../../src/upload/types.js';
import { walk } from '../contract/provider-suite.js';
import { countingUploader, localFile, resumeUpload, testEngine, uploadUntilCrash, uploadWhileAppending } from './harness.js';
import { startS3BackedStorage, type S3BackedStorage } from '../helpers/s3-backed.js';

const MiB = 1024 * 1024;
const PART = 1 * MiB; // MediaHub names no chunk minimum: small chunks keep the test quick
const PIPE = '65a1b2c3d4e5f60718293a4b';
const BUCKET = 'mediahub-up';

let storage: S3BackedStorage;
let emu: MediahubEmulator;
let p: MediahubProvider;
let dir: string;

function provider(src: Record<string, unknown> = {}): MediahubProvider {
  const cfg = ConfigSchema.parse({
    sources: [{ name: 'xvid', type: 'mediahub', baseUrl: emu.baseUrl, clientId: MEDIAHUB_CLIENT.id, clientSecret: MEDIAHUB_CLIENT.secret, ...src }],
  }).sources[0] as SourceConfigOf<'mediahub'>;
  return new MediahubProvider(cfg, { log: silentLogger });
}

beforeAll(async () => {
  storage = await startS3BackedStorage(BUCKET);
  emu = await startMediahubEmulator({ s3: storage.backing, pipelines: [PIPE] });
  p = provider();
  dir = await mkdtemp(join(tmpdir(), 'assetfs-mediahub-upload-'));
});
afterAll(async () => {
  await p?.close();
  await emu?.close();
  await storage?.close();
  await rm(dir, { recursive: true, force: true });
});

const local = (name: string, data: Buffer) => localFile(dir, name, data);
/** The stored bytes of the catalog file at `key` in PIPE (straight from s3rver). */
async function stored(key: string): Promise<Buffer | undefined> {
  const rec = emu.catalog.byKey(PIPE, key);
  return rec?.storageKey ? storage.object(rec.storageKey) : undefined;
}
const keys = (prefix: string) => storage.keys(prefix);
const T = (path: string): UploadTarget => ({ source: 'xvid', path: path.split('/') });
/** The uploader with parts counted and optionally held back (its methods live on the prototype: bind them). */
function wrap(inner: Uploader, onPart?: (n: number) => Promise<void> | void, over: Partial<Uploader> = {}) {
  return countingUploader(inner, { over, onPart });
}
const engine = (journal: Journal, u: Uploader, partsPerFile = 2) => testEngine(journal, u, { partsPerFile });
const calls = (method: string, path: RegExp) => emu.server.requests().filter((r) => r.method === method && path.test(r.path));
const job = (f: { path: string; size: number; mtimeMs: number }, remotePath: string, baseVersion: string | null = null) =>
  ({ localPath: f.path, source: 'xvid', remotePath, producer: 'sync' as const, size: f.size, mtimeMs: f.mtimeMs, baseVersion });

describe('upload engine → mediahub', () => {
  it('uploads a file of several chunks byte-exact; nothing shows before completion; listed with remoteVersion', async () => {
    const data = deterministicBytes('mh-multi', 3 * PART + 17); // 4 chunks
    const f = await local('multi.bin', data);
    const journal = new Journal(join(dir, 'a.db'));
    const inner = p.uploader({ partSize: PART });
    const early: unknown[] = [];
    const { u, sent } = wrap(inner, () => void early.push(emu.catalog.byKey(PIPE, 'in/deep/multi.bin')));
    emu.server.clearLog();
    const e = engine(journal, u);
    e.start();
    const j = e.enqueue(job(f, `${PIPE}/in/deep/multi.bin`));
    await e.waitFor(j.id);
    await e.stop();
    expect(sent.sort()).toEqual([1, 2, 3, 4]);
    expect(early.length).toBe(4);
    expect(early.every((x) => x === undefined)).toBe(true);
    expect(sha256((await stored('in/deep/multi.bin'))!)).toBe(sha256(data));
    const listed = await walk(p, `${PIPE}/in/deep/multi.bin`);
    expect(listed).toMatchObject({ kind: 'file', size: data.length });
    expect(listed.unreadable).toBeUndefined();
    expect(await inner.remoteVersion(T(`${PIPE}/in/deep/multi.bin`))).toBe(listed.version);
    expect(listed.version).toBe(emu.catalog.byKey(PIPE, 'in/deep/multi.bin')!.etag); // the record's etag
    expect(journal.synced(f.path)).toMatchObject({ size: data.length, sha256: sha256(data), remoteVersion: listed.version });
    // The documented calls: one upload record, one form POST per chunk, one PUT; the chunk objects are gone.
    expect(calls('POST', /^\/v1\/files\/uploads\/?$/).length).toBe(1);
    expect(calls('POST', new RegExp(`^/s3-form/${BUCKET}/?$`)).map((r) => r.status)).toEqual([201, 201, 201, 201]);
    expect(calls('PUT', /^\/v1\/files\/uploads\/[0-9a-f]+$/).length).toBe(1);
    expect(await keys('tmp/')).toEqual([]);
    journal.close();
  });

  it('after a crash, resumes the same upload and sends only the chunks the platform has not received', async () => {
    const data = deterministicBytes('mh-resume', 4 * PART + 5); // 5 chunks
    const f = await local('resume.bin', data);
    const db = join(dir, 'b.db');
    const journal = new Journal(db);
    const id = await uploadUntilCrash(journal, p.uploader({ partSize: PART }), job(f, `${PIPE}/in/resume.bin`), 3);
    const journaled = journal.get(id)!.uploadId!;
    expect(splitUploadId(journaled).chunks).toBe(5);
    const session = emu.uploads.sessions.get(splitUploadId(journaled).id)!;
    expect([...session.chunks.keys()].sort()).toEqual([0, 1]);
    expect(journal.parts(id).map((x) => x.number)).toEqual([1, 2]);
    journal.close();

    emu.server.clearLog();
    const second = await resumeUpload(db, p.uploader({ partSize: PART }), id); // a new process: no form params in memory
    expect(second.sent.sort()).toEqual([3, 4, 5]);
    expect(calls('POST', /^\/v1\/files\/uploads\/?$/).length).toBe(0); // the same upload, no new one
    expect(calls('GET', new RegExp(`^/v1/files/uploads/${session.id}$`)).length).toBeGreaterThanOrEqual(1);
    expect(sha256((await stored('in/resume.bin'))!)).toBe(sha256(data));
    second.journal.close();
  });

  it('an upload the platform forgot is begun anew, every chunk sent again', async () => {
    const data = deterministicBytes('mh-lost', 2 * PART + 1);
    const f = await local('lost.bin', data);
    const db = join(dir, 'c.db');
    const journal = new Journal(db);
    const id = await uploadUntilCrash(journal, p.uploader({ partSize: PART }), job(f, `${PIPE}/in/lost.bin`), 2);
    const old = journal.get(id)!.uploadId!;
    journal.close();
    await emu.uploads.expire(splitUploadId(old).id);

    const second = await resumeUpload(db, p.uploader({ partSize: PART }), id);
    expect(second.sent.sort()).toEqual([1, 2, 3]);
    expect(second.journal.get(id)!.uploadId).not.toBe(old);
    expect(sha256((await stored('in/lost.bin'))!)).toBe(sha256(data));
    second.journal.close();
  });

  it('a file modified during its upload ends remotely with the new content', async () => {
    const data = deterministicBytes('mh-changing', 3 * PART);
    const f = await local('changing.bin', data);
    const tail = Buffer.from('tail written during the upload');
    const journal = new Journal(join(dir, 'd.db'));
    await uploadWhileAppending(journal, p.uploader({ partSize: PART }), job(f, `${PIPE}/in/changing.bin`), tail);
    expect(sha256((await stored('in/changing.bin'))!)).toBe(sha256(Buffer.concat([data, tail])));
    expect((await walk(p, `${PIPE}/in/changing.bin`)).size).toBe(data.length + tail.length);
    expect([...emu.uploads.sessions.values()].filter((s) => s.objectKey === 'in/changing.bin' && s.status === 'UPLOADING')).toEqual([]);
    journal.close();
  });

  it('an upload the platform rejects makes waitFor reject with the platform message', async () => {
    const f = await local('rejected.bin', Buffer.from('x'));
    const journal = new Journal(join(dir, 'e.db'));
    const e = engine(journal, p.uploader({ partSize: PART }));
    e.start();
    const j = e.enqueue({ ...job(f, 'ffffffffffffffffffffffff/in/rejected.bin'), producer: 'mount' });
    await expect(e.waitFor(j.id)).rejects.toThrow(/Invalid Input: pipeline_id ffffffffffffffffffffffff is not a pipeline/);
    expect(journal.get(j.id)).toMatchObject({ state: 'failed', lastError: expect.stringMatching(/not a pipeline/) });
    await e.stop();
    journal.close();
  });

  it('the form endpoint checks the POST policy as S3 does', async () => {
    const up = p.uploader({ partSize: PART });
    const id = await up.begin(T(`${PIPE}/in/policy.bin`), 10);
    const rec = emu.uploads.sessions.get(splitUploadId(id).id)!;
    const params = emu.uploads.toApi(rec).form_post_params as Record<string, string>;
    const post = async (over: Record<string, string>, extra: [string, string][] = []) => {
      const fd = new FormData();
      for (const [k, v] of Object.entries({ ...params, ...over })) fd.append(k, v);
      for (const [k, v] of extra) fd.append(k, v);
      fd.append('file', new Blob([Buffer.from('0123456789')]), 'policy.bin');
      const r = await fetch(emu.uploads.formUrl(), { method: 'POST', body: fd });
      return { status: r.status, text: await r.text() };
    };
    expect(await post({ signature: 'AAAA' + params.signature!.slice(4) })).toMatchObject({ status: 403, text: expect.stringContaining('<Code>SignatureDoesNotMatch</Code>') });
    expect(await post({ key: 'tmp/elsewhere.bin' })).toMatchObject({ status: 403, text: expect.stringContaining('Policy Condition failed') });
    expect(await post({}, [['x-amz-meta-extra', '1']])).toMatchObject({ status: 403, text: expect.stringContaining('Extra input fields: x-amz-meta-extra') });
    expect(rec.chunks.size).toBe(0);
    const ok = await post({});
    expect(ok.status).toBe(201);
    expect(ok.text).toMatch(/<PostResponse>.*<Key>tmp\/[0-9a-f]+\/in\/policy\.bin<\/Key>/s);
    expect([...rec.chunks.keys()]).toEqual([0]);
    await up.abort(T(`${PIPE}/in/policy.bin`), id);
    expect(emu.uploads.sessions.has(rec.id)).toBe(false);
    expect(await keys(`tmp/${PIPE}/in/policy.bin`)).toEqual([]);
  });

  it('re-uploading a file replaces it in place: same id, new version; a stale base version makes a conflict copy', async () => {
    const up = p.uploader({ partSize: PART });
    const f1 = await local('again.txt', Buffer.from('first version'));
    const journal = new Journal(join(dir, 'f.db'));
    const e = engine(journal, up);
    e.start();
    const j1 = e.enqueue(job(f1, `${PIPE}/in/again.txt`));
    await e.waitFor(j1.id);
    const before = await walk(p, `${PIPE}/in/again.txt`);
    await writeFile(f1.path, 'second version, longer');
    const st = await stat(f1.path);
    const j2 = e.enqueue(job({ path: f1.path, size: st.size, mtimeMs: st.mtimeMs }, `${PIPE}/in/again.txt`, before.version));
    await e.waitFor(j2.id);
    const after = await walk(p, `${PIPE}/in/again.txt`);
    expect(after.id).toBe(before.id);
    expect(after.version).not.toBe(before.version);
    expect((await stored('in/again.txt'))!.toString()).toBe('second version, longer');
    // Someone else changes it: our next upload with the old base goes up beside it.
    await emu.putFile({ pipelineId: PIPE, objectKey: 'in/again.txt', bytes: Buffer.from('their edit') });
    const j3 = e.enqueue(job({ path: f1.path, size: st.size, mtimeMs: st.mtimeMs }, `${PIPE}/in/again.txt`, after.version));
    await e.waitFor(j3.id);
    await e.stop();
    expect((await stored('in/again.txt'))!.toString()).toBe('their edit');
    expect(journal.get(j3.id)!.remotePath).toMatch(/^[0-9a-f]+\/in\/again\.conflict-.*\.txt$/);
    journal.close();
  });

  it('remove deletes the file and its bytes, seen through the provider; no mkdir or rename hooks', async () => {
    const up: Uploader = p.uploader({ partSize: PART });
    const f = await local('gone.bin', deterministicBytes('mh-gone', PART + 3));
    const journal = new Journal(join(dir, 'g.db'));
    const e = engine(journal, up);
    e.start();
    const j = e.enqueue(job(f, `${PIPE}/in/gone.bin`));
    await e.waitFor(j.id);
    await e.stop();
    const entry = await walk(p, `${PIPE}/in/gone.bin`);
    const storageKey = emu.catalog.files.get(entry.id!)!.storageKey!;
    expect(await keys(storageKey)).toEqual([storageKey]);
    await up.remove!(T(`${PIPE}/in/gone.bin`));
    await expect(p.stat(entry.ref)).rejects.toBeInstanceOf(NotFoundError);
    await expect(walk(p, `${PIPE}/in/gone.bin`)).rejects.toThrow(/not found/);
    expect(await up.remoteVersion(T(`${PIPE}/in/gone.bin`))).toBeUndefined();
    expect(await keys(storageKey)).toEqual([]);
    await expect(up.remove!(T(`${PIPE}/in/gone.bin`))).rejects.toBeInstanceOf(NotFoundError);
    expect(up.mkdir).toBeUndefined();
    expect(up.rmdir).toBeUndefined();
    expect(up.rename).toBeUndefined();
    expect(p.caps.upload).toBe(true);
    const ro = provider({ readOnly: true });
    expect(ro.caps.upload).toBe(false);
    await ro.close();
    journal.close();
  });
});
