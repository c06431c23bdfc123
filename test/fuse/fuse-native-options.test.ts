/**
 * The vendored fuse-native takes its mount options as a list, each its own libfuse argument
 * (vendor/fuse-native patch 10): a list longer than 1,024 bytes reaches libfuse whole (upstream cut the
 * joined `-o` string there without a word), and a malformed option fails the mount clearly.
 *
 * The mount is served by this process (fuse-native answers on its main thread), so the test touches it
 * only through child commands and async reads of /proc.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fuse from 'fuse-native';
import { forceUnmount, sh } from '../helpers/mount.js';

const CONTENT = Buffer.from('served through a long option list\n');
const now = new Date();
const stat = (mode: number, size: number): Fuse.Stat => ({ mode, size, uid: 0, gid: 0, mtime: now, atime: now, ctime: now });

const ops: Partial<Fuse.Operations> = {
  getattr: (p, cb) => (p === '/' ? cb(0, stat(0o40755, 4096)) : p === '/hello.txt' ? cb(0, stat(0o100644, CONTENT.length)) : cb(Fuse.ENOENT)),
  readdir: (_p, offset, _fd, cb) => (offset === 0 ? cb(0, ['hello.txt'], [stat(0o100644, CONTENT.length)]) : cb(0, [], [])),
  open: (_p, _flags, cb) => cb(0, 1),
  release: (_p, _fd, cb) => cb(0),
  read: (_p, _fd, buf, len, pos, cb) => {
    const n = Math.max(0, Math.min(len, CONTENT.length - pos));
    CONTENT.copy(buf, 0, pos, pos + n);
    cb(n);
  },
};

let dir: string | undefined;
let fuse: Fuse | undefined;

function mount(opts: Fuse.FuseOptions): Promise<void> {
  fuse = new Fuse(dir!, ops, opts);
  return new Promise((resolve, reject) => fuse!.mount((err) => (err ? reject(err) : resolve())));
}

/** The /proc/self/mountinfo fields of the mount at `dir`: its fs type, source and super options. */
async function mountInfo(path: string): Promise<{ type: string; source: string; superOptions: string } | undefined> {
  for (const line of (await readFile('/proc/self/mountinfo', 'utf8')).split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right || left.split(' ')[4] !== path) continue;
    const [type, source, superOptions] = right.split(' ');
    return { type: type!, source: source!, superOptions: superOptions! };
  }
  return undefined;
}

afterEach(async () => {
  if (dir) await forceUnmount(dir);
  fuse = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('fuse-native mount options (patch 10)', () => {
  it('an option list over 1,024 bytes reaches libfuse whole: the long fsname and the subtype after it show in mountinfo', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fuse-opts-'));
    const fsname = `long-${'x'.repeat(1_200)}-end`;
    await mount({ fsname, subtype: 'tailcheck', options: ['hard_remove', 'default_permissions'] });
    const info = await mountInfo(dir);
    expect(info?.type).toBe('fuse.tailcheck');
    expect(info?.source).toBe(fsname);
    expect(info?.superOptions.split(',')).toContain('default_permissions'); // the last option of all
    // The mount serves: a listing (readdir by offset) and a read through child commands.
    expect(await sh(`ls ${dir}`)).toBe('hello.txt\n');
    expect(await sh(`cat ${dir}/hello.txt`)).toBe(CONTENT.toString());
  });

  it('a malformed option fails the mount with a clear error and leaves nothing mounted', async () => {
    dir = await mkdtemp(join(tmpdir(), 'fuse-opts-'));
    const bad = mount({ fsname: 'x', options: ['hard_remove', 42 as unknown as string] });
    await expect(bad).rejects.toThrow('fuse-native: each entry of opts.options must be a non-empty string');
    const unknown = mount({ fsname: 'x', options: ['no_such_libfuse_option'] });
    await expect(unknown).rejects.toThrow('fuse failed: bad options?');
    expect(await mountInfo(dir)).toBeUndefined();
  });
});
