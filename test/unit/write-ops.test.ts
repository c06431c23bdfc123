/**
 * The write side of the VFS (src/vfs/write/write-ops.ts) on a real staging area and journal, with a
 * recording upload port and uploader: the bytes that land in the staged copy, what goes to the upload
 * engine (remote names, base version), and the errnos of writes the platform or the staging cannot take.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { constants } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WriteOps, type StagedHandle, type VfsAccess } from '../../src/vfs/write/write-ops.js';
import { Staging } from '../../src/vfs/write/staging.js';
import { StagedRecords } from '../../src/vfs/write/records.js';
import { Journal } from '../../src/upload/journal.js';
import type { RemoteEntry, StagedUpload, UploadOutcome, UploadPort } from '../../src/core/types.js';
import type { UploadTarget, Uploader } from '../../src/upload/types.js';
import { splitRemote } from '../../src/upload/conflict.js';
import { silentLogger } from '../../src/util/logger.js';
import { MemoryBlocks, MemoryProvider } from '../helpers/memory-provider.js';

/** The engine's port, recording what it is given; fsync's wait answers `waitError` when set. */
class RecordingPort implements UploadPort {
  readonly enqueued: StagedUpload[] = [];
  readonly cancelled: Array<{ id: number; reason: string }> = [];
  waitError: Error | undefined;
  enqueue(u: StagedUpload): number {
    this.enqueued.push(u);
    return this.enqueued.length;
  }
  cancel(jobId: number, reason: string): void {
    this.cancelled.push({ id: jobId, reason });
  }
  async wait(): Promise<void> {
    if (this.waitError) throw this.waitError;
  }
  done(): Promise<UploadOutcome> {
    return new Promise(() => undefined); // uploads never finish here: staged files stay
  }
}

/** An uploader that records the folder and file operations asked of the platform. */
function recordingUploader(can: { mkdir?: boolean; rename?: boolean; remove?: boolean } = {}) {
  const calls: string[] = [];
  const t = (x: UploadTarget) => `${x.source}:${x.path.join('|')}`;
  const unused = () => {
    throw new Error('not used by the write path');
  };
  const up: Uploader = {
    partSize: unused,
    begin: unused,
    confirmed: unused,
    part: unused,
    complete: unused,
    abort: unused,
    remoteVersion: unused,
    ...(can.mkdir ? { mkdir: async (x: UploadTarget) => void calls.push(`mkdir ${t(x)}`) } : {}),
    rmdir: async (x: UploadTarget) => void calls.push(`rmdir ${t(x)}`),
    ...(can.rename ? { rename: async (a: UploadTarget, b: UploadTarget) => void calls.push(`rename ${t(a)} → ${t(b)}`) } : {}),
    ...(can.remove ? { remove: async (x: UploadTarget) => void calls.push(`remove ${t(x)}`) } : {}),
  };
  return { up, calls };
}

const REMOTE_BYTES = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'); // 36 bytes, 3 blocks of 16

let dir: string;
let journal: Journal;
let staging: Staging;
let port: RecordingPort;
let blocks: MemoryBlocks;
let invalidated: string[];

/** Mount paths of the remote tree: /up (uploads) and /ro (read-only) sources. */
function remoteTree(p: MemoryProvider): Map<string, RemoteEntry> {
  const media = p.file('', 'media.bin', REMOTE_BYTES, { version: 'etag-7' });
  const folder = p.dir('', 'folder');
  const inner = p.file(folder, 'inner.txt', 'inner');
  const slash = p.file('', 'a/b', 'slash name');
  return new Map<string, RemoteEntry>([
    ['/up/media.bin', p.entry(media)],
    ['/up/folder', p.entry(folder)],
    ['/up/folder/inner.txt', p.entry(inner)],
    ['/up/a‛／b', p.entry(slash)],
    ['/ro/media.bin', p.entry(media)],
  ]);
}

