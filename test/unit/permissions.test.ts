/**
 * Permissions of the mount without a mount: the `fuse:` keys' validation, the VFS's one policy (every
 * entry stamped with the configured modes and owner; chmod/chown EPERM unless ignoreChmod, times
 * accepted), and the allowOther warning about /etc/fuse.conf. test/fuse/permissions.test.ts proves the
 * same through a real mount with another user.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { AssetVfs } from '../../src/vfs/vfs.js';
import { FsError } from '../../src/core/errors.js';
import type { BlockSource } from '../../src/core/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { allowOtherWarning } from '../../src/daemon/fuse-conf.js';
import { PermissionPolicy } from '../../src/vfs/permissions.js';

const S3 = { name: 's3', type: 's3', bucket: 'media', accessKeyId: 'AK', secretAccessKey: 'SK-value' };
const parse = (fuse: unknown) => parseConfigText(JSON.stringify({ fuse, sources: [S3] }), '/c.json', {});
function problems(fuse: unknown): string[] {
  try {
    parse(fuse);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
}

describe('fuse: uid, gid, fileMode, dirMode, ignoreChmod', () => {
  it('default to 0644 and 0755, the daemon\'s own ids and EPERM; modes are octal strings', () => {
    expect(parse({}).fuse).toMatchObject({ fileMode: 0o644, dirMode: 0o755, ignoreChmod: false });
    expect(parse({}).fuse.uid).toBeUndefined();
    expect(parse({ fileMode: '0640', dirMode: '750', uid: 1234, gid: 0, ignoreChmod: true }).fuse).toMatchObject({ fileMode: 0o640, dirMode: 0o750, uid: 1234, gid: 0, ignoreChmod: true });
  });

  it('refuse bare numbers, non-octal digits, special bits and named or negative ids, each with its key', () => {
    expect(problems({ fileMode: 640 })).toEqual(['fuse.fileMode: write the mode as a quoted octal string like "0644" (a bare 640 is read as a decimal number)']);
    expect(problems({ dirMode: '0789' })).toEqual(['fuse.dirMode: expected an octal mode string like "0644" or "0750" (permission bits only), got "0789"']);
    expect(problems({ fileMode: '4755' })).toHaveLength(1);
    expect(problems({ fileMode: 'rw-r--r--' })).toHaveLength(1);
    expect(problems({ uid: 'nobody' })).toEqual(['fuse.uid: expected a numeric id like 1000 (names are not looked up)']);
    expect(problems({ gid: -1 })).toEqual(['fuse.gid: expected 0 or more']);
  });
});

describe('the VFS permission policy', () => {
  const vfs = (ignoreChmod: boolean) =>
    new AssetVfs({
      providers: new Map(),
      blocks: {} as BlockSource, // never reached: only the root is asked for
      log: silentLogger,
      metadataTtlMs: 60_000,
      readaheadMaxBytes: 1 << 20,
      maxRetryTimeMs: 1_000,
      ownership: { uid: 1234, gid: 5678, fileMode: 0o640, dirMode: 0o750, ignoreChmod },
    });

  it('every entry reports the configured owner and modes', async () => {
    const v = vfs(false);
    expect(v.owner).toEqual({ uid: 1234, gid: 5678 });
    expect((await v.getattr('/')).mode).toBe(0o040750);
  });

  it('a chmod or chown that would change something fails with EPERM (an FsError); times are accepted; a missing path is ENOENT first', async () => {
    const v = vfs(false);
    for (const change of [{ kind: 'mode', mode: 0o040700 }, { kind: 'mode', mode: 0o755 }, { kind: 'owner', uid: 0, gid: 5678 }, { kind: 'owner', uid: -1, gid: 0 }] as const) {
      const err = await v.setattr('/', change).catch((e: unknown) => e);
      expect(err, JSON.stringify(change)).toBeInstanceOf(FsError);
      expect((err as FsError).code).toBe('EPERM');
    }
    await expect(v.setattr('/', { kind: 'times' })).resolves.toBeUndefined();
    await expect(v.setattr('/no-such-source', { kind: 'mode', mode: 0o700 })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a chmod or chown to what the entry already reports is accepted (rsync -a fchmods every temporary file)', async () => {
    const v = vfs(false);
    await expect(v.setattr('/', { kind: 'mode', mode: 0o040750 })).resolves.toBeUndefined();
    await expect(v.setattr('/', { kind: 'mode', mode: 0o750 })).resolves.toBeUndefined();
    await expect(v.setattr('/', { kind: 'owner', uid: 1234, gid: 0xffffffff })).resolves.toBeUndefined();
    await expect(v.setattr('/', { kind: 'owner', uid: -1, gid: 5678 })).resolves.toBeUndefined();
  });

  it('on an entry being created through the mount, chmod and chown are accepted without effect', () => {
    const policy = new PermissionPolicy({ uid: 1234, gid: 5678, fileMode: 0o640, dirMode: 0o750, ignoreChmod: false });
    const staged = policy.stamp({ kind: 'file', size: 0, mtimeMs: 0, mode: 0o100600 });
    expect(staged.mode).toBe(0o100640);
    expect(() => policy.check('/s3/new.txt', staged, { kind: 'mode', mode: 0o700 }, true)).not.toThrow();
    expect(() => policy.check('/s3/new.txt', staged, { kind: 'owner', uid: 0, gid: 0 }, true)).not.toThrow();
    expect(() => policy.check('/s3/old.txt', staged, { kind: 'mode', mode: 0o700 }, false)).toThrow(FsError);
  });

  it('with ignoreChmod, chmod and chown succeed and change nothing', async () => {
    const v = vfs(true);
    await expect(v.setattr('/', { kind: 'mode', mode: 0o700 })).resolves.toBeUndefined();
    await expect(v.setattr('/', { kind: 'owner', uid: 0, gid: 0 })).resolves.toBeUndefined();
    expect((await v.getattr('/')).mode).toBe(0o040750);
  });
});

describe('allowOther and /etc/fuse.conf', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'assetfs-fuseconf-'));
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('warns in one line for a non-root daemon when user_allow_other is missing or commented out', async () => {
    const conf = join(dir, 'fuse.conf');
    await writeFile(conf, '# mount_max = 1000\n#user_allow_other\n');
    const w = await allowOtherWarning({ allowOther: true, uid: 1000, fuseConf: conf });
    expect(w).toBe(`fuse.allowOther is set but ${conf} lacks user_allow_other, so the mount will fail for a daemon not running as root: add the line user_allow_other to ${conf} (or run as root)`);
    expect(w!.split('\n')).toHaveLength(1);
    expect(await allowOtherWarning({ allowOther: true, uid: 1000, fuseConf: join(dir, 'missing.conf') })).toMatch(/missing\.conf does not exist.*user_allow_other/);
  });

  it('is silent when the line is there, for root, and without allowOther', async () => {
    const conf = join(dir, 'ok.conf');
    await writeFile(conf, '# comment\n  user_allow_other  \n');
    expect(await allowOtherWarning({ allowOther: true, uid: 1000, fuseConf: conf })).toBeUndefined();
    expect(await allowOtherWarning({ allowOther: true, uid: 0, fuseConf: join(dir, 'missing.conf') })).toBeUndefined();
    expect(await allowOtherWarning({ allowOther: false, uid: 1000, fuseConf: join(dir, 'missing.conf') })).toBeUndefined();
  });
});
