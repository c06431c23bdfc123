/**
 * The mount helper's arguments as mount(8) and fuse3's mount.fuse pass them, its `-o` handling, and
 * the pieces of readiness that need no mount (device ids as mountinfo writes them, one-line status).
 * Mounting through mount(8) itself: test/fuse/boot-mount.test.ts.
 */
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyMountOptions, MountOptionError, parseMountOptions } from '../../src/daemon/mount-options.js';
import { envFileFor, isMountHelperCall, parseHelperArgs, UsageError } from '../../src/daemon/mount-helper.js';
import { deviceId, listsDevice } from '../../src/daemon/supervise.js';
import { oneLine } from '../../src/daemon/notify.js';
import { parseConfigText } from '../../src/config/load.js';

describe('mount options (-o)', () => {
  it('drops what is meant for mount(8), fstab and systemd, and keeps the rest for libfuse', () => {
    const o = parseMountOptions('rw,_netdev,nofail,noauto,user,x-systemd.automount,x-systemd.idle-timeout=60,comment=hi,defaults,noatime,nosuid,default_permissions,max_read=131072');
    expect(o.fuse).toEqual(['noatime', 'nosuid', 'default_permissions', 'max_read=131072']);
    expect(o.ignored).toEqual(['rw', '_netdev', 'nofail', 'noauto', 'user', 'x-systemd.automount', 'x-systemd.idle-timeout=60', 'comment=hi', 'defaults']);
    expect(o.allowOther).toBe(false);
    expect(parseMountOptions('rw,noatime,dev,suid').fuse).toEqual(['noatime']); // what fuse3's mount.fuse passes on
  });

  it('maps allow_other to fuse.allowOther and appends the rest to fuse.options without duplicates', () => {
    const config = parseConfigText(JSON.stringify({ sources: [{ name: 's', type: 's3', bucket: 'b', accessKeyId: 'k', secretAccessKey: 's' }], fuse: { options: ['noatime'] } }), '/etc/assetfs/x.json', {});
    const applied = applyMountOptions(config, ['allow_other,noatime', 'ro']);
    expect(applied.fuse.allowOther).toBe(true);
    expect(applied.fuse.options).toEqual(['noatime', 'ro']);
    expect(applyMountOptions(config, undefined)).toBe(config);
  });

  it('refuses mount.fuse3 options it cannot honour and names that are not options, in one line', () => {
    expect(() => parseMountOptions('setuid=bob')).toThrow(MountOptionError);
    expect(() => parseMountOptions('drop_privileges')).toThrow(/drop_privileges/);
    expect(() => parseMountOptions('a b')).toThrow(/"a b" is not one FUSE takes/);
    expect(() => parseMountOptions('rw,nonempty')).toThrow(/nonempty is a libfuse 2 option/); // old fstab lines have it
  });
});

describe('helper arguments', () => {
  it('takes mount(8)\'s form: SOURCE TARGET [-sfnv] -o OPTS [-t TYPE]', () => {
    expect(parseHelperArgs(['/etc/assetfs/main.yaml', '/mnt/assets', '-n', '-v', '-o', 'rw,_netdev', '-t', 'fuse.assetfs'])).toEqual({
      source: '/etc/assetfs/main.yaml',
      mountpoint: '/mnt/assets',
      options: ['rw,_netdev'],
      fake: false,
      verbose: true,
    });
    expect(parseHelperArgs(['c.yaml', 'm', '-sf', '-orw']).fake).toBe(true);
    expect(parseHelperArgs(['c.yaml', 'm', '-orw']).options).toEqual(['rw']);
  });

  it('refuses other types, namespaces, unknown flags and missing arguments', () => {
    expect(() => parseHelperArgs(['c.yaml', 'm', '-t', 'fuse.sshfs'])).toThrow(/fuse\.sshfs is not assetfs's/);
    expect(() => parseHelperArgs(['c.yaml', 'm', '-N', '1234'])).toThrow(UsageError);
    expect(() => parseHelperArgs(['c.yaml', 'm', '--bogus'])).toThrow(/unknown option --bogus/);
    expect(() => parseHelperArgs(['c.yaml'])).toThrow(/a config file and a mount point are needed/);
    expect(() => parseHelperArgs(['c.yaml', 'm', '-o'])).toThrow(/-o needs a value/);
  });

  it("recognises mount.fuse3's `assetfs SOURCE TARGET -o OPTS` and leaves subcommands alone", () => {
    const commands = ['mount', 'unmount', 'status'];
    expect(isMountHelperCall(['/etc/assetfs/main.yaml', '/mnt/assets', '-o', 'rw'], commands)).toBe(true);
    expect(isMountHelperCall(['main.yml', 'mnt'], commands)).toBe(true);
    expect(isMountHelperCall(['mount', '/mnt/assets'], commands)).toBe(false);
    expect(isMountHelperCall(['--help'], commands)).toBe(false);
    expect(isMountHelperCall(['mout', 'x'], commands)).toBe(false); // a typo stays commander's "unknown command"
    expect(isMountHelperCall(['/etc/assetfs/main.yaml'], commands)).toBe(false);
  });

  it('reads secrets from the .env beside the config, as the unit does, and none when there is none', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'assetfs-envfile-'));
    try {
      await writeFile(join(dir, 'main.env'), '# secrets\nS3_SECRET="a b#c"\nTOKEN=t\n');
      await chmod(join(dir, 'main.env'), 0o600);
      expect(await envFileFor(join(dir, 'main.yaml'))).toEqual({ S3_SECRET: 'a b#c', TOKEN: 't' });
      expect(await envFileFor(join(dir, 'other.yaml'))).toEqual({});
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('readiness pieces', () => {
  it('writes device numbers as /proc/self/mountinfo does (major:minor of dev_t)', () => {
    expect(deviceId(0x2cn)).toBe('0:44'); // an anonymous device, as FUSE mounts have
    expect(deviceId((8n << 8n) | 1n)).toBe('8:1');
    expect(deviceId((259n << 8n) | (3n & 0xffn) | ((0x100n & ~0xffn) << 12n))).toBe('259:259');
    const info = '36 35 98:0 /root /mnt rw - ext4 /dev/sda1 rw\n70 36 0:44 / /mnt/assets rw,nosuid - fuse.assetfs assetfs rw\n';
    expect(listsDevice(info, '0:44')).toBe(true);
    expect(listsDevice(info, '0:45')).toBe(false);
  });

  it('keeps STATUS and helper answers on one line', () => {
    expect(oneLine('a\n  b\nc')).toBe('a; b; c');
    expect(oneLine('x'.repeat(1000))).toHaveLength(400);
  });
});
