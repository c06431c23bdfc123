/**
 * A remote object that changes or disappears while a file on the mount is open (docs/semantics.md#reads): the
 * open file never gets a mix of versions, a read that needs bytes it cannot have fails with EIO
 * (not ENOENT, not a hang), what it already read stays readable, and a new open sees the new state.
 * Another process holds the file open across the change; the test asks it for reads line by line.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { s3rverSource, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { deterministicBytes, sha256 } from '@assetfs/lab/demo/sample-media.js';
import { s3rverClient, seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { mountDaemon, sh, shResult, type MountedDaemon } from '../helpers/mount.js';

const MiB = 1024 * 1024;
const V1 = deterministicBytes('change-v1', 8 * MiB);
const V2 = deterministicBytes('change-v2', 8 * MiB);
let s3: StorageServer;
let d: MountedDaemon;

beforeAll(async () => {
  s3 = await startS3rver({ buckets: ['media'] });
  await seedS3(s3.url, 'media', [
    { path: 'changed.bin', data: V1 },
    { path: 'removed.bin', data: V1 },
    { path: 'kept.bin', data: V1 },
  ]);
  d = await mountDaemon({
    metadataTtl: '1s',
    sources: [s3rverSource(s3.url, 'media')],
  });
});
afterAll(async () => {
  await d?.stop();
  await s3?.stop();
});

/**
 * Another process that holds `file` open and reads it at absolute offsets on request (pread), answering
 * each with the sha256 of what it read or the error code: the file stays open across remote changes.
 */