function setup(o: { maxBytes?: number; can?: Parameters<typeof recordingUploader>[0] } = {}) {
  const p = new MemoryProvider('up');
  const tree = remoteTree(p);
  blocks = new MemoryBlocks(new Map([['up', p], ['ro', p]]), 16);
  staging = new Staging({ dir: join(dir, 'staging'), records: new StagedRecords(journal, join(dir, 'staging')), port, writeBackMs: 3_600_000, maxBytes: o.maxBytes ?? 0, log: silentLogger });
  const { up, calls } = recordingUploader(o.can);
  const access: VfsAccess = {
    lookup: async (path) => (path === '/' ? { kind: 'root' } : path.split('/').length === 2 ? { kind: 'source' } : tree.get(path)),
    // The local name `a‛／b` stands for the remote name `a/b` (vfs/names.ts).
    remoteNames: async (path) => path.split('/').slice(2).map((n) => n.replace('‛／', '/')),
    children: async (path) => [...tree.keys()].filter((k) => k.startsWith(`${path}/`)).map((k) => k.slice(path.length + 1)),
    invalidateDir: (path) => void invalidated.push(path),
    blocks,
  };
  const ops = new WriteOps({ staging, uploaderFor: (s) => (s === 'up' ? up : undefined), fsyncTimeoutMs: 1_000 }, access);
  return { ops, calls };
}

const stagedBytes = (h: StagedHandle) => readFile(join(dir, 'staging', h.file.id));
const errCode = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: string }) => e.code);

async function closeFile(ops: WriteOps, h: StagedHandle) {
  await ops.flush(h);
  await ops.release(h);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'write-ops-'));
  journal = new Journal(join(dir, 'journal.db'));
  port = new RecordingPort();
  invalidated = [];
});
afterEach(async () => {
  staging?.stop();
  journal.close();
  await rm(dir, { recursive: true, force: true });
});

describe('WriteOps: new files', () => {
  it('create, write, close: the staged copy holds exactly the bytes written; the folder listing shows its size', async () => {
    const { ops } = setup();
    await staging.recover();
    const h = await ops.create('/up/folder/new.txt');
    expect(await ops.write(h, Buffer.from('hello '), 6, 0)).toBe(6);
    expect(await ops.write(h, Buffer.from('world!'), 5, 6)).toBe(5); // length, not the buffer, counts
    await ops.flush(h);
    expect(await stagedBytes(h)).toEqual(Buffer.from('hello world'));
    expect(ops.stagedAttr('/up/folder/new.txt')).toMatchObject({ kind: 'file', size: 11, mode: 0o100644 });
    expect(ops.overlay('/up/folder')).toEqual([{ name: 'new.txt', attr: expect.objectContaining({ kind: 'file', size: 11 }) }]);
    await ops.release(h);
    expect(port.enqueued).toEqual([]); // the write-back delay has not passed
  });

  it('fsync queues the upload with the remote names and no base version, and waits for it', async () => {
    const { ops } = setup();
    await staging.recover();
    const h = await ops.create('/up/folder/a‛／b');
    await ops.write(h, Buffer.from('new content'), 11, 0);
    await ops.fsync(h);
    expect(port.enqueued).toHaveLength(1);
    // A remote name holding '/' cannot be '/'-joined: the segments go as JSON (upload/conflict.ts).
    expect(port.enqueued[0]).toMatchObject({ source: 'up', remotePath: '/["folder","a/b"]', size: 11, baseVersion: null });
    expect(splitRemote(port.enqueued[0]!.remotePath)).toEqual(['folder', 'a/b']);
    expect(await readFile(port.enqueued[0]!.localPath)).toEqual(Buffer.from('new content'));
    await ops.release(h);
  });

  it('a failed upload wait makes fsync EIO naming the cause', async () => {
    const { ops } = setup();
    await staging.recover();
    const h = await ops.create('/up/x.txt');
    await ops.write(h, Buffer.from('x'), 1, 0);
    port.waitError = new Error('platform said 500');
    const err = await ops.fsync(h).catch((e: unknown) => e as { code: string; message: string });
    expect(err).toMatchObject({ code: 'EIO', message: '/up/x.txt: upload not confirmed: platform said 500' });
    await ops.release(h);
  });

  it('growth past uploads.stagingMax is ENOSPC and the file leaves the mount', async () => {
    const { ops } = setup({ maxBytes: 10 });
    await staging.recover();
    const h = await ops.create('/up/big.bin');
    expect(await ops.write(h, Buffer.alloc(8, 1), 8, 0)).toBe(8);
    expect(await errCode(ops.write(h, Buffer.alloc(8, 2), 8, 8))).toBe('ENOSPC');
    expect(ops.stagedAttr('/up/big.bin')).toBeUndefined();
    await ops.release(h);
  });

  it('sources without an uploader, the mount root and source folders are EROFS; a missing parent is ENOENT', async () => {
    const { ops } = setup();
    await staging.recover();
    expect(await errCode(ops.create('/ro/new.txt'))).toBe('EROFS');
    expect(await errCode(ops.create('/up'))).toBe('EROFS');
    expect(await errCode(ops.create('/up/nofolder/x'))).toBe('ENOENT');
    expect(await errCode(ops.create('/up/media.bin/x'))).toBe('ENOTDIR');
  });
});

