/**
 * The vendored FUSE binding's unmount (vendor/fuse-native patch 7): never through a shell, and with
 * `fusermount3` where `fusermount` is missing. Fake binaries on a private PATH record their argv.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fuse from 'fuse-native';

let dir: string;
const savedPath = process.env.PATH;

/** A fake `name` in `bin` that writes its arguments, one per line, to `<dir>/<name>.args`. */
async function fakeBinary(bin: string, name: string): Promise<void> {
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, name), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${join(dir, `${name}.args`)}'\n`, { mode: 0o755 });
}

const unmountWith = (pathEnv: string, mnt: string) => {
  process.env.PATH = pathEnv;
  return new Promise<Error | null>((done) => Fuse.unmount(mnt, (err) => done(err ?? null)));
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-unmount-'));
});
afterEach(() => {
  process.env.PATH = savedPath;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Fuse.unmount (vendored binding)', () => {
  it('passes the mount point as one argument, never to a shell, and uses fusermount3 where fusermount is missing', async () => {
    const bin = join(dir, 'only3');
    await fakeBinary(bin, 'fusermount3');
    const hostile = join(dir, `a "$(touch ${join(dir, 'pwned')})" b; touch ${join(dir, 'pwned2')} \`touch ${join(dir, 'pwned3')}\``);
    expect(await unmountWith(bin, hostile)).toBeNull();
    expect((await readFile(join(dir, 'fusermount3.args'), 'utf8')).split('\n').slice(0, -1)).toEqual(['-uz', '--', hostile]);
    expect((await readdir(dir)).filter((n) => n.startsWith('pwned'))).toEqual([]);
  });

  it('prefers fusermount when both are installed', async () => {
    const bin = join(dir, 'both');
    await fakeBinary(bin, 'fusermount');
    await fakeBinary(bin, 'fusermount3');
    await rm(join(dir, 'fusermount3.args'), { force: true });
    expect(await unmountWith(bin, '/mnt/x')).toBeNull();
    expect(await readFile(join(dir, 'fusermount.args'), 'utf8')).toBe('-uz\n--\n/mnt/x\n');
    await expect(readFile(join(dir, 'fusermount3.args'))).rejects.toThrow();
  });

  it('fails with ENOENT when neither is installed', async () => {
    const bin = join(dir, 'none');
    await mkdir(bin);
    const err = await unmountWith(bin, '/mnt/x');
    expect((err as NodeJS.ErrnoException | null)?.code).toBe('ENOENT');
  });
});
