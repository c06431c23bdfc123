/**
 * Mounting the way Linux does at boot (docs/operations.md): through mount(8) and an fstab line, under
 * a Type=notify unit, with the unit's stale-mount clearing.
 *
 * util-linux's mount clears PATH and runs helpers only from /sbin (/sbin/fs.d, /sbin/fs), and fuse3's
 * mount.fuse finds `assetfs` through sh's default PATH. So, to install nothing on the machine, the
 * mount(8) tests run in a private mount namespace (unshare -m) where a read-only overlay adds the link
 * to /usr/sbin (or /usr/local/bin): the mount, the reads and the `umount` all happen in there. The
 * daemon's own log (its cacheDir/assetfs.log, where the helper sends it) gives its pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxiedBucket, type ProxiedBucket } from '../helpers/proxied-s3.js';
import { BIN, NODE_FLAGS, ROOT, isMounted, mountDaemon, sh, shResult, until } from '../helpers/mount.js';

const DATA = 'hello from boot\n';
const HELPER = join(ROOT, 'bin', 'mount.assetfs.js');
const PYTHON = '/usr/bin/python3';

let bucket: ProxiedBucket;
let work: string;

const canNamespace = (await shResult('unshare -m --propagation private mount -t overlay overlay -o lowerdir=/tmp:/usr/sbin /usr/sbin')).code === 0;
const canReceive = (await shResult(`${PYTHON} -c 'import socket'`)).code === 0 && (await shResult('command -v systemd-notify')).code === 0;

beforeAll(async () => {
  bucket = await startProxiedBucket('media', { files: [{ path: 'a.txt', data: Buffer.from(DATA) }] });
  work = await mkdtemp(join(tmpdir(), 'assetfs-boot-'));
});

afterAll(async () => {
  await bucket?.close();
  await rm(work, { recursive: true, force: true });
});

interface Setup {
  dir: string;
  config: string;
  mountpoint: string;
  cacheDir: string;
}

async function setup(name: string, extra: Record<string, unknown> = {}): Promise<Setup> {
  const dir = join(work, name);
  const mountpoint = join(dir, 'mnt');
  const cacheDir = join(dir, 'cache');
  await mkdir(mountpoint, { recursive: true });
  const config = join(dir, 'main.yaml');
  // YAML is a superset of JSON: this is the YAML an operator would write, in its flow style.
  await writeFile(config, JSON.stringify({ cacheDir, sources: [bucket.directSource()], ...extra }));
  return { dir, config, mountpoint, cacheDir };
}

/** The pid of the daemon that logged `ready` into cacheDir/assetfs.log. */
async function daemonPid(s: Setup): Promise<number> {
  const line = (await readFile(join(s.cacheDir, 'assetfs.log'), 'utf8')).split('\n').find((l) => l.includes('"msg":"ready"'));
  if (!line) throw new Error(`no ready line in the daemon's log:\n${await readFile(join(s.cacheDir, 'assetfs.log'), 'utf8').catch(() => '')}`);
  return (JSON.parse(line) as { pid: number }).pid;
}

const alive = async (pid: number) => (await shResult(`kill -0 ${pid}`)).code === 0;

/** A bash script in a private mount namespace, where `dir` is laid over `target` (read-only overlay). */
function inNamespace(overlay: { dir: string; target: string }, script: string) {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const inner = `set -euo pipefail\nmount -t overlay overlay -o lowerdir=${overlay.dir}:${overlay.target} ${overlay.target}\n${script}`;
  return shResult(`unshare -m --propagation private bash -c ${q(inner)}`);
}

/** Stop a daemon this test started if it outlived a failed assertion (its mount dies with the namespace). */
async function reap(s: Setup) {
  const pid = await daemonPid(s).catch(() => undefined);
  if (pid && (await alive(pid))) await shResult(`kill -TERM ${pid}`);
}

