/**
 * Writes into the mount: create, write, truncate, fsync, unlink, mkdir, rmdir, rename — on top of the
 * staging area (staging.ts) and the upload engine. The VFS delegates here once writes are enabled.
 *
 * Honest errnos: EROFS on sources that cannot take uploads (read-only, or platforms without an
 * uploader); EXDEV for renames the platform cannot do in place (remote files and folders, across
 * sources), so that `mv` falls back to copy + delete; ENOTEMPTY for non-empty folders.
 */
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Attr, BlockSource, ObjectVersion, RemoteEntry } from '../core/types.js';
import { FsError, NotFoundError } from '../core/errors.js';
import type { Uploader } from '../upload/types.js';
import { readInto } from '../read/object-reader.js';
import type { Staging, StagedFile } from './staging.js';
import { WriteBehind } from './write-behind.js';

const O_ACCMODE = 3;
const FILE_MODE = 0o100644;
const COPY_CHUNK = 8 * 1024 * 1024;

export interface StagedHandle {
  readonly kind: 'staged';
  readonly f: StagedFile;
  readonly fh: FileHandle;
  readonly write: boolean;
  /** Writable handles only: writes are answered from a buffer (write-behind.ts). */
  readonly wb?: WriteBehind;
}

/** Buffered writes of every open handle of a staged file, per file: reads and stats must see them. */
const buffered = new WeakMap<StagedFile, Set<WriteBehind>>();

/** Every handle's buffered writes of `f` are in its staged file (or the first write error is thrown). */
async function flushAll(f: StagedFile): Promise<void> {
  await Promise.all([...(buffered.get(f) ?? [])].map((wb) => wb.flush()));
}

function writableHandle(f: StagedFile, fh: FileHandle): StagedHandle {
  const wb = new WriteBehind(fh);
  let set = buffered.get(f);
  if (!set) buffered.set(f, (set = new Set()));
  set.add(wb);
  return { kind: 'staged', f, fh, write: true, wb };
}

/** What the write side needs from the VFS. */
export interface VfsAccess {
  /** The remote entry at a mount path (undefined when absent); throws for broken paths. */
  lookup(path: string): Promise<RemoteEntry | { kind: 'root' | 'source' } | undefined>;
  /**
   * Remote names of each segment of a path below its source: a listed entry's own name, else the local
   * name read back (names.ts remoteNameOf), so writes of a mapped name go to the remote name.
   */
  remoteNames(path: string): Promise<string[]>;
  children(path: string): Promise<string[]>;
  invalidateDir(path: string): void;
  blocks: BlockSource;
}

export const isWriteOpen = (flags: number) => (flags & O_ACCMODE) !== constants.O_RDONLY || (flags & constants.O_TRUNC) !== 0;

const split = (path: string) => path.split('/').filter(Boolean);
const parentOf = (path: string) => `/${split(path).slice(0, -1).join('/')}`;
const baseOf = (path: string) => split(path).at(-1) ?? '';

export class WriteOps {
  constructor(
    private readonly staging: Staging,
    private readonly vfs: VfsAccess,
    private readonly uploaderFor: (source: string) => Uploader | undefined,
  ) {}

  stagedAttr(path: string): Attr | undefined {
    const f = this.staging.get(path);
    if (f) return { kind: 'file', size: f.size, mtimeMs: f.mtimeMs, mode: FILE_MODE };
    if (this.staging.isDir(path)) return { kind: 'dir', size: 4096, mtimeMs: Date.now(), mode: 0o40755 };
    return undefined;
  }

  /** Names and attributes the staging area adds to a folder listing. */
  overlay(dir: string): { name: string; attr: Attr }[] {
    const { files, dirs } = this.staging.children(dir);
    return [
      ...files.map((f) => ({ name: baseOf(f.path), attr: { kind: 'file' as const, size: f.size, mtimeMs: f.mtimeMs, mode: FILE_MODE } })),
      ...dirs.map((name) => ({ name, attr: { kind: 'dir' as const, size: 4096, mtimeMs: Date.now(), mode: 0o40755 } })),
    ];
  }

