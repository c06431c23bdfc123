/**
 * The mount respects who may touch it, through the real daemon: with `fuse.allowOther` the kernel
 * enforces the owner and modes every entry reports (default_permissions), so a user outside the group
 * can list folders (dirMode 0755) but gets EACCES for `cat` and `rm` of a 0640 file, and the remote
 * object stays; a member of the group reads it. chmod/chown of a remote entry answer EPERM, or succeed
 * without effect under `fuse.ignoreChmod`; on a file being written (cp -p, rsync -a) they are accepted
 * without effect; setting times is accepted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { BIN, mountDaemon, sh, shResult, type MountedDaemon, until } from '../helpers/mount.js';

/** Acting as another user (setpriv) and mounting with allow_other without /etc/fuse.conf's consent need root. */
const isRoot = process.getuid?.() === 0;
const OWNER = 4321; // neither root's nor nobody's
const NOBODY = 65534;
/** Run `cmd` as `nobody` with the given primary group and no supplementary groups. */
const as = (gid: number, cmd: string) => shResult(`setpriv --reuid=${NOBODY} --regid=${gid} --clear-groups ${cmd}`);

let storage: ProxiedBucket;
beforeAll(async () => {
  storage = await startProxiedBucket('media', { files: [{ path: 'clips/secret.txt', data: Buffer.from('for the group only\n') }] });
});
afterAll(async () => storage?.close());

async function mount(fuse: Record<string, unknown>): Promise<MountedDaemon> {
  const d = await mountDaemon({ sources: [storage.directSource()], fuse: { allowOther: true, uid: OWNER, gid: OWNER, fileMode: '0640', dirMode: '0755', ...fuse } });
  await chmod(d.dir, 0o755); // the test's private dir must not be what stops the other user
  return d;
}

describe.skipIf(!isRoot).sequential('permissions of the mount', () => {
  let d: MountedDaemon;
  afterAll(async () => d?.stop());

  it('stat shows the configured owner, group and modes on files and folders', async () => {
    d = await mount({});
    expect((await sh(`stat -c '%u %g %a %F' ${d.mountpoint}/s3/clips/secret.txt`)).trim()).toBe(`${OWNER} ${OWNER} 640 regular file`);
    expect((await sh(`stat -c '%u %g %a %F' ${d.mountpoint}/s3/clips ${d.mountpoint}`)).trim().split('\n')).toEqual([`${OWNER} ${OWNER} 755 directory`, `${OWNER} ${OWNER} 755 directory`]);
    expect((await sh(`ls -ln ${d.mountpoint}/s3/clips`)).trim().split('\n')[1]).toMatch(new RegExp(`^-rw-r----- 1 ${OWNER} ${OWNER} 19 .* secret\\.txt$`));
  });

  it('a user outside the group lists the folder but gets EACCES for cat and rm; the remote object stays', async () => {
    const file = `${d.mountpoint}/s3/clips/secret.txt`;
    const ls = await as(NOBODY, `ls ${d.mountpoint}/s3/clips`);
    expect(ls).toMatchObject({ code: 0, stdout: 'secret.txt\n' }); // the mount is reachable to them: what follows is the modes
    const cat = await as(NOBODY, `cat ${file}`);
    expect(cat.code).not.toBe(0);
    expect(cat.stderr).toMatch(/Permission denied/);
    const rm = await as(NOBODY, `rm -f ${file}`);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toMatch(/Permission denied/);
    expect((await storage.object('clips/secret.txt'))?.toString()).toBe('for the group only\n');
    expect(await as(OWNER, `cat ${file}`)).toMatchObject({ code: 0, stdout: 'for the group only\n' }); // the group's read bit
  });

  it('chmod and chown that would change something are refused with EPERM; to what stat shows, and touch, are accepted', async () => {
    const file = `${d.mountpoint}/s3/clips/secret.txt`;
    for (const cmd of [`chmod 600 ${file}`, `chown 1:1 ${file}`, `chgrp 1 ${file}`, `chmod 700 ${d.mountpoint}/s3/clips`]) {
      const r = await shResult(cmd);
      expect(r.code, cmd).not.toBe(0);
      expect(r.stderr, cmd).toMatch(/Operation not permitted/);
    }
    for (const cmd of [`chmod 640 ${file}`, `chown ${OWNER}:${OWNER} ${file}`, `chmod 755 ${d.mountpoint}/s3/clips`, `touch -m -d '2020-01-01' ${file}`]) {
      expect(await shResult(cmd), cmd).toMatchObject({ code: 0, stderr: '' });
    }
    expect((await sh(`stat -c '%a' ${file}`)).trim()).toBe('640');
  });

  it('a file being written takes the mount\'s mode: cp -p and rsync -a of a 0600 file work by default; once uploaded, chmod is EPERM', async () => {
    const src = await mkdtemp(join(tmpdir(), 'assetfs-perm-src-'));
    try {
      await writeFile(join(src, 'private.txt'), 'mine\n', { mode: 0o600 });
      await chmod(join(src, 'private.txt'), 0o600); // whatever the umask
      const clips = `${d.mountpoint}/s3/clips`;
      expect(await shResult(`cp -p ${src}/private.txt ${clips}/copied.txt`)).toMatchObject({ code: 0, stderr: '' });
      expect(await shResult(`rsync -a ${src}/private.txt ${clips}/rsynced.txt`)).toMatchObject({ code: 0, stderr: '' }); // fchmods its temporary file
      expect((await sh(`stat -c '%a' ${clips}/copied.txt ${clips}/rsynced.txt`)).trim().split('\n')).toEqual(['640', '640']);
      await until(async () => (await storage.object('clips/copied.txt'))?.toString() === 'mine\n', 'the upload');
      await until(async () => /Operation not permitted/.test((await shResult(`chmod 600 ${clips}/copied.txt`)).stderr), 'the uploaded file refusing chmod');
    } finally {
      await rm(src, { recursive: true, force: true });
    }
  });

  it('with fuse.ignoreChmod, chmod and chown succeed and change nothing', async () => {
    await d.stop();
    d = await mount({ ignoreChmod: true });
    const file = `${d.mountpoint}/s3/clips/secret.txt`;
    expect(await shResult(`chmod 600 ${file} && chown 1:1 ${file}`)).toMatchObject({ code: 0, stderr: '' });
    expect((await sh(`stat -c '%u %g %a' ${file}`)).trim()).toBe(`${OWNER} ${OWNER} 640`);
  });
});

describe.skipIf(!isRoot)('check-config and allowOther', () => {
  it('warns in one line for a daemon user that is not root when /etc/fuse.conf lacks user_allow_other', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'assetfs-perm-cfg-'));
    try {
      await chmod(dir, 0o755);
      const file = join(dir, 'c.json');
      await writeFile(file, JSON.stringify({ mountpoint: '/mnt/x', fuse: { allowOther: true }, sources: [storage.directSource()] }), { mode: 0o644 });
      const enabled = (await readFile('/etc/fuse.conf', 'utf8').catch(() => '')).split('\n').some((l) => l.replace(/#.*/, '').trim() === 'user_allow_other');
      const r = await as(NOBODY, `${process.execPath} ${BIN} check-config ${file}`);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/: OK \(1 source/);
      if (enabled) expect(r.stderr).toBe('');
      else expect(r.stderr).toMatch(/^assetfs: warning: fuse\.allowOther is set but \/etc\/fuse\.conf (lacks user_allow_other|does not exist)[^\n]*\n$/);
      expect((await shResult(`${process.execPath} ${BIN} check-config ${file}`)).stderr).toBe(''); // root may always
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
