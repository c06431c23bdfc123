/**
 * The only bridge between fuse-native and the VFS, and the only place where errors become errno
 * numbers. Each operation is call-and-reply; no I/O happens here. fuse-native calls every handler on
 * the JS main thread, so a handler must never block: all work is async in the VFS.
 */
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Attr, Vfs } from '../core/types.js';
import { isFsError, type ErrnoCode } from '../core/errors.js';
import type { Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import { describeError } from '../util/error-text.js';
import type { RecentEvents } from '../util/recent.js';
import { setKernelReadahead } from './kernel-readahead.js';
import { DirPages } from './dir-pages.js';
import type { FuseMeter } from '../metrics/metrics.js';

type Cb = (...args: any[]) => void;

export interface MountOptions {
  mountpoint: string;
  vfs: Vfs;
  log: Logger;
  /** Kernel attribute/entry cache lifetime, seconds (from the metadata TTL). */
  attrTimeoutSec: number;
  allowOther: boolean;
  /** The kernel's max_background (async requests in flight), unless extraOptions sets it. */
  maxBackground: number;
  /** Extra libfuse options, e.g. congestion_threshold=32 (fuse-native has no option for them). */
  extraOptions: readonly string[];
  /** A handler that has not replied after this long fails with ETIMEDOUT (fuse-native's own timer). */
  opTimeoutMs: number;
  /** The same for fsync, which bounds its own wait for the upload (uploads.fsyncTimeout) below this. */
  fsyncTimeoutMs?: number;
  /** Errors returned to readers, for `assetfs status`. */
  recent?: RecentEvents;
  /** The kernel's readahead for the mount (read_ahead_kb), which also sizes its read requests (≤ 1 MiB). */
  kernelReadaheadKb: number;
  /** Counts and times every request (assetfs_fuse_*). */
  meter?: FuseMeter;
}

export interface MountedFs {
  readonly mountpoint: string;
  /** Lazy unmount; open files stay served until released. */
  unmount(): Promise<void>;
  /** libfuse worker threads' locals allocated so far: bounded by the most workers alive at once (vendor/fuse-native patches 1 and 6). */
  workerLocals(): number;
  /**
   * The kernel forgets the attributes and cached pages of these mount paths (vendor/fuse-native patch
   * 9), so its next stat asks the daemon. Resolves with how many of them the kernel knew.
   */
  invalidate(paths: readonly string[]): Promise<number>;
}

/** Thrown when the FUSE binding can't be loaded (missing libfuse3.so.3): one line naming the fix. */
export class FuseUnavailableError extends Error {}

const ERRNO = osConstants.errno as Record<string, number>;

/** FsError code → negative errno; anything unexpected is EIO (and logged, since it is a bug or an unmapped fault). */
export function toErrno(e: unknown, log: Logger, op: string, path: string, recent?: RecentEvents): number {
  if (isFsError(e)) {
    const code: ErrnoCode | 'EOPNOTSUPP' = e.code === 'ENOTSUP' ? 'EOPNOTSUPP' : e.code;
    if (e.code === 'EIO' || e.code === 'EACCES' || e.code === 'EAGAIN') {
      // The line names the cause (`wordbee source "x": login refused: HTTP 404 …`), not just the errno.
      log.warn({ op, path, err: e }, `${e.code} returned to the reader: ${describeError(e)}`);
      recent?.add(`${op}: ${e.code}: ${redactText(e.message)}`, path);
    } else {
      log.debug({ op, path, code: e.code, msg: e.message }, 'operation failed');
    }
    return -(ERRNO[code] ?? ERRNO.EIO!);
  }
  log.error({ op, path, err: e }, `unexpected error; returning EIO: ${describeError(e)}`);
  recent?.add(`${op}: EIO: ${redactText(describeError(e))}`, path);
  return -ERRNO.EIO!;
}

function toStat(a: Attr, uid: number, gid: number, ino?: number) {
  const t = new Date(a.mtimeMs);
  return {
    ino,
    mode: a.mode,
    size: a.size,
    uid,
    gid,
    nlink: a.kind === 'dir' ? 2 : 1,
    blksize: 4096,
    blocks: Math.ceil(a.size / 512),
    atime: t,
    mtime: t,
    ctime: t,
  };
}

/**
 * libfuse's "inode number not known" (FUSE_UNKNOWN_INO), for `.` and `..`: the other entries get the
 * node ids of their lookups, these two get no lookup, and an entry with inode 0 is skipped by glibc's
 * readdir as deleted (`ls -a` showed neither).
 */
const UNKNOWN_INO = 0xffffffff;
const isDot = (name: string) => name === '.' || name === '..';

/** A directory's entries after `.` and `..` (no remote name can be either: vfs/names.ts escapes them). */
async function listWithDots(vfs: Vfs, path: string): Promise<Array<{ name: string; attr: Attr }>> {
  const parent = path === '/' ? '/' : posix.dirname(path);
  const [self, up, entries] = await Promise.all([vfs.getattr(path), vfs.getattr(parent), vfs.readdir(path)]);
  return [{ name: '.', attr: self }, { name: '..', attr: up }, ...entries];
}

async function loadFuse(): Promise<typeof import('fuse-native').default> {
  try {
    return (await import('fuse-native')).default;
  } catch (e) {
    const msg = String((e as Error).message ?? e);
    if (/libfuse3\.so\.3/.test(msg)) {
      throw new FuseUnavailableError('libfuse3.so.3 is missing: install it with `apt-get install fuse3`');
    }
    throw new FuseUnavailableError(`the FUSE binding (fuse-native) could not be loaded: ${msg.split('\n')[0]}; run \`npm ci\``);
  }
}

export function buildOps(vfs: Vfs, log: Logger, recent?: RecentEvents, meter?: FuseMeter): Record<string, Cb> {
  const { uid, gid } = vfs.owner;
  const fail = (op: string, path: string) => (e: unknown) => toErrno(e, log, op, path, recent);
  const dirs = new DirPages();
  let warnedOldAddon = false;
  const reads = meter?.op('read');
  const ops: Record<string, Cb> = {
    // path is null for an open file already unlinked (hard_remove): fstat of it (fuse-native answers
    // fgetattr with getattr) finds nothing. The handle-based operations use the handle, not the path.
    getattr(path: string | null, cb: Cb) {
      if (path === null) return cb(-ERRNO.ENOENT!);
      vfs.getattr(path).then((a) => cb(0, toStat(a, uid, gid)), (e) => cb(fail('getattr', path)(e)));
    },
    opendir(_path: string, _fh: number, cb: Cb) {
      cb(0, dirs.opendir());
    },
    // By offset (fuse-native patch 5), so that READDIRPLUS carries every entry's attributes: `ls -l`
    // then needs no LOOKUP per entry.
    readdir(path: string, offset: number, fh: number, cb: Cb) {
      dirs.page(fh, offset, () => listWithDots(vfs, path)).then(
        (page) => cb(0, page.map((d) => d.name), page.map((d) => toStat(d.attr, uid, gid, isDot(d.name) ? UNKNOWN_INO : undefined))),
        (e) => cb(fail('readdir', path)(e)),
      );
    },
    releasedir(_path: string, fh: number, cb: Cb) {
      dirs.releasedir(fh);
      cb(0);
    },
    open(path: string, flags: number, cb: Cb) {
      // keepCache → FOPEN_KEEP_CACHE (our fuse-native, patch 4); otherwise the kernel drops the file's cached pages.
      vfs.open(path, flags).then((f) => cb(0, f.fh, f.keepCache), (e) => cb(fail('open', path)(e)));
    },
    read(path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) {
      // Answered in this same call when the blocks are in memory: no promise per hot 128 KiB request,
      // and counted without a closure.
      const startedMs = reads ? performance.now() : 0;
      const n = vfs.read(fh, buf, len, pos);
      if (typeof n === 'number') {
        reads?.end(startedMs, n);
        return cb(n);
      }
      n.then(
        (got) => {
          reads?.end(startedMs, got);
          cb(got);
        },
        (e) => {
          const errno = fail('read', path)(e);
          reads?.end(startedMs, errno);
          cb(errno);
        },
      );
    },
    release(path: string, fh: number, cb: Cb) {
      vfs.release(fh).then(() => cb(0), (e) => cb(fail('release', path)(e)));
    },
    create(path: string, _mode: number, cb: Cb) {
      vfs.create(path).then((fh) => cb(0, fh), (e) => cb(fail('create', path)(e)));
    },
    write(path: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) {
      vfs.write(fh, buf, len, pos).then((n) => cb(n), (e) => cb(fail('write', path)(e)));
    },
    // fuse-native passes (path, datasync, fd) here, unlike every other handler.
    fsync(path: string, _datasync: number, fh: number, cb: Cb) {
      vfs.fsync(fh).then(() => cb(0), (e) => cb(fail('fsync', path)(e)));
    },
    flush(path: string, fh: number, cb: Cb) {
      // Buffered writes reach the staged copy, so close() reports their failure. Uploads start at
      // release (after the write-back delay) or at fsync, not at every close of a dup.
      vfs.flush(fh).then(() => cb(0), (e) => cb(fail('flush', path)(e)));
    },
    truncate(path: string, size: number, cb: Cb) {
      vfs.truncate(path, size).then(() => cb(0), (e) => cb(fail('truncate', path)(e)));
    },
    ftruncate(path: string, fh: number, size: number, cb: Cb) {
      vfs.ftruncate(fh, size).then(() => cb(0), (e) => cb(fail('ftruncate', path)(e)));
    },
    unlink(path: string, cb: Cb) {
      vfs.unlink(path).then(() => cb(0), (e) => cb(fail('unlink', path)(e)));
    },
    mkdir(path: string, _mode: number, cb: Cb) {
      vfs.mkdir(path).then(() => cb(0), (e) => cb(fail('mkdir', path)(e)));
    },
    rmdir(path: string, cb: Cb) {
      vfs.rmdir(path).then(() => cb(0), (e) => cb(fail('rmdir', path)(e)));
    },
    rename(from: string, to: string, cb: Cb) {
      vfs.rename(from, to).then(() => cb(0), (e) => cb(fail('rename', from)(e)));
    },
    chmod(path: string, mode: number, cb: Cb) {
      vfs.setattr(path, { kind: 'mode', mode }).then(() => cb(0), (e) => cb(fail('chmod', path)(e)));
    },
    chown(path: string, toUid: number, toGid: number, cb: Cb) {
      vfs.setattr(path, { kind: 'owner', uid: toUid, gid: toGid }).then(() => cb(0), (e) => cb(fail('chown', path)(e)));
    },
    utimens(path: string, _atime: unknown, _mtime: unknown, cb: Cb) {
      vfs.setattr(path, { kind: 'times' }).then(() => cb(0), (e) => cb(fail('utimens', path)(e)));
    },
    // Extended attributes (read-only user.assetfs.*; docs/semantics.md#platform-ids). fuse-native
    // answers the size probes and ERANGE itself, and names outside user. in its C worker (vendor patch
    // 8): the kernel asks for security.capability before every write once getxattr exists.
    // path is null for an open file already unlinked (see getattr): it has no attributes left.
    getxattr(path: string | null, name: string, _position: number, cb: Cb) {
      if (!name.startsWith('user.')) {
        if (!warnedOldAddon) log.warn({ name }, 'the fuse-native addon predates its patch 8, so every write waits for a getxattr here: rebuild it (scripts/setup.sh)');
        warnedOldAddon = true;
        return cb(-ERRNO.ENODATA!);
      }
      if (!vfs.getxattr || path === null) return cb(-ERRNO.ENODATA!);
      vfs.getxattr(path, name).then((v) => cb(0, v), (e) => cb(fail('getxattr', path)(e)));
    },
    listxattr(path: string | null, cb: Cb) {
      if (!vfs.listxattr || path === null) return cb(0, []);
      vfs.listxattr(path).then((names) => cb(0, names), (e) => cb(fail('listxattr', path)(e)));
    },
    setxattr(path: string | null, name: string, _value: Buffer, _position: number, _flags: number, cb: Cb) {
      if (!vfs.setxattr || path === null) return cb(-ERRNO.EOPNOTSUPP!);
      vfs.setxattr(path, name).then(() => cb(0), (e) => cb(fail('setxattr', path)(e)));
    },
    removexattr(path: string | null, name: string, cb: Cb) {
      if (!vfs.removexattr || path === null) return cb(-ERRNO.EOPNOTSUPP!);
      vfs.removexattr(path, name).then(() => cb(0), (e) => cb(fail('removexattr', path)(e)));
    },
    statfs(path: string, cb: Cb) {
      vfs.statfs().then(
        (s) => cb(0, { bsize: s.blockSize, frsize: s.blockSize, blocks: s.blocks, bfree: s.free, bavail: s.free, files: s.files, ffree: s.files, favail: s.files, namemax: 255 }),
        (e) => cb(fail('statfs', path)(e)),
      );
    },
  };
  return meter ? metered(ops, meter) : ops;
}

/**
 * Every operation but read (which counts itself) counted and timed through its callback, whose first
 * argument is the result: 0 or a byte count, or a negative errno.
 */
function metered(ops: Record<string, Cb>, meter: FuseMeter): Record<string, Cb> {
  for (const [name, handler] of Object.entries(ops)) {
    if (name === 'read') continue;
    const m = meter.op(name);
    ops[name] = (...args: any[]) => {
      const startedMs = performance.now();
      const cb = args[args.length - 1] as Cb;
      args[args.length - 1] = (result: number, ...rest: unknown[]) => {
        m.end(startedMs, result);
        cb(result, ...rest);
      };
      handler(...args);
    };
  }
  return ops;
}

/** Mount `vfs` at `mountpoint`. Resolves once the kernel has the mount. */
export async function mountVfs(o: MountOptions): Promise<MountedFs> {
  const Fuse = await loadFuse();
  // fuse-native concatenates fsname unescaped into the -o string: that is how extra options get through.
  // hard_remove: an unlink of an open file reaches the VFS as an unlink. Without it, libfuse renames
  // the file to .fuse_hidden… instead, which the platforms answer with EXDEV (so `mv` and `rm` failed
  // whenever a close was still in flight), and which would have uploaded a staged file under that name.
  const ownMaxBackground = o.extraOptions.some((x) => x.startsWith('max_background='));
  const fsname = ['assetfs', 'hard_remove', ...(ownMaxBackground ? [] : [`max_background=${o.maxBackground}`]), ...o.extraOptions].join(',');
  const fuse = new Fuse(o.mountpoint, buildOps(o.vfs, o.log, o.recent, o.meter), {
    fsname,
    subtype: 'assetfs',
    // No auto_cache: each open says itself whether the kernel keeps the file's pages (keepCache, exact
    // per object version); auto_cache would override that with a guess from size and mtime.
    attrTimeout: o.attrTimeoutSec,
    entryTimeout: o.attrTimeoutSec,
    allowOther: o.allowOther,
    // Other users reach the mount only through the kernel's own checks of the owner and modes the VFS
    // reports (fuse.uid/gid/fileMode/dirMode): without it, every user could read and delete every file.
    defaultPermissions: o.allowOther,
    timeout: { default: o.opTimeoutMs, fsync: Math.max(o.opTimeoutMs, o.fsyncTimeoutMs ?? 0) },
  });
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve())));
  const ra = await setKernelReadahead(o.mountpoint, o.kernelReadaheadKb);
  if (ra.reason) o.log.info({ readaheadKb: ra.kb, reason: ra.reason }, 'kernel readahead for the mount left as it was');
  else o.log.debug({ readaheadKb: ra.kb }, 'kernel readahead for the mount');
  let detached: Promise<void> | undefined;
  return {
    mountpoint: o.mountpoint,
    // A lazy detach (fusermount -uz): the path is free at once, while files already open keep being
    // served until released; the libfuse loop ends by itself when the last reference goes.
    unmount() {
      detached ??= new Promise<void>((resolve, reject) => Fuse.unmount(o.mountpoint, (err) => (err ? reject(err) : resolve())));
      return detached;
    },
    workerLocals: () => fuse.workerLocals,
    invalidate: (paths) => new Promise<number>((resolve, reject) => fuse.invalidatePaths(paths, (err, known) => (err ? reject(err) : resolve(known)))),
  };
}