  private writableSource(path: string): { source: string; uploader: Uploader } {
    const source = split(path)[0];
    if (!source || split(path).length < 2) throw new FsError('EROFS', `${path}: the mount root and source folders cannot be changed`);
    const uploader = this.uploaderFor(source);
    if (!uploader) throw new FsError('EROFS', `${path}: source "${source}" is read-only (or its platform takes no uploads yet)`);
    return { source, uploader };
  }

  private async parentIsDir(path: string): Promise<void> {
    const parent = parentOf(path);
    if (this.staging.isDir(parent)) return;
    const e = await this.vfs.lookup(parent);
    if (!e) throw new NotFoundError(`${parent} does not exist`);
    if (e.kind === 'file') throw new FsError('ENOTDIR', `${parent} is not a directory`);
  }

  private async remoteOf(path: string): Promise<string[]> {
    return this.vfs.remoteNames(path);
  }

  async create(path: string): Promise<StagedHandle> {
    const { source } = this.writableSource(path);
    await this.parentIsDir(path);
    const f = await this.staging.create(path, source, await this.remoteOf(path));
    return writableHandle(f, await this.staging.openFile(f, true));
  }

  /** open() of a staged file, or of a remote file for writing (copied into staging unless O_TRUNC). */
  async open(path: string, flags: number, remote: RemoteEntry | undefined): Promise<StagedHandle | undefined> {
    const write = isWriteOpen(flags);
    let f = this.staging.get(path);
    if (!f && !write) return undefined;
    if (!f) {
      const { source } = this.writableSource(path);
      if (!remote) throw new NotFoundError(`${path} not found`);
      if (remote.kind === 'dir') throw new FsError('EISDIR', `${path} is a directory`);
      f = await this.staging.create(path, source, await this.remoteOf(path));
      if (!(flags & constants.O_TRUNC)) await this.copyRemote(f, { source, ref: remote.ref, version: remote.version, size: remote.size });
    } else if (write) {
      this.writableSource(path);
    }
    const fh = await this.staging.openFile(f, write);
    if (write && flags & constants.O_TRUNC) {
      await flushAll(f);
      await fh.truncate(0);
      await this.staging.wrote(f, fh);
    }
    return write ? writableHandle(f, fh) : { kind: 'staged', f, fh, write };
  }