describe('WriteOps: remote files opened for writing', () => {
  it('without O_TRUNC the remote bytes are copied first; a write changes only its range; the upload has the remote version as base', async () => {
    const { ops } = setup();
    await staging.recover();
    const h = (await ops.open('/up/media.bin', constants.O_RDWR, await lookupEntry('/up/media.bin')))!;
    await ops.write(h, Buffer.from('XYZ'), 3, 20);
    const want = Buffer.from(REMOTE_BYTES);
    want.write('XYZ', 20);
    const back = Buffer.alloc(64);
    expect(await ops.read(h, back, 64, 0)).toBe(36);
    expect(back.subarray(0, 36)).toEqual(want);
    await ops.fsync(h);
    expect(port.enqueued[0]).toMatchObject({ remotePath: 'media.bin', size: 36, baseVersion: 'etag-7' });
    expect(await readFile(port.enqueued[0]!.localPath)).toEqual(want);
    expect(new Set(blocks.reads.map((r) => r.index))).toEqual(new Set([0, 1, 2]));
    await ops.release(h);
  });

  it('with O_TRUNC nothing is copied and the file starts empty', async () => {
    const { ops } = setup();
    await staging.recover();
    const h = (await ops.open('/up/media.bin', constants.O_WRONLY | constants.O_TRUNC, await lookupEntry('/up/media.bin')))!;
    expect(blocks.reads).toEqual([]);
    await ops.write(h, Buffer.from('short'), 5, 0);
    await closeFile(ops, h);
    expect(ops.stagedAttr('/up/media.bin')).toMatchObject({ size: 5 });
  });

  it('truncate(path, n) of a remote file keeps its first n bytes', async () => {
    const { ops } = setup();
    await staging.recover();
    await ops.truncate('/up/media.bin', 5, await lookupEntry('/up/media.bin'));
    expect(ops.stagedAttr('/up/media.bin')).toMatchObject({ size: 5 });
    const h = (await ops.open('/up/media.bin', constants.O_RDONLY, undefined))!;
    const back = Buffer.alloc(16);
    expect(await ops.read(h, back, 16, 0)).toBe(5);
    expect(back.subarray(0, 5).toString()).toBe('01234');
    await ops.release(h);
  });

  it('a handle opened read-only refuses writes with EBADF; a folder opened for writing is EISDIR', async () => {
    const { ops } = setup();
    await staging.recover();
    const w = await ops.create('/up/r.txt');
    await ops.write(w, Buffer.from('r'), 1, 0);
    await closeFile(ops, w);
    const r = (await ops.open('/up/r.txt', constants.O_RDONLY, undefined))!;
    expect(await errCode(ops.write(r, Buffer.from('x'), 1, 0))).toBe('EBADF');
    expect(await errCode(ops.ftruncate(r, 0))).toBe('EBADF');
    await ops.release(r);
    expect(await errCode(ops.open('/up/folder', constants.O_WRONLY, await lookupEntry('/up/folder')))).toBe('EISDIR');
  });
});

