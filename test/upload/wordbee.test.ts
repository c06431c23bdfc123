/** The upload engine → Wordbee (emulator): the two-step file-token upload, resume, changes, rejections, delete. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { WordbeeProvider } from '../../src/providers/wordbee/index.js';
import { startWordbeeEmulator, type WordbeeEmulator } from '@assetfs/lab/emulators/wordbee/index.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { silentLogger } from '../../src/util/logger.js';
import { Journal } from '../../src/upload/journal.js';

import type { Uploader } from '../../src/upload/types.js';
import { walk } from '../contract/provider-suite.js';
import { countingUploader, localFile, testEngine, uploadWhileAppending } from './harness.js';

const SEG = 27_665_601;
let emu: WordbeeEmulator;
let p: WordbeeProvider;
let dir: string;

beforeAll(async () => {
  emu = await startWordbeeEmulator({ accounts: [{ accountId: 'acme', key: 'k3y' }] });
  emu.catalog.addDocument(7214, 19641, 'doc.docx');
  emu.catalog.addSegment(19641, SEG);
  const cfg = ConfigSchema.parse({ sources: [{ name: 'wb', type: 'wordbee', baseUrl: emu.apiUrl, accountId: 'acme', apiKey: 'k3y', scopes: ['pr7214'] }] }).sources[0] as SourceConfigOf<'wordbee'>;
  p = new WordbeeProvider(cfg, { log: silentLogger });
  dir = await mkdtemp(join(tmpdir(), 'assetfs-wb-upload-'));
});
afterAll(async () => {
  await p?.close();
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

const local = (name: string, data: Buffer) => localFile(dir, name, data);
const stored = async (rel: string, name: string) => {
  const a = emu.catalog.find(SEG, 'en', rel, name);
  return a && readFile(a.file);
};
/** The uploader with some methods replaced (its own methods live on the prototype: bind them). */
function wrap(inner: Uploader, over: Partial<Uploader>): Uploader {
  return countingUploader(inner, { over }).u;
}
const engine = (journal: Journal, u: Uploader) => testEngine(journal, u);
const target = (name: string) => `pr7214/19641/${SEG}/en/videos/${name}`;

describe('upload engine → wordbee', () => {
  it('uploads through a file token attached with locale and relativePath; the provider lists it with the same version', async () => {
    const data = deterministicBytes('wb-up', 3 * 1024 * 1024 + 9);
    const f = await local('teaser.mp4', data);
    const journal = new Journal(join(dir, 'a.db'));
    const u = p.uploader();
    const e = engine(journal, u);
    e.start();
    const job = e.enqueue({ localPath: f.path, source: 'wb', remotePath: target('teaser.mp4'), producer: 'mount', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
    await e.waitFor(job.id);
    await e.stop();
    expect(sha256((await stored('videos', 'teaser.mp4'))!)).toBe(sha256(data));
    const listed = await walk(p, target('teaser.mp4'));
    expect(listed.size).toBe(data.length);
    expect(await u.remoteVersion({ source: 'wb', path: target('teaser.mp4').split('/') })).toBe(listed.version);
    expect(emu.server.requests().filter((r) => r.path === '/api/media/upload').length).toBe(1);
    journal.close();
  });

  it('after a crash between the upload and the attach, the recorded token is attached without sending the bytes again', async () => {
    const f = await local('resume.srt', Buffer.from('1\n00:00:01,000 --> 00:00:02,000\nresumed\n'));
    const db = join(dir, 'b.db');
    let journal = new Journal(db);
    const inner = p.uploader();
    let crash!: () => void;
    const crashed = new Promise<void>((r) => (crash = r));
    const u1 = wrap(inner, { complete: async () => { crash(); return new Promise(() => undefined); } });
    const e1 = engine(journal, u1);
    e1.start();
    const job = e1.enqueue({ localPath: f.path, source: 'wb', remotePath: target('resume.srt'), producer: 'sync', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
    await crashed;
    void e1.stop();
    journal.close();
    const uploadsBefore = emu.server.requests().filter((r) => r.path === '/api/media/upload').length;
    journal = new Journal(db);
    const e2 = engine(journal, p.uploader());
    e2.start();
    await e2.waitFor(job.id);
    await e2.stop();
    expect(emu.server.requests().filter((r) => r.path === '/api/media/upload').length).toBe(uploadsBefore);
    expect((await stored('videos', 'resume.srt'))!.toString()).toContain('resumed');
    journal.close();
  });

  it('a file modified during its upload ends with the new content', async () => {
    const f = await local('notes.txt', Buffer.from('first\n'));
    const journal = new Journal(join(dir, 'c.db'));
    // One part: the file grows as it starts.
    await uploadWhileAppending(journal, p.uploader(), { localPath: f.path, source: 'wb', remotePath: target('notes.txt'), producer: 'sync', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null }, 'second\n', { atPart: 1 });
    expect((await stored('videos', 'notes.txt'))!.toString()).toBe('first\nsecond\n');
    journal.close();
  });

  it('a rejected attach (a segment outside the scope) reaches waitFor with the platform message', async () => {
    const f = await local('x.png', Buffer.from('png'));
    const journal = new Journal(join(dir, 'd.db'));
    const e = engine(journal, p.uploader());
    e.start();
    const job = e.enqueue({ localPath: f.path, source: 'wb', remotePath: 'pr7214/19641/999/en/x.png', producer: 'mount', size: f.size, mtimeMs: f.mtimeMs, baseVersion: null });
    await expect(e.waitFor(job.id)).rejects.toThrow(/Segment 999 not found/);
    await e.stop();
    journal.close();
  });

  it('remove deletes the asset', async () => {
    const t = { source: 'wb', path: target('teaser.mp4').split('/') };
    await p.uploader().remove!(t);
    expect(await stored('videos', 'teaser.mp4')).toBeUndefined();
    expect(await p.uploader().remoteVersion(t)).toBeUndefined();
  });
});
