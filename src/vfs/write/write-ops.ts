/**
 * Writes into the mount: create, open for writing, write, truncate, close, fsync, unlink, mkdir, rmdir,
 * rename — on top of the staging area (staging.ts), which reaches the upload engine through its one
 * port (core/types.ts UploadPort). The VFS builds one WriteOps when the daemon gives it a staging area.
 *
 * What close and fsync mean (docs/semantics.md, "Writes into the mount"):
 *  - close(): every byte written is in the staged copy and on the local disk, and the file is journaled
 *    complete; its error, if any, is the first failed write's (ENOSPC for a full disk or
 *    uploads.stagingMax). The upload follows after uploads.writeBack and survives a crash.
 *  - fsync(): the same, then waits for the upload (at most uploads.fsyncTimeout) and returns 0 once the
 *    platform has it, EIO when the upload failed or is not done within the bound (it carries on).
 *
 * Honest errnos: EROFS on sources that cannot take uploads; EXDEV for renames the platform cannot do in
 * place (so that `mv` copies and deletes); ENOTEMPTY for non-empty folders; ENOSPC, never EIO, when
 * staging is full; EIO when a remote file could not be copied before a write into it.
 */
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Attr, BlockSource, ObjectVersion, RemoteEntry } from '../../core/types.js';
import { FsError, NotFoundError } from '../../core/errors.js';
import type { Uploader } from '../../upload/types.js';
import { readInto } from '../../read/object-reader.js';
import type { Staging } from './staging.js';
import type { StagedFile } from './staged-file.js';
import { WriteBehind } from './write-behind.js';

const O_ACCMODE = 3;
const FILE_MODE = 0o100644;
const COPY_CHUNK = 8 * 1024 * 1024;

export interface StagedHandle {
  readonly kind: 'staged';
  readonly file: StagedFile;
  readonly fh: FileHandle;
  readonly write: boolean;
  /** Writable handles only: writes are answered from a buffer (write-behind.ts). */
  readonly wb?: WriteBehind;
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

export interface WriteOptions {
  staging: Staging;
  /** The uploader of a source; undefined when it cannot take uploads (writes there are EROFS). */
  uploaderFor(source: string): Uploader | undefined;
  /** fsync's bound on waiting for the upload (uploads.fsyncTimeout). */
  fsyncTimeoutMs: number;
}

export const isWriteOpen = (flags: number) => (flags & O_ACCMODE) !== constants.O_RDONLY || (flags & constants.O_TRUNC) !== 0;

const split = (path: string) => path.split('/').filter(Boolean);
const parentOf = (path: string) => `/${split(path).slice(0, -1).join('/')}`;
const baseOf = (path: string) => split(path).at(-1) ?? '';

/** Any error of the write path as an FsError: a full disk (or journal) is ENOSPC, the rest EIO. */
export function writeError(e: unknown, what: string): FsError {
  if (e instanceof FsError) return e;
  const code = String((e as { code?: unknown })?.code ?? '');
  const msg = e instanceof Error ? e.message : String(e);
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return new FsError('ENOSPC', `${what}: no space left for staging: ${msg}`, { cause: e });
  return new FsError('EIO', `${what}: ${msg}`, { cause: e });
}

export class WriteOps {
  private readonly staging: Staging;

  constructor(
    private readonly opts: WriteOptions,
    private readonly vfs: VfsAccess,
  ) {
    this.staging = opts.staging;
  }

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
    const uploader = this.opts.uploaderFor(source);
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

  private writable(f: StagedFile, fh: FileHandle): StagedHandle {
    const wb = new WriteBehind(fh);
    f.buffers.add(wb);
    return { kind: 'staged', file: f, fh, write: true, wb };
  }

  /** A new file: it had no remote version, so a remote file that appears meanwhile is a conflict. */
  async create(path: string): Promise<StagedHandle> {
    const { source } = this.writableSource(path);
    await this.parentIsDir(path);
    try {
      const f = await this.staging.create(path, source, await this.remoteOf(path), null);
      return this.writable(f, await this.staging.openFile(f, true));
    } catch (e) {
      throw writeError(e, `create ${path}`);
    }
  }

  /** open() of a staged file, or of a remote file for writing (copied into staging unless O_TRUNC). */
  async open(path: string, flags: number, remote: RemoteEntry | undefined): Promise<StagedHandle | undefined> {
    const write = isWriteOpen(flags);
    const trunc = (flags & constants.O_TRUNC) !== 0;
    let f = this.staging.get(path);
    if (!f && !write) return undefined;
    let fresh = false;
    if (!f && !remote && write && this.staging.failedAt(path)) return this.create(path); // see Staging.failedPaths
    if (!f) {
      const { source } = this.writableSource(path);
      if (!remote) throw new NotFoundError(`${path} not found`);
      if (remote.kind === 'dir') throw new FsError('EISDIR', `${path} is a directory`);
      const obj: ObjectVersion = { source, ref: remote.ref, version: remote.version, size: remote.size };
      const names = await this.remoteOf(path);
      try {
        f = trunc
          ? await this.staging.create(path, source, names, remote.version)
          : await this.staging.copy(path, source, names, remote.version, remote.size, (fh) => this.copyRemote(path, fh, obj));
      } catch (e) {
        throw writeError(e, `${path}: could not copy the remote file before writing into it`);
      }
      fresh = true;
    } else if (write) {
      this.writableSource(path);
    }
    try {
      const fh = await this.staging.openFile(f, write);
      if (!write) return { kind: 'staged', file: f, fh, write };
      const h = this.writable(f, fh);
      if (trunc && !fresh) await this.resize(h, 0);
      return h;
    } catch (e) {
      throw writeError(e, `open ${path}`);
    }
  }