describe('WriteOps: folders, renames, deletes', () => {
  it('mkdir where folders are name prefixes keeps the folder locally; EEXIST for an existing one; rmdir of a non-empty one is ENOTEMPTY', async () => {
    const { ops, calls } = setup();
    await staging.recover();
    await ops.mkdir('/up/made', false);
    expect(ops.stagedAttr('/up/made')).toMatchObject({ kind: 'dir' });
    expect(ops.overlay('/up').map((o) => o.name)).toEqual(['made']);
    expect(await errCode(ops.mkdir('/up/made', false))).toBe('EEXIST');
    expect(await errCode(ops.mkdir('/up/folder', true))).toBe('EEXIST');
    expect(await errCode(ops.rmdir('/up/folder', await lookupEntry('/up/folder')))).toBe('ENOTEMPTY');
    await ops.rmdir('/up/made', undefined);
    expect(ops.stagedAttr('/up/made')).toBeUndefined();
    expect(calls).toEqual([]);
  });

  it('mkdir on a platform with folders asks the platform, with remote names', async () => {
    const { ops, calls } = setup({ can: { mkdir: true } });
    await staging.recover();
    await ops.mkdir('/up/folder/x‛／y', false);
    expect(calls).toEqual(['mkdir up:folder|x/y']);
    expect(invalidated).toEqual(['/up/folder']);
  });

  it('renames: across sources EXDEV, a remote entry without platform rename EXDEV, with it the platform renames by remote names', async () => {
    let { ops } = setup();
    await staging.recover();
    expect(await errCode(ops.rename('/up/media.bin', '/ro/media.bin'))).toBe('EXDEV');
    expect(await errCode(ops.rename('/up/media.bin', '/up/moved.bin'))).toBe('EXDEV');
    staging.stop();
    let calls: string[];
    ({ ops, calls } = setup({ can: { rename: true } }));
    await staging.recover();
    await ops.rename('/up/media.bin', '/up/folder/a‛／b');
    expect(calls).toEqual(['rename up:media.bin → up:folder|a/b']);
  });

  it('a staged file renamed onto a remote file goes up under the new name with that file\'s version as base', async () => {
    const { ops } = setup();
    await staging.recover();
    const h = await ops.create('/up/.media.bin.tmp');
    await ops.write(h, Buffer.from('replacement'), 11, 0);
    await closeFile(ops, h);
    await ops.rename('/up/.media.bin.tmp', '/up/media.bin');
    expect(ops.stagedAttr('/up/.media.bin.tmp')).toBeUndefined();
    expect(ops.stagedAttr('/up/media.bin')).toMatchObject({ size: 11 });
    const f = staging.get('/up/media.bin')!;
    expect(await staging.queue(f)).toBe(1);
    expect(port.enqueued[0]).toMatchObject({ remotePath: 'media.bin', baseVersion: 'etag-7', size: 11 });
  });

  it('unlink of a remote file asks the platform to remove it (ENOTSUP where it cannot); of a missing one is ENOENT', async () => {
    let { ops } = setup();
    await staging.recover();
    expect(await errCode(ops.unlink('/up/media.bin', await lookupEntry('/up/media.bin')))).toBe('ENOTSUP');
    expect(await errCode(ops.unlink('/up/none', undefined))).toBe('ENOENT');
    staging.stop();
    let calls: string[];
    ({ ops, calls } = setup({ can: { remove: true } }));
    await staging.recover();
    await ops.unlink('/up/media.bin', await lookupEntry('/up/media.bin'));
    await ops.unlink('/up/a‛／b', await lookupEntry('/up/a‛／b'));
    expect(calls).toEqual(['remove up:media.bin', 'remove up:a/b']);
    expect(invalidated).toEqual(['/up', '/up']);
  });
});

/** The remote entry the test tree has at a path (what the VFS would hand WriteOps). */
async function lookupEntry(path: string): Promise<RemoteEntry> {
  const p = new MemoryProvider('up');
  const e = remoteTree(p).get(path);
  if (!e) throw new Error(`no ${path} in the test tree`);
  return e;
}