  private async copyRemote(f: StagedFile, obj: ObjectVersion): Promise<void> {
    const fh = await this.staging.openFile(f, true);
    try {
      const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, obj.size)));
      for (let at = 0; at < obj.size; ) {
        const n = await readInto(this.vfs.blocks, obj, buf, Math.min(buf.length, obj.size - at), at);
        if (n <= 0) throw new FsError('EIO', `${f.path}: short read while copying the remote file`);
        await fh.write(buf, 0, n, at);
        at += n;
      }
      await this.staging.wrote(f, fh);
    } finally {
      await fh.close();
      f.writers = Math.max(0, f.writers - 1);
    }
  }

  async write(h: StagedHandle, buf: Buffer, length: number, position: number): Promise<number> {
    if (!h.write) throw new FsError('EBADF', `${h.f.path} is open read-only`);
    const bytesWritten = await h.wb!.write(buf, length, position);
    h.f.dirty = true;
    if (position + bytesWritten > h.f.size) h.f.size = position + bytesWritten;
    h.f.mtimeMs = Date.now();
    return bytesWritten;
  }

  async read(h: StagedHandle, into: Buffer, length: number, position: number): Promise<number> {
    await flushAll(h.f);
    return (await h.fh.read(into, 0, length, position)).bytesRead;
  }

  /** close() of a descriptor (FUSE flush): buffered writes reach the staged file; their error is close()'s. */
  async flush(h: StagedHandle): Promise<void> {
    await h.wb?.flush();
  }

  async release(h: StagedHandle): Promise<void> {
    try {
      if (h.wb) {
        buffered.get(h.f)?.delete(h.wb);
        // A staged copy that missed some writes must not be uploaded (close() already reported why).
        await h.wb.flush().catch(() => (h.f.dirty = false));
      }
      if (h.write && h.f.dirty) await this.staging.wrote(h.f, h.fh);
    } finally {
      await h.fh.close();
      if (h.write) this.staging.closedWriter(h.f);
    }
  }

  async fsync(h: StagedHandle): Promise<void> {
    if (!h.write) return;
    await h.wb?.flush();
    await h.fh.sync();
    await this.staging.wrote(h.f, h.fh);
    try {
      await this.staging.flush(h.f);
    } catch (e) {
      throw new FsError('EIO', `${h.f.path}: upload failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async ftruncate(h: StagedHandle, size: number): Promise<void> {
    if (!h.write) throw new FsError('EBADF', `${h.f.path} is open read-only`);
    await flushAll(h.f);
    await h.fh.truncate(size);
    await this.staging.wrote(h.f, h.fh);
  }

  async truncate(path: string, size: number, remote: RemoteEntry | undefined): Promise<void> {
    const h = (await this.open(path, constants.O_WRONLY | (size === 0 ? constants.O_TRUNC : 0), remote))!;
    try {
      await this.ftruncate(h, size);
    } finally {
      await this.release(h);
    }
  }

  async unlink(path: string, remote: RemoteEntry | undefined): Promise<void> {
    const f = this.staging.get(path);
    if (!f && !remote) throw new NotFoundError(`${path} not found`);
    if (remote?.kind === 'dir') throw new FsError('EISDIR', `${path} is a directory`);
    const { source, uploader } = this.writableSource(path);
    if (f) this.staging.remove(f);
    if (remote) {
      if (!uploader.remove) throw new FsError('ENOTSUP', `${path}: the platform of "${source}" cannot delete files`);
      await uploader.remove({ source, path: await this.remoteOf(path) });
      this.vfs.invalidateDir(parentOf(path));
    }
  }

  async mkdir(path: string, existing: boolean): Promise<void> {
    const { source, uploader } = this.writableSource(path);
    if (existing || this.staging.isDir(path) || this.staging.get(path)) throw new FsError('EEXIST', `${path} exists`);
    await this.parentIsDir(path);
    const made = uploader.mkdir ? await uploader.mkdir({ source, path: await this.remoteOf(path) }) : 'prefix';
    // A name prefix (object stores, MK.IO below an asset) exists remotely once a file is in it.
    if (made === 'prefix') this.staging.addDir(path);
    else this.vfs.invalidateDir(parentOf(path));
  }

  async rmdir(path: string, remote: RemoteEntry | undefined): Promise<void> {
    this.writableSource(path);
    const staged = this.staging.children(path);
    if (staged.files.length || staged.dirs.length) throw new FsError('ENOTEMPTY', `${path} is not empty`);
    if (remote) {
      if (remote.kind !== 'dir') throw new FsError('ENOTDIR', `${path} is not a directory`);
      if ((await this.vfs.children(path)).length) throw new FsError('ENOTEMPTY', `${path} is not empty`);
    }
    if (!this.staging.removeDir(path) && !remote) throw new NotFoundError(`${path} not found`);
    const { source, uploader } = this.writableSource(path);
    if (remote && uploader.rmdir) await uploader.rmdir({ source, path: await this.remoteOf(path) });
    this.vfs.invalidateDir(parentOf(path));
  }

  async rename(from: string, to: string): Promise<void> {
    const f = this.staging.get(from);
    if (split(from)[0] !== split(to)[0]) throw new FsError('EXDEV', `${from} → ${to}: across sources`);
    const { source, uploader } = this.writableSource(to);
    await this.parentIsDir(to);
    if (f) {
      this.staging.rename(f, to, await this.remoteOf(to));
      return;
    }
    // Remote entries move only where the platform can do it in place; otherwise mv copies and deletes.
    if (!uploader.rename) throw new FsError('EXDEV', `${from}: the platform of "${source}" renames by copy and delete`);
    await uploader.rename({ source, path: await this.remoteOf(from) }, { source, path: await this.remoteOf(to) });
    this.vfs.invalidateDir(parentOf(from));
    this.vfs.invalidateDir(parentOf(to));
  }
}