describe.skipIf(!canNamespace)(canNamespace ? 'mount(8)' : 'mount(8) (skipped: unshare -m with an overlay on /usr/sbin does not work here)', () => {
  it('mount -t fuse.assetfs CONFIG MOUNTPOINT via /sbin/mount.fuse.assetfs: up when mount returns, readable, and `umount` ends the daemon', async () => {
    const s = await setup('direct');
    const sbin = join(s.dir, 'sbin');
    await mkdir(sbin);
    await symlink(HELPER, join(sbin, 'mount.fuse.assetfs'));
    try {
      const r = await inNamespace(
        { dir: sbin, target: '/usr/sbin' },
        `mount -t fuse.assetfs -o _netdev,nofail,noatime ${s.config} ${s.mountpoint}
         grep -F ' ${s.mountpoint} fuse.assetfs ' /proc/self/mounts
         cat ${s.mountpoint}/s3/a.txt
         umount ${s.mountpoint}
         ! grep -F ' ${s.mountpoint} ' /proc/self/mounts`,
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('noatime'); // passed through to the mount, while _netdev and nofail were not
      expect(r.stdout).toContain(DATA);
      const pid = await daemonPid(s);
      await until(async () => !(await alive(pid)), `daemon ${pid} to exit after umount`, 30_000);
      expect(await readFile(join(s.cacheDir, 'assetfs.log'), 'utf8')).toContain('unmounted from outside the daemon');
    } finally {
      await reap(s);
    }
  });

  it('an fstab line goes through fuse3 mount.fuse and the assetfs command found on the default PATH', async () => {
    const s = await setup('fstab');
    const bin = join(s.dir, 'bin');
    await mkdir(bin);
    await symlink(join(ROOT, 'bin', 'assetfs.js'), join(bin, 'assetfs'));
    await writeFile(join(s.dir, 'fstab'), `${s.config} ${s.mountpoint} fuse.assetfs _netdev,nofail,x-systemd.automount 0 0\n`);
    try {
      const r = await inNamespace(
        { dir: bin, target: '/usr/local/bin' },
        `test ! -e /sbin/mount.fuse.assetfs # otherwise mount(8) would not take the mount.fuse route
         LIBMOUNT_FSTAB=${s.dir}/fstab mount ${s.mountpoint}
         cat ${s.mountpoint}/s3/a.txt
         grep -F ' ${s.mountpoint} fuse.assetfs ' /proc/self/mounts
         umount ${s.mountpoint}`,
      );
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout.startsWith(DATA)).toBe(true);
      // mount.fuse adds dev,suid to what it passes on; remote assets stay nosuid,nodev all the same.
      expect(r.stdout).toMatch(/ fuse\.assetfs rw,nosuid,nodev[, ]/);
      const pid = await daemonPid(s);
      await until(async () => !(await alive(pid)), `daemon ${pid} to exit after umount`, 30_000);
    } finally {
      await reap(s);
    }
  });

  it('a failed mount is a non-zero exit and one line naming the problem, from the config check or from the daemon', async () => {
    const s = await setup('failing');
    const sbin = join(s.dir, 'sbin');
    await mkdir(sbin);
    await symlink(HELPER, join(sbin, 'mount.fuse.assetfs'));
    await writeFile(join(s.dir, 'broken.yaml'), 'sources: []\n');
    await writeFile(join(s.mountpoint, 'precious.txt'), 'not to be hidden');
    const broken = await inNamespace({ dir: sbin, target: '/usr/sbin' }, `mount -t fuse.assetfs ${s.dir}/broken.yaml ${s.mountpoint}`);
    expect(broken.code).toBe(32);
    expect(broken.stderr.trim().split('\n')).toEqual([`mount.fuse.assetfs: ${s.dir}/broken.yaml: sources: at least one source is needed`]);
    // This one is found by the daemon (its preflight), and reaches mount(8) through the helper's pipe.
    const busy = await inNamespace({ dir: sbin, target: '/usr/sbin' }, `mount -t fuse.assetfs ${s.config} ${s.mountpoint}`);
    expect(busy.code).toBe(32);
    expect(busy.stderr.trim().split('\n')).toHaveLength(1);
    expect(busy.stderr).toMatch(/^mount\.fuse\.assetfs: mount point .* is not empty/);
    expect(await isMounted(s.mountpoint)).toBe(false);
  });
});