  private async copyRemote(path: string, fh: FileHandle, obj: ObjectVersion): Promise<void> {
    const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, obj.size)));
    for (let at = 0; at < obj.size; ) {
      const n = await readInto(this.vfs.blocks, obj, buf, Math.min(buf.length, obj.size - at), at);
      if (n <= 0) throw new FsError('EIO', `${path}: short read while copying the remote file`);
      await fh.write(buf, 0, n, at);
      at += n;
    }
  }

  async write(h: StagedHandle, buf: Buffer, length: number, position: number): Promise<number> {
    if (!h.write) throw new FsError('EBADF', `${h.file.path} is open read-only`);
    const f = h.file;
    let n: number;
    try {
      if (position + length > f.size) this.staging.reserve(position + length - f.size);
      await this.staging.modifying(f);
      n = await h.wb!.write(buf, length, position);
    } catch (e) {
      throw this.failed(f, e, 'write');
    }
    if (position + n > f.size) this.staging.resized(f, position + n);
    else f.mtimeMs = Date.now();
    return n;
  }

  /** A failed write or flush: the file leaves the mount (never a partial file looking complete). */
  private failed(f: StagedFile, e: unknown, op: string): FsError {
    const err = writeError(e, `${op} ${f.path}`);
    this.staging.failed(f, err);
    return err;
  }

  async read(h: StagedHandle, into: Buffer, length: number, position: number): Promise<number> {
    await this.flushAll(h.file);
    return (await h.fh.read(into, 0, length, position)).bytesRead;
  }

  /** Every handle's buffered writes of `f` are in its staged copy (or the first write error is thrown). */
  private async flushAll(f: StagedFile): Promise<void> {
    await Promise.all([...f.buffers].map((wb) => wb.flush()));
  }

  /** Buffered writes reach the staged copy and the disk; the file is journaled complete. */
  private async seal(h: StagedHandle): Promise<void> {
    await this.flushAll(h.file);
    if (h.file.state !== 'open') return;
    await h.fh.datasync();
    await this.staging.sealed(h.file);
  }

  /**
   * close() of a descriptor (FUSE flush): the file is complete on disk when it returns, and close()
   * reports the first failed write. With other writable handles still open it is sealed at their close.
   */
  async flush(h: StagedHandle): Promise<void> {
    if (!h.write) return;
    try {
      if (h.file.writers <= 1) await this.seal(h);
      else await this.flushAll(h.file);
    } catch (e) {
      throw this.failed(h.file, e, 'close');
    }
  }

  async release(h: StagedHandle): Promise<void> {
    try {
      if (h.wb) {
        await h.wb.flush().catch((e: unknown) => this.failed(h.file, e, 'close'));
        h.file.buffers.delete(h.wb);
        if (h.file.writers <= 1 && !h.file.failed) await this.seal(h).catch((e: unknown) => this.failed(h.file, e, 'close'));
      }
    } finally {
      await h.fh.close();
      if (h.write) this.staging.released(h.file);
    }
  }

  /** fsync: sealed like close, then the upload is waited for (bounded by uploads.fsyncTimeout). */
  async fsync(h: StagedHandle): Promise<void> {
    const deadline = Date.now() + this.opts.fsyncTimeoutMs;
    try {
      await this.flushAll(h.file);
      await h.fh.sync();
      if (h.file.state === 'open') await this.staging.sealed(h.file);
    } catch (e) {
      throw this.failed(h.file, e, 'fsync');
    }
    try {
      await this.staging.uploadNow(h.file, Math.max(0, deadline - Date.now()));
    } catch (e) {
      throw new FsError('EIO', `${h.file.path}: upload not confirmed: ${(e as Error).message}`, { cause: e });
    }
  }

  private async resize(h: StagedHandle, size: number): Promise<void> {
    const f = h.file;
    try {
      if (size > f.size) this.staging.reserve(size - f.size);
      await this.staging.modifying(f);
      await this.flushAll(f);
      await h.fh.truncate(size);
    } catch (e) {
      throw this.failed(f, e, 'truncate');
    }
    this.staging.resized(f, size);
  }

  async ftruncate(h: StagedHandle, size: number): Promise<void> {
    if (!h.write) throw new FsError('EBADF', `${h.file.path} is open read-only`);
    await this.resize(h, size);
  }

  async truncate(path: string, size: number, remote: RemoteEntry | undefined): Promise<void> {
    const h = (await this.open(path, constants.O_WRONLY | (size === 0 ? constants.O_TRUNC : 0), remote))!;
    try {
      await this.resize(h, size);
      await this.flush(h);
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
      // Replacing a remote file by rename is deliberate: the new base is the version it replaces.
      const target = await this.vfs.lookup(to);
      const base = target && 'ref' in target && target.kind === 'file' ? target.version : null;
      try {
        await this.staging.rename(f, to, await this.remoteOf(to), base);
      } catch (e) {
        throw writeError(e, `rename ${from}`);
      }
      return;
    }
    // Remote entries move only where the platform can do it in place; otherwise mv copies and deletes.
    if (!uploader.rename) throw new FsError('EXDEV', `${from}: the platform of "${source}" renames by copy and delete`);
    await uploader.rename({ source, path: await this.remoteOf(from) }, { source, path: await this.remoteOf(to) });
    this.vfs.invalidateDir(parentOf(from));
    this.vfs.invalidateDir(parentOf(to));
  }
}
