/**
 * The daemon as a person meets it: one-line errors, clean SIGTERM unmount, recovery from a SIGKILL'd
 * daemon's stale mount, and no secrets in the logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AZURITE_ACCOUNT, AZURITE_KEY, S3RVER_KEY, startAzurite, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { seedAzure, seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { spawn } from 'node:child_process';
import { BIN, NODE_FLAGS, forceUnmount, isMounted, mountDaemon, sh, shResult } from '../helpers/mount.js';

let s3: StorageServer;
let az: StorageServer;
let work: string;
const DATA = Buffer.from('hello lifecycle\n');

beforeAll(async () => {
  [s3, az] = await Promise.all([startS3rver({ buckets: ['media'] }), startAzurite()]);
  await Promise.all([seedS3(s3.url, 'media', [{ path: 'a.txt', data: DATA }]), seedAzure(az, 'media', [{ path: 'a.txt', data: DATA }])]);
  work = await mkdtemp(join(tmpdir(), 'assetfs-life-'));
});

afterAll(async () => {
  await Promise.allSettled([s3?.stop(), az?.stop()]);
  await rm(work, { recursive: true, force: true });
});

const s3Source = () => ({ name: 's3', type: 's3', endpoint: s3.url, bucket: 'media', accessKeyId: S3RVER_KEY, secretAccessKey: 'S3RVER' });
const node = (args: string) => `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} ${args}`;

describe('one clear line for mistakes a person can fix', () => {
  it('check-config lists every problem with its key path, exit code 2, no stack trace', async () => {
    const file = join(work, 'bad.yaml');
    await writeFile(file, 'cache: { memory: lots }\nsources:\n  - { name: x, type: s3, accessKeyId: k, secretAccessKey: hunter2 }\n  - { name: x, type: nope }\n');
    const r = await shResult(node(`check-config ${file}`));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cache\.memory/);
    expect(r.stderr).toMatch(/sources\[0\]\.bucket/);
    expect(r.stderr).toMatch(/sources\[1\]/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr).not.toContain('hunter2');
  });

  it('check-config accepts a good config', async () => {
    const file = join(work, 'good.json');
    await writeFile(file, JSON.stringify({ sources: [s3Source()] }));
    const r = await shResult(node(`check-config ${file}`));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK/);
  });

  it('a missing or non-empty mount point is refused in one line', async () => {
    const file = join(work, 'm.json');
    await writeFile(file, JSON.stringify({ cacheDir: join(work, 'cache'), sources: [s3Source()] }));
    const missing = await shResult(node(`mount --config ${file} ${join(work, 'nope')}`));
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    const full = join(work, 'full');
    await mkdir(full);
    await writeFile(join(full, 'x'), 'x');
    const nonEmpty = await shResult(node(`mount --config ${file} ${full}`));
    expect(nonEmpty.code).not.toBe(0);
    expect(nonEmpty.stderr.trim().split('\n')).toHaveLength(1);
    expect(nonEmpty.stderr).toMatch(/not empty/);
  });
});

describe('lifecycle', () => {
  it('a second daemon on the same cache dir is refused in one line, and the first keeps its control socket', async () => {
    const cacheDir = join(work, 'shared-cache');
    const first = await mountDaemon({ cacheDir, sources: [s3Source()] });
    try {
      const file = join(work, 'second.json');
      const mnt = join(work, 'second-mnt');
      await mkdir(mnt);
      await writeFile(file, JSON.stringify({ cacheDir, sources: [s3Source()] }));
      // Bounded: without the check, the second daemon would mount and run on.
      const second = await shResult(`timeout -s INT 20 ${node(`mount --config ${file} ${mnt}`)}`);
      expect(second.code).toBe(1);
      expect(second.stderr.trim().split('\n')).toHaveLength(1);
      expect(second.stderr).toContain(`another assetfs daemon (mounted at ${first.mountpoint}) uses the cache dir ${cacheDir}`);
      expect(await isMounted(mnt)).toBe(false);
      const status = JSON.parse(await sh(node(`status --json --socket ${join(cacheDir, 'control.sock')}`)));
      expect(status.mountpoint).toBe(first.mountpoint);
      expect(await readFile(join(first.mountpoint, 's3', 'a.txt'), 'utf8')).toBe(DATA.toString());
    } finally {
      await forceUnmount(join(work, 'second-mnt'));
      expect(await first.stop()).toBe(0);
    }
    // Once it is gone (its socket file may stay behind after a crash), the cache dir is free again.
    await writeFile(join(cacheDir, 'control.sock'), '');
    const again = await mountDaemon({ cacheDir, sources: [s3Source()] });
    expect(await again.stop()).toBe(0);
  });

  it('a SIGTERM the moment the mount appears (the daemon still starting) unmounts cleanly and exits 0', async () => {
    const dir = await mkdtemp(join(work, 'early-'));
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ cacheDir: join(dir, 'cache'), sources: [s3Source()], mountpoint: mnt }));
    const child = spawn(process.execPath, [...NODE_FLAGS, BIN, 'mount', '--config', file], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      // Poll fast, and signal at once: the rest of start-up (uploads, pins, control socket) follows the mount.
      while (!(await isMounted(mnt))) {
        if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(await isMounted(mnt)).toBe(false);
    } finally {
      child.kill('SIGKILL');
      await forceUnmount(mnt);
    }
  });

  it('SIGTERM unmounts cleanly and exits 0', async () => {
    const d = await mountDaemon({ sources: [s3Source()] });
    expect(await sh(`cat ${d.mountpoint}/s3/a.txt`)).toBe(DATA.toString());
    const status = JSON.parse(await sh(node(`status --json --socket ${join(d.dir, 'cache', 'control.sock')}`)));
    expect(status.mountpoint).toBe(d.mountpoint);
    expect(status.sources).toEqual([{ name: 's3', type: 's3', health: expect.objectContaining({ state: 'ok' }) }]);
    expect(status.cache.memory.bytes).toBeGreaterThan(0);
    const human = await sh(node(`status --socket ${join(d.dir, 'cache', 'control.sock')}`));
    expect(human).toMatch(/hit rate/);
    const mp = d.mountpoint;
    const code = await d.stop();
    expect(code).toBe(0);
    expect(await isMounted(mp)).toBe(false);
  });

  it('a SIGKILLed daemon leaves a stale mount that `assetfs unmount` clears, and `mount --force` recovers', async () => {
    const d = await mountDaemon({ sources: [s3Source()] });
    await d.kill();
    expect(await isMounted(d.mountpoint)).toBe(true);
    const stale = await shResult(`ls ${d.mountpoint}`);
    expect(stale.stderr).toMatch(/Transport endpoint is not connected/);
    const r = await shResult(node(`unmount ${d.mountpoint}`));
    expect(r.code, r.stderr).toBe(0);
    expect(await isMounted(d.mountpoint)).toBe(false);
    await d.stop();
  });

  it('SIGHUP reloads credentials without unmounting', async () => {
    const badKey = Buffer.alloc(64, 1).toString('base64');
    const blob = (key: string) => ({ name: 'blob', type: 'azure-blob', accountUrl: az.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: key });
    const d = await mountDaemon({ sources: [blob(badKey)] });
    try {
      const refused = await shResult(`ls ${d.mountpoint}/blob`);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/Permission denied/);
      const file = join(d.dir, 'config.json');
      const cfg = JSON.parse(await readFile(file, 'utf8'));
      cfg.sources = [blob(AZURITE_KEY)];
      await writeFile(file, JSON.stringify(cfg));
      d.child.kill('SIGHUP');
      let out = '';
      for (let i = 0; i < 50 && !out.includes('a.txt'); i++) {
        await new Promise((r) => setTimeout(r, 200));
        out = (await shResult(`cat ${d.mountpoint}/blob/a.txt`)).stdout;
      }
      expect(out).toBe(DATA.toString());
      expect(await isMounted(d.mountpoint)).toBe(true);
    } finally {
      await d.stop();
    }
  });

  it('never writes secrets or signed query strings to its logs', async () => {
    const d = await mountDaemon(
      {
        sources: [
          { ...s3Source(), secretAccessKey: 'S3RVER' },
          { name: 'blob', type: 'azure-blob', accountUrl: az.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY },
        ],
      },
      { logLevel: 'trace' },
    );
    try {
      await sh(`cat ${d.mountpoint}/s3/a.txt ${d.mountpoint}/blob/a.txt > /dev/null; cat ${d.mountpoint}/s3/missing 2>/dev/null || true`);
    } finally {
      await d.stop();
    }
    const logs = d.logs();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(AZURITE_KEY);
    expect(logs).not.toMatch(/X-Amz-Signature=/i);
    expect(logs).not.toMatch(/[?&]sig=/);
  });
});
