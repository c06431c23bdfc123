/**
 * The VFS core (src/vfs/vfs.ts) without FUSE, over an in-memory provider: what lookups, listings and
 * attributes say, the names remote entries get, `.by-id/`, and the bytes a read returns.
 */
import { describe, expect, it } from 'vitest';
import { constants } from 'node:fs';
import { AssetVfs, versionedMtime } from '../../src/vfs/vfs.js';
import { silentLogger } from '../../src/util/logger.js';
import { MemoryBlocks, MemoryProvider } from '../helpers/memory-provider.js';

const OWNER = { uid: 1000, gid: 1000, fileMode: 0o644, dirMode: 0o755, ignoreChmod: false };

function setup(...providers: MemoryProvider[]) {
  const map = new Map(providers.map((p) => [p.name, p]));
  const blocks = new MemoryBlocks(map, 16);
  const vfs = new AssetVfs({ providers: map, blocks, log: silentLogger, metadataTtlMs: 60_000, readaheadMaxBytes: 0, maxRetryTimeMs: 100, ownership: OWNER });
  return { vfs, blocks };
}

/** A catalog: two files at the root (one with a 0 mtime), a folder with one file, names Linux cannot hold. */
function catalog() {
  const p = new MemoryProvider('cat');
  p.file('', 'intro.txt', 'hello, world\n', { id: 'A-1', mtimeMs: 1_700_000_000_000, version: 'etag-1' });
  p.file('', 'nomtime.bin', Buffer.alloc(5, 7), { id: 'A-2', mtimeMs: 0 });
  const shows = p.dir('', 'shows', { id: 'D-1', mtimeMs: 1_600_000_000_000 });
  p.file(shows, 'ep1.mp4', Buffer.from(Array.from({ length: 100 }, (_, i) => i)), { id: 'E/1%x' });
  p.file('', 'a/b', 'slash', { id: 'S-1' });
  p.file('', '..', 'dotdot', { id: 'S-2' });
  p.file('', 'dup', 'first', { id: 'dup-1' });
  p.file('', 'dup', 'second', { id: 'dup-2' });
  return p;
}

async function readAll(vfs: AssetVfs, path: string, chunk = 7): Promise<Buffer> {
  const { fh } = await vfs.open(path, constants.O_RDONLY);
  const parts: Buffer[] = [];
  try {
    for (let at = 0; ; ) {
      const buf = Buffer.alloc(chunk);
      const n = await vfs.read(fh, buf, chunk, at);
      if (n === 0) break;
      parts.push(buf.subarray(0, n));
      at += n;
    }
  } finally {
    await vfs.release(fh);
  }
  return Buffer.concat(parts);
}

const errCode = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: string }) => e.code);

describe('AssetVfs lookups and listings', () => {
  it('the root lists the sources as folders; getattr of the root and a source is a folder with the configured mode', async () => {
    const { vfs } = setup(catalog(), new MemoryProvider('other'));
    expect((await vfs.readdir('/')).map((d) => d.name)).toEqual(['cat', 'other']);
    expect(await vfs.getattr('/')).toMatchObject({ kind: 'dir', size: 4096, mode: 0o40755 });
    expect(await vfs.getattr('/cat')).toMatchObject({ kind: 'dir', mode: 0o40755 });
  });

  it('a source lists its entries with their kinds, sizes and mtimes (a 0 mtime shows as the mount start)', async () => {
    const before = Math.floor(Date.now() / 1000) * 1000;
    const { vfs } = setup(catalog());
    const list = await vfs.readdir('/cat');
    const byName = new Map(list.map((d) => [d.name, d.attr]));
    const second = [...byName.keys()].find((n) => n.startsWith('dup~'))!;
    expect(second).toMatch(/^dup~[0-9a-f]{8}$/);
    expect([...byName.keys()].sort()).toEqual(['dup', second, 'intro.txt', 'nomtime.bin', 'shows', '‛．‛．', 'a‛／b'].sort());
    expect(byName.get('intro.txt')).toEqual({ kind: 'file', size: 13, mtimeMs: versionedMtime(1_700_000_000_000, 'etag-1'), mode: 0o100644 });
    expect(byName.get('intro.txt')!.mtimeMs % 1000).toBe(versionedMtime(1_700_000_000_000, 'etag-1') % 1000);
    expect(byName.get('shows')).toEqual({ kind: 'dir', size: 4096, mtimeMs: 1_600_000_000_000, mode: 0o40755 });
    const started = byName.get('nomtime.bin')!.mtimeMs;
    expect(started - (started % 1000)).toBeGreaterThanOrEqual(before);
    expect(started - (started % 1000)).toBeLessThanOrEqual(Date.now());
    expect(await vfs.getattr('/cat/intro.txt')).toEqual(byName.get('intro.txt'));
    expect(await vfs.getattr('/cat/shows/ep1.mp4')).toMatchObject({ kind: 'file', size: 100 });
  });

  it('one listing serves every lookup in a folder until its TTL (and invalidate() forgets it)', async () => {
    const p = catalog();
    const { vfs } = setup(p);
    await vfs.getattr('/cat/intro.txt');
    await vfs.getattr('/cat/nomtime.bin');
    await vfs.readdir('/cat');
    expect(p.listCalls).toEqual(['']);
    vfs.invalidate('/cat');
    await vfs.getattr('/cat/intro.txt');
    expect(p.listCalls).toEqual(['', '']);
  });

  it('missing paths are ENOENT, a path through a file is ENOTDIR, listing a file is ENOTDIR', async () => {
    const { vfs } = setup(catalog());
    expect(await errCode(vfs.getattr('/nosource'))).toBe('ENOENT');
    expect(await errCode(vfs.getattr('/cat/missing'))).toBe('ENOENT');
    expect(await errCode(vfs.getattr('/cat/shows/missing'))).toBe('ENOENT');
    expect(await errCode(vfs.getattr('/cat/intro.txt/x'))).toBe('ENOTDIR');
    expect(await errCode(vfs.readdir('/cat/intro.txt'))).toBe('ENOTDIR');
    expect(await errCode(vfs.open('/cat/shows', constants.O_RDONLY))).toBe('EISDIR');
  });

  it('a read-only VFS refuses writes with EROFS', async () => {
    const { vfs } = setup(catalog());
    expect(await errCode(vfs.open('/cat/intro.txt', constants.O_WRONLY))).toBe('EROFS');
    expect(await errCode(vfs.create('/cat/new.txt'))).toBe('EROFS');
    expect(await errCode(vfs.mkdir('/cat/newdir'))).toBe('EROFS');
  });
});

