/**
 * The baseline FUSE filesystem for benchmarks: one file of N bytes held in memory (writes to it are
 * accepted and dropped), served by
 * fuse-native with the same mount options and kernel readahead assetfs uses. Run as a child:
 * `node trivial-fs.js MNT BYTES [READAHEAD_KB]`.
 */
import Fuse from 'fuse-native';
import { setKernelReadahead } from '../src/fuse/kernel-readahead.js';

const [mnt, bytesArg, readaheadArg] = process.argv.slice(2);
const size = Number(bytesArg);
const data = Buffer.alloc(size, 7);
const now = new Date();
const stat = (mode: number, sz: number) => ({ mode, size: sz, uid: 0, gid: 0, nlink: 1, mtime: now, atime: now, ctime: now });

const fuse = new Fuse(
  mnt!,
  {
    getattr: (p: string, cb: (...a: unknown[]) => void) =>
      p === '/' ? cb(0, stat(0o40755, 4096)) : p === '/data.bin' ? cb(0, stat(0o100644, size)) : cb(Fuse.ENOENT),
    readdir: (_p: string, cb: (...a: unknown[]) => void) => cb(0, ['data.bin']),
    open: (_p: string, _f: number, cb: (...a: unknown[]) => void) => cb(0, 1),
    release: (_p: string, _fd: number, cb: (...a: unknown[]) => void) => cb(0),
    read: (_p: string, _fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
      const n = Math.max(0, Math.min(len, size - pos));
      data.copy(buf, 0, pos, pos + n);
      setImmediate(() => cb(n)); // reply asynchronously, as assetfs does
    },
    // Writes are accepted and dropped: the ceiling of writes through fuse-native on this machine.
    write: (_p: string, _fd: number, _buf: Buffer, len: number, _pos: number, cb: (n: number) => void) => setImmediate(() => cb(len)),
    truncate: (_p: string, _size: number, cb: (err: number) => void) => cb(0),
    ftruncate: (_p: string, _fd: number, _size: number, cb: (err: number) => void) => cb(0),
  },
  { fsname: 'trivialfs', autoCache: true, force: true },
);
fuse.mount((err) => {
  if (err) {
    process.stderr.write(`mount failed: ${err.message}\n`);
    process.exit(1);
  }
  // The same kernel readahead as assetfs sets (src/fuse/kernel-readahead.ts).
  void setKernelReadahead(mnt!, Number(readaheadArg ?? 1024)).then(() => process.stdout.write('mounted\n'));
});
process.on('SIGTERM', () => Fuse.unmount(mnt!, () => process.exit(0)));