describe.skipIf(!canReceive)(canReceive ? 'systemd notify protocol' : 'systemd notify protocol (skipped: needs /usr/bin/python3 and systemd-notify)', () => {
  /** Receives datagrams on a unix socket the test owns, as systemd would: one JSON string per datagram. */
  async function receiver(path: string) {
    const py = spawn(PYTHON, ['-u', '-c', 'import socket,sys,json\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint(json.dumps("LISTENING"))\nwhile True: print(json.dumps(s.recv(65536).decode()))', path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const messages: string[] = [];
    const waiters: Array<() => void> = [];
    createInterface({ input: py.stdout! }).on('line', (l) => {
      messages.push(JSON.parse(l) as string);
      for (const w of waiters.splice(0)) w();
    });
    const next = (pred: (m: string) => boolean, what: string) =>
      new Promise<string>((resolve, reject) => {
        const check = () => {
          const m = messages.find(pred);
          if (m !== undefined) return resolve(m);
          if (py.exitCode !== null) return reject(new Error(`receiver exited before ${what}`));
          waiters.push(check);
        };
        check();
      });
    await next((m) => m === 'LISTENING', 'listening');
    return { messages, next, stop: () => py.kill('SIGKILL') };
  }

  it('READY=1 arrives once the mount answers, with a STATUS summary; SIGTERM sends STOPPING=1 and unmounts', async () => {
    const s = await setup('notify');
    const rx = await receiver(join(s.dir, 'notify.sock'));
    let child: ChildProcess | undefined;
    try {
      child = spawn(process.execPath, [...NODE_FLAGS, BIN, 'mount', '--config', s.config, s.mountpoint], {
        env: { ...process.env, NOTIFY_SOCKET: join(s.dir, 'notify.sock') },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let logs = '';
      child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
      const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
      const ready = await Promise.race([
        rx.next((m) => m.split('\n').includes('READY=1'), 'READY=1'),
        exited.then((code) => Promise.reject(new Error(`daemon exited with ${code}: ${logs.slice(-2000)}`))),
      ]);
      // The moment READY arrives, the mount is there and serves files.
      expect(await isMounted(s.mountpoint)).toBe(true);
      expect(await sh(`cat ${s.mountpoint}/s3/a.txt`)).toBe(DATA);
      const fields = ready.split('\n');
      expect(fields).toContain(`MAINPID=${child.pid}`);
      expect(fields).toContain(`STATUS=serving 1 source at ${s.mountpoint}; 0 open files; uploads: 0 queued, 0 uploading, 0 failed`);
      expect(rx.messages.filter((m) => m.includes('STOPPING=1'))).toEqual([]);

      child.kill('SIGTERM');
      const stopping = await rx.next((m) => m.split('\n').includes('STOPPING=1'), 'STOPPING=1');
      expect(stopping.split('\n')).toContain(`STATUS=stopping: unmounting ${s.mountpoint}`);
      expect(await exited).toBe(0);
      expect(await isMounted(s.mountpoint)).toBe(false);
      // Nothing before READY claimed readiness, and READY came once.
      expect(rx.messages.filter((m) => m.includes('READY=1'))).toHaveLength(1);
    } finally {
      child?.kill('SIGKILL');
      rx.stop();
      await shResult(`fusermount -uz ${s.mountpoint}`);
    }
  });

  it('a daemon that cannot start says why in STATUS=, and sends no READY=1', async () => {
    const s = await setup('notify-fail');
    await writeFile(join(s.mountpoint, 'x'), 'occupied');
    const rx = await receiver(join(s.dir, 'notify.sock'));
    try {
      const r = await shResult(`NOTIFY_SOCKET=${s.dir}/notify.sock ${process.execPath} ${BIN} mount --config ${s.config} ${s.mountpoint}`);
      expect(r.code).toBe(1);
      const failed = await rx.next((m) => m.startsWith('MAINPID=') && m.includes('STATUS=failed:'), 'STATUS=failed');
      expect(failed).toMatch(/STATUS=failed: mount point .* is not empty/);
      expect(rx.messages.some((m) => m.includes('READY=1'))).toBe(false);
    } finally {
      rx.stop();
    }
  });
});

describe("the unit's stale-mount clearing (ExecStartPre, ExecStopPost)", () => {
  /** The unit's command line for `key`, run for `config` instead of /etc/assetfs/%i.yaml. */
  async function unitCommand(key: 'ExecStartPre' | 'ExecStopPost', config: string): Promise<string> {
    const unit = await readFile(join(ROOT, 'systemd', 'assetfs@.service'), 'utf8');
    const line = unit.split('\n').find((l) => l.startsWith(`${key}=`));
    if (!line) throw new Error(`the unit has no ${key}`);
    const cmd = line.slice(key.length + 1).replace(/^-/, '').replace('/etc/assetfs/%i.yaml', config);
    expect(cmd.startsWith('/usr/bin/env assetfs ')).toBe(true);
    return cmd.replace('/usr/bin/env assetfs ', `${process.execPath} ${BIN} `);
  }

  it('clears the stale mount a SIGKILLed daemon left, and leaves a live mount alone', async () => {
    const d = await mountDaemon({ sources: [bucket.directSource()] });
    try {
      const config = join(d.dir, 'config.json');
      for (const key of ['ExecStartPre', 'ExecStopPost'] as const) {
        const live = await shResult(await unitCommand(key, config));
        expect(live.code).toBe(0);
        expect(await sh(`cat ${d.mountpoint}/s3/a.txt`)).toBe(DATA);
      }
      await d.kill();
      expect((await shResult(`stat -f ${d.mountpoint}`)).stderr).toMatch(/not connected/);
      const stale = await shResult(await unitCommand('ExecStartPre', config));
      expect(stale.stderr).toBe('');
      expect(stale.code).toBe(0);
      expect(await isMounted(d.mountpoint)).toBe(false);
    } finally {
      await d.stop();
    }
  });
});
