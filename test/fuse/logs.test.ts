/**
 * The daemon's logs through the real CLI (bin/assetfs.js mount of an s3rver source): readable,
 * coloured lines on a terminal (script(1) gives it a pty), JSON when stderr is a pipe, and the
 * log file, JSON and 0600, reopened on SIGHUP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { s3rverSource, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { BIN, NODE_FLAGS, isMounted, mountDaemon, sh, until } from '../helpers/mount.js';

let s3: StorageServer;
let work: string;

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['media'] });
  await seedS3(s3.url, 'media', [{ path: 'a.txt', data: Buffer.from('hello logs\n') }]);
  work = await mkdtemp(join(tmpdir(), 'assetfs-logs-'));
});

afterAll(async () => {
  await s3?.stop();
  await rm(work, { recursive: true, force: true });
});

const ANSI = /\x1b\[[0-9;]*m/;
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

describe('daemon logs through the CLI', () => {
  it('on a terminal: readable, coloured lines, one per record, no JSON', async () => {
    const mountpoint = join(work, 'tty-mnt');
    await mkdir(mountpoint);
    const config = join(work, 'tty.json');
    await writeFile(config, JSON.stringify({ cacheDir: join(work, 'tty-cache'), mountpoint, log: { level: 'info' }, sources: [s3rverSource(s3.url, 'media')] }));
    const cmd = [process.execPath, ...NODE_FLAGS, BIN, 'mount', '--config', config].map((a) => JSON.stringify(a)).join(' ');
    const env = { ...process.env, TERM: 'xterm-256color', NO_COLOR: undefined, FORCE_COLOR: undefined, JOURNAL_STREAM: undefined, ASSETFS_LOG_FORMAT: undefined };
    const child = spawn('script', ['-qec', cmd, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      await until(async () => {
        if (child.exitCode !== null) throw new Error(`script exited: ${out}`);
        return (await isMounted(mountpoint)) && /ready/.test(out);
      }, 'the mount and its "ready" line');
      expect(await sh(`cat ${JSON.stringify(join(mountpoint, 's3', 'a.txt'))}`)).toBe('hello logs\n');
      await sh(`${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} unmount ${JSON.stringify(mountpoint)}`);
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (await isMounted(mountpoint)) await sh(`fusermount -uz ${JSON.stringify(mountpoint)}`).catch(() => undefined);
    }
    expect(out).toMatch(ANSI);
    const lines = stripAnsi(out).split(/\r?\n/).filter(Boolean);
    expect(lines.some((l) => /^\{"level"/.test(l))).toBe(false);
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: mounted \{"mountpoint":".*tty-mnt","sources":\["s3"\]\}$/));
    expect(lines).toContainEqual(expect.stringMatching(/INFO: ready \{"mountpoint":/));
    expect(lines).toContainEqual(expect.stringMatching(/INFO: stopped$/));
  });

  it('with stderr piped: JSON records, as before', async () => {
    const d = await mountDaemon({ sources: [s3rverSource(s3.url, 'media')] });
    try {
      await until(async () => /"msg":"ready"/.test(d.logs()), 'the "ready" record');
    } finally {
      expect(await d.stop()).toBe(0);
    }
    const records = d.logs().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toContainEqual(expect.objectContaining({ level: 30, msg: 'mounted', sources: ['s3'] }));
    expect(d.logs()).not.toMatch(ANSI);
  });

  it('log.file: JSON records in a 0600 file; SIGHUP (credentials reload) also reopens it after logrotate moved it', async () => {
    const file = join(work, 'logs', 'assetfs.log');
    const d = await mountDaemon({ sources: [s3rverSource(s3.url, 'media')], log: { level: 'info', file } });
    try {
      await until(async () => /"msg":"ready"/.test(await readFile(file, 'utf8').catch(() => '')), 'the "ready" record in the log file');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      await rename(file, `${file}.1`);
      d.child.kill('SIGHUP');
      await until(async () => /credentials reloaded/.test(await readFile(file, 'utf8').catch(() => '')), 'the reload record in the reopened file');
    } finally {
      expect(await d.stop()).toBe(0);
    }
    const old = (await readFile(`${file}.1`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const fresh = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(old.map((r) => r.msg)).toContain('mounted');
    expect(old.map((r) => r.msg)).not.toContain('credentials reloaded');
    expect(fresh.map((r) => r.msg)).toContain('credentials reloaded');
    expect(fresh.at(-1)!.msg).toBe('stopped');
    expect(d.logs()).toBe(''); // nothing on stderr: the file has it all
  });
});