describe('AssetVfs reads', () => {
  it('reads return the file\'s bytes exactly, across block boundaries and at any offset', async () => {
    const { vfs } = setup(catalog());
    const want = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    expect(await readAll(vfs, '/cat/shows/ep1.mp4', 7)).toEqual(want);
    expect(await readAll(vfs, '/cat/shows/ep1.mp4', 64)).toEqual(want);
    const { fh } = await vfs.open('/cat/shows/ep1.mp4', constants.O_RDONLY);
    const buf = Buffer.alloc(20);
    expect(await vfs.read(fh, buf, 20, 90)).toBe(10);
    expect(buf.subarray(0, 10)).toEqual(want.subarray(90));
    expect(await vfs.read(fh, buf, 20, 100)).toBe(0);
    await vfs.release(fh);
    expect(vfs.openFiles).toBe(0);
  });

  it('mapped names open their own entry: "a/b", "..", and the second "dup" of a folder', async () => {
    const { vfs } = setup(catalog());
    expect((await readAll(vfs, '/cat/a‛／b')).toString()).toBe('slash');
    expect((await readAll(vfs, '/cat/‛．‛．')).toString()).toBe('dotdot');
    expect((await readAll(vfs, '/cat/dup')).toString()).toBe('first');
    const second = (await vfs.readdir('/cat')).find((d) => d.name.startsWith('dup~'))!.name;
    expect((await readAll(vfs, `/cat/${second}`)).toString()).toBe('second');
  });

  it('a read of an unknown handle is EBADF', async () => {
    const { vfs } = setup(catalog());
    expect(await errCode(Promise.resolve().then(() => vfs.read(99, Buffer.alloc(4), 4, 0)))).toBe('EBADF');
  });
});

describe('AssetVfs .by-id', () => {
  it('opens an entry by its platform id with one API call and no listing; ids with "/" and "%" are escaped in the name', async () => {
    const p = catalog();
    const { vfs } = setup(p);
    expect(await vfs.getattr('/cat/.by-id/A-1')).toMatchObject({ kind: 'file', size: 13 });
    expect((await readAll(vfs, '/cat/.by-id/A-1')).toString()).toBe('hello, world\n');
    expect(await readAll(vfs, '/cat/.by-id/E%2F1%25x')).toEqual(Buffer.from(Array.from({ length: 100 }, (_, i) => i)));
    expect(p.listCalls).toEqual([]);
    expect(p.byIdCalls).toBe(2);
  });

  it('a folder found by id lists its children; .by-id itself is a folder that lists nothing and refuses writes', async () => {
    const { vfs } = setup(catalog());
    expect((await vfs.readdir('/cat/.by-id/D-1')).map((d) => d.name)).toEqual(['ep1.mp4']);
    expect(await readAll(vfs, '/cat/.by-id/D-1/ep1.mp4')).toEqual(Buffer.from(Array.from({ length: 100 }, (_, i) => i)));
    expect(await vfs.getattr('/cat/.by-id')).toMatchObject({ kind: 'dir' });
    expect(await vfs.readdir('/cat/.by-id')).toEqual([]);
    expect(await errCode(vfs.getattr('/cat/.by-id/NOPE'))).toBe('ENOENT');
    expect(await errCode(vfs.create('/cat/.by-id/x'))).toBe('EROFS');
  });

  it('xattrs name the source, id and version; pathOfId finds the mount path back', async () => {
    const { vfs } = setup(catalog());
    expect((await vfs.getxattr('/cat/shows/ep1.mp4', 'user.assetfs.id')).toString()).toBe('E/1%x');
    expect(await vfs.listxattr('/cat/intro.txt')).toEqual(['user.assetfs.source', 'user.assetfs.id', 'user.assetfs.version']);
    expect((await vfs.getxattr('/cat/intro.txt', 'user.assetfs.version')).toString()).toBe('etag-1');
    expect(await errCode(vfs.getxattr('/cat/intro.txt', 'user.other'))).toBe('ENODATA');
    expect(await vfs.pathOfId('cat', 'E/1%x')).toBe('/cat/shows/ep1.mp4');
    expect(await vfs.pathOfId('cat', 'S-1')).toBe('/cat/a‛／b');
  });

  it('a source without ids has no .by-id folder: the name is looked up like any other', async () => {
    const p = new MemoryProvider('plain', false);
    p.file('', 'x', 'x');
    const { vfs } = setup(p);
    expect(await errCode(vfs.getattr('/plain/.by-id'))).toBe('ENOENT');
    expect(await errCode(vfs.pathOfId('plain', 'x'))).toBe('ENOTSUP');
  });
});