class HeldOpen {
  private readonly child: ChildProcessWithoutNullStreams;
  private lines: string[] = [];
  private buffered = '';
  constructor(file: string) {
    const script = `
      const { open } = require('node:fs/promises');
      const { createHash } = require('node:crypto');
      const rl = require('node:readline').createInterface({ input: process.stdin });
      const fh = open(process.argv[1], 'r');
      rl.on('line', async (line) => {
        const [at, len] = line.split(' ').map(Number);
        try {
          const buf = Buffer.alloc(len);
          const { bytesRead } = await (await fh).read(buf, 0, len, at);
          console.log(createHash('sha256').update(buf.subarray(0, bytesRead)).digest('hex'));
        } catch (e) {
          console.log(e.code ?? String(e));
        }
      });`;
    this.child = spawn(process.execPath, ['-e', script, file], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (c: Buffer) => {
      this.buffered += c.toString();
      const parts = this.buffered.split('\n');
      this.buffered = parts.pop()!;
      this.lines.push(...parts);
    });
  }
  /** sha256 of `len` bytes at `at`, or the error code of the read. */
  async read(at: number, len: number): Promise<string> {
    this.child.stdin.write(`${at} ${len}\n`);
    for (let i = 0; i < 600 && this.lines.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const line = this.lines.shift();
    if (line === undefined) throw new Error(`no answer to a read at ${at}`);
    return line;
  }
  async close(): Promise<void> {
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end();
    await exited;
  }
}

const head = sha256(V1.subarray(0, 4096));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const s3client = () => s3rverClient(s3.url);

/**
 * Two contents of one size whose ETags (s3rver: the MD5) share crc32 % 1000, so that versionedMtime
 * gives both the same mtime when they are stored within one second: only the version tells them apart.
 */
function contentsWithCollidingMtime(size: number): [Buffer, Buffer] {
  const a = deterministicBytes('collide', size);
  const tag = (h: ReturnType<typeof createHash>) => crc32(h.digest('hex')) % 1000;
  const want = tag(createHash('md5').update(a));
  const prefix = createHash('md5').update(a.subarray(0, size - 8));
  for (let i = 1n; ; i++) {
    const tail = Buffer.alloc(8);
    tail.writeBigUInt64LE(i);
    if (tag(prefix.copy().update(tail)) === want) return [a, Buffer.concat([a.subarray(0, size - 8), tail])];
  }
}

describe('a remote object changed or removed while open', () => {
  it('changed: the open file fails with EIO where it would need the new bytes, a new open reads the new version', async () => {
    const file = `${d.mountpoint}/s3/changed.bin`;
    // Stored again just before the change: both versions then usually share their Last-Modified second
    // (and their size), which is what once let the kernel's page cache mix them.
    await seedS3(s3.url, 'media', [{ path: 'changed.bin', data: V1 }], 1); // same bytes, same ETag
    const held = new HeldOpen(file);
    try {
      expect(await held.read(0, 4096)).toBe(head);
      await seedS3(s3.url, 'media', [{ path: 'changed.bin', data: V2 }], 1);
      expect(await held.read(6 * MiB, 4096)).toBe('EIO');
      expect(await held.read(0, 4096)).toBe(head); // what it read stays readable, and is still the old version
    } finally {
      await held.close();
    }
    await new Promise((r) => setTimeout(r, 1_100)); // the kernel's attribute timeout (metadataTtl)
    expect((await sh(`sha256sum ${file}`)).split(' ')[0]).toBe(sha256(V2));
    expect(d.logs()).toMatch(/remote object changed while open/);
  });

  it('unchanged: the kernel keeps the file\'s cached pages across opens', async () => {
    const file = `${d.mountpoint}/s3/kept.bin`;
    await sh(`cat ${file} > /dev/null`);
    // fincore opens the file again: an open that dropped the pages would leave none resident.
    expect((await sh(`fincore --bytes --noheadings --output RES ${file}`)).trim()).toBe(String(V1.length));
  });

  it('replaced within one second by an object of the same size and the same mtime: a new open drops the old pages', async () => {
    const [a, b] = contentsWithCollidingMtime(MiB);
    const client = s3client();
    try {
      for (let attempt = 1; ; attempt++) {
        const name = `collide-${attempt}.bin`;
        const file = `${d.mountpoint}/s3/${name}`;
        const lastModified = async () => (await client.send(new HeadObjectCommand({ Bucket: 'media', Key: name }))).LastModified!.getTime();
        await sleep(1_100); // the daemon's listing of /s3 is then stale, and the new name is looked up afresh
        while (Date.now() % 1000 > 200) await sleep(10); // early in a second: store, read and replace within it
        await seedS3(s3.url, 'media', [{ path: name, data: a }], 1);
        const storedA = await lastModified();
        const first = (await sh(`sha256sum ${file}`)).split(' ')[0]; // the kernel now holds a's pages
        const shownA = await sh(`stat -c '%s %.3Y' ${file}`);
        await seedS3(s3.url, 'media', [{ path: name, data: b }], 1);
        const storedB = await lastModified();
        if (Math.floor(storedA / 1000) !== Math.floor(storedB / 1000) && attempt < 5) continue; // a second ticked in between
        expect(first).toBe(sha256(a));
        await sleep(1_100); // the kernel's attribute timeout and the daemon's metadata TTL
        // The precondition: both versions show the same size and mtime, so only the version tells them apart.
        expect(await sh(`stat -c '%s %.3Y' ${file}`)).toBe(shownA);
        expect((await sh(`sha256sum ${file}`)).split(' ')[0]).toBe(sha256(b));
        return;
      }
    } finally {
      client.destroy();
    }
  });

  it('removed: the open file fails with EIO (not ENOENT) where it needs bytes it never had; the name is gone', async () => {
    const file = `${d.mountpoint}/s3/removed.bin`;
    const held = new HeldOpen(file);
    try {
      expect(await held.read(0, 4096)).toBe(head);
      const client = s3client();
      await client.send(new DeleteObjectCommand({ Bucket: 'media', Key: 'removed.bin' }));
      client.destroy();
      expect(await held.read(6 * MiB, 4096)).toBe('EIO');
      expect(await held.read(0, 4096)).toBe(head);
    } finally {
      await held.close();
    }
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await shResult(`cat ${file}`)).stderr).toMatch(/No such file or directory/);
    expect(d.logs()).toMatch(/remote object removed while open/);
  });
});
