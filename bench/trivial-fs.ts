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

// Typed by vendor/fuse-native/index.d.ts: a handler of the wrong shape does not compile.
const ops: Partial<Fuse.Operations> = {
  getattr: (p, cb) => (p === '/' ? cb(0, stat(0o40755, 4096)) : p === '/data.bin' ? cb(0, stat(0o100644, size)) : cb(Fuse.ENOENT)),
  // By offset (vendor/fuse-native patch 5): the entries after `offset`; none past the one file.
  readdir: (_p, offset, _fd, cb) => (offset === 0 ? cb(0, ['data.bin'], [stat(0o100644, size)]) : cb(0, [], [])),
  open: (_p, _f, cb) => cb(0, 1),
  release: (_p, _fd, cb) => cb(0),
  read: (_p, _fd, buf, len, pos, cb) => {
    const n = Math.max(0, Math.min(len, size - pos));
    data.copy(buf, 0, pos, pos + n);
    setImmediate(() => cb(n)); // reply asynchronously, as assetfs does
  },
  // Writes are accepted and dropped: the ceiling of writes through fuse-native on this machine.
  write: (_p, _fd, _buf, len, _pos, cb) => setImmediate(() => cb(len)),
  truncate: (_p, _size, cb) => cb(0),
  ftruncate: (_p, _fd, _size, cb) => cb(0),
};
const fuse = new Fuse(mnt!, ops, { fsname: 'trivialfs', autoCache: true, force: true });
fuse.mount((err) => {
  if (err) {
    process.stderr.write(`mount failed: ${err.message}\n`);
    process.exit(1);
  }
  // The same kernel readahead as assetfs sets (src/fuse/kernel-readahead.ts).
  void setKernelReadahead(mnt!, Number(readaheadArg ?? 1024)).then(() => process.stdout.write('mounted\n'));
});
process.on('SIGTERM', () => Fuse.unmount(mnt!, () => process.exit(0)));
