// Types of fuse-native 2.2.6 as patched for assetfs (PATCHED.md): the handlers with the arguments
// index.js passes them, including the patched signatures of `open` (patch 4: keepCache), `readdir`
// (patch 5: by offset, with attributes) and `getxattr`/`listxattr` (patch 8), and the mount options
// (patch 10: `options`, each its own libfuse argument), and patch 9's invalidatePaths.

declare class Fuse {
  constructor(mnt: string, ops: Partial<Fuse.Operations>, opts?: Fuse.FuseOptions);
  readonly mnt: string;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  /** libfuse workers' locals allocated so far (patch 6). */
  readonly workerLocals: number;
  /** The kernel forgets these paths' attributes and pages; `known`: how many it had (patch 9). */
  invalidatePaths(paths: readonly string[], cb: (err: Error | null, known: number) => void): void;
  /** Lazy unmount of any mount point with fusermount (patch 7: no shell). */
  static unmount(mnt: string, cb: (err: Error | null) => void): void;
  static readonly EPERM: number;
  static readonly ENOENT: number;
  static readonly EIO: number;
  static readonly EBADF: number;
  static readonly EACCES: number;
  static readonly EEXIST: number;
  static readonly ENOTDIR: number;
  static readonly EISDIR: number;
  static readonly EINVAL: number;
  static readonly ENOSPC: number;
  static readonly EROFS: number;
  static readonly ENOTEMPTY: number;
  static readonly ENODATA: number;
  static readonly ENOSYS: number;
}

declare namespace Fuse {
  /** 0 for success, or a negative errno (`-2` for ENOENT…). */
  export type Errno = number;

  /** What a handler answers for an entry; absent numbers are 0 (nlink 1), absent times "now". */
  export interface Stat {
    mode: number;
    size: number;
    uid: number;
    gid: number;
    mtime: Date | number;
    atime: Date | number;
    ctime: Date | number;
    nlink?: number;
    /** The inode number shown by readdir (patch 5); 0 lets libfuse choose. */
    ino?: number;
    dev?: number;
    rdev?: number;
    blksize?: number;
    blocks?: number;
  }

  export interface Statfs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid?: number;
    flag?: number;
    namemax: number;
  }

  export type Done = (err: Errno) => void;

  /**
   * The handlers. `path` is null for operations on an open file that was already unlinked (the mount
   * uses hard_remove; patch 2). Any handler left out answers EPERM (getattr: only `/` exists).
   */
  export interface Operations {
    init(cb: Done): void;
    error(cb: Done): void;
    access(path: string, mode: number, cb: Done): void;
    statfs(path: string, cb: (err: Errno, statfs?: Statfs) => void): void;
    getattr(path: string | null, cb: (err: Errno, stat?: Stat) => void): void;
    fgetattr(path: string | null, fd: number, cb: (err: Errno, stat?: Stat) => void): void;
    flush(path: string | null, fd: number, cb: Done): void;
    /** Note the order: (path, datasync, fd), unlike every other handle-based operation. */
    fsync(path: string | null, datasync: number, fd: number, cb: Done): void;
    fsyncdir(path: string, datasync: number, fd: number, cb: Done): void;
    /**
     * Patch 5: the entries after `offset` (the kernel's position in the directory) of the directory open
     * as `fd`, with their attributes when `stats` is given (READDIRPLUS). Entry i of the answer gets the
     * offset `offset + i + 1`; an empty answer ends the listing.
     */
    readdir(path: string, offset: number, fd: number, cb: (err: Errno, names?: readonly string[], stats?: readonly Stat[]) => void): void;
    truncate(path: string, size: number, cb: Done): void;
    ftruncate(path: string | null, fd: number, size: number, cb: Done): void;
    utimens(path: string, atime: number, mtime: number, cb: Done): void;
    readlink(path: string, cb: (err: Errno, linkname?: string) => void): void;
    chown(path: string, uid: number, gid: number, cb: Done): void;
    chmod(path: string, mode: number, cb: Done): void;
    mknod(path: string, mode: number, dev: number, cb: Done): void;
    setxattr(path: string | null, name: string, value: Buffer, position: number, flags: number, cb: Done): void;
    /** Patch 8: answer the whole value; the size probe and ERANGE are handled for you. */
    getxattr(path: string | null, name: string, position: number, cb: (err: Errno, value?: Buffer) => void): void;
    /** Patch 8: answer the names; the size probe and ERANGE are handled for you. */
    listxattr(path: string | null, cb: (err: Errno, names?: readonly string[]) => void): void;
    removexattr(path: string | null, name: string, cb: Done): void;
    /** Patch 4: `keepCache` true lets the kernel keep the pages it cached for the file (FOPEN_KEEP_CACHE). */
    open(path: string, flags: number, cb: (err: Errno, fd?: number, keepCache?: boolean) => void): void;
    opendir(path: string, flags: number, cb: (err: Errno, fd?: number) => void): void;
    /** Reply with the number of bytes copied into `buf` (0 at the end of the file) or a negative errno. */
    read(path: string | null, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
    /** Reply with the number of bytes taken from `buf` or a negative errno. */
    write(path: string | null, fd: number, buf: Buffer, len: number, pos: number, cb: (bytesOrErr: number) => void): void;
    release(path: string | null, fd: number, cb: Done): void;
    releasedir(path: string, fd: number, cb: Done): void;
    create(path: string, mode: number, cb: (err: Errno, fd?: number) => void): void;
    unlink(path: string, cb: Done): void;
    rename(src: string, dest: string, cb: Done): void;
    link(src: string, dest: string, cb: Done): void;
    symlink(src: string, dest: string, cb: Done): void;
    mkdir(path: string, mode: number, cb: Done): void;
    rmdir(path: string, cb: Done): void;
  }

  export interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    allowOther?: boolean;
    allowRoot?: boolean;
    autoUnmount?: boolean;
    defaultPermissions?: boolean;
    maxRead?: number;
    fsname?: string;
    subtype?: string;
    kernelCache?: boolean;
    autoCache?: boolean;
    entryTimeout?: number;
    attrTimeout?: number;
    acAttrTimeout?: number;
    uid?: number;
    gid?: number;
    umask?: number;
    /** Patch 10: libfuse options added verbatim, each its own argument (`hard_remove`, `max_background=64`…). */
    options?: readonly string[];
    /** ms before an unanswered handler fails with ETIMEDOUT (default 15 s); false: never; per operation by name. */
    timeout?: number | false | Partial<Record<keyof Operations | 'default', number | false>>;
  }
}

export = Fuse;
