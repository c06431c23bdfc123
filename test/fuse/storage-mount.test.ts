/**
 * Real FUSE mounts of an S3 bucket (s3rver behind the fault proxy, which enforces presigned-URL
 * expiry) and an Azure Blob container (Azurite, which checks SAS expiry itself), driven from child
 * processes. Every claim is checked against the stored bytes by sha256.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { AZURITE_ACCOUNT, AZURITE_KEY, s3rverSource, startAzurite, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { startFaultProxy, type FaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { deterministicBytes, sha256, storageSampleTree, type SampleFile } from '@assetfs/lab/demo/sample-media.js';
import { seedAzure, seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { BIN, mountDaemon, sh, shResult, type MountedDaemon } from '../helpers/mount.js';

const MANY = 2500;
const BIG = deterministicBytes('fuse-big', 24 * 1024 * 1024 + 12345);
// Read only by the fault tests, so that their reads really go to the network.
const EXPIRY = deterministicBytes('fuse-expiry', 24 * 1024 * 1024);
const FAULT = deterministicBytes('fuse-500', 5 * 1024 * 1024 + 7);
const URL_TTL_S = 4;

let s3: StorageServer;
let az: StorageServer;
let proxy: FaultProxy;
let d: MountedDaemon;
let files: SampleFile[];

beforeAll(async () => {
  [s3, az] = await Promise.all([startS3rver({ buckets: ['media'] }), startAzurite()]);
  proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
  files = [
    ...(await storageSampleTree({ bigFileBytes: 3 * 1024 * 1024 })),
    { path: 'big/big.bin', data: BIG },
    { path: 'faults/expiry.bin', data: EXPIRY },
    { path: 'faults/500.bin', data: FAULT },
    ...Array.from({ length: MANY }, (_, i) => ({ path: `many/item-${String(i).padStart(5, '0')}.txt`, data: Buffer.from(`item ${i}\n`) })),
  ];
  await Promise.all([seedS3(s3.url, 'media', files, 32), seedAzure(az, 'media', files, 32)]);
  d = await mountDaemon({
    metadataTtl: '30s',
    retry: { maxTime: '20s', requestTimeout: '10s' },
    sources: [
      s3rverSource(proxy.url, 'media', { urlTtl: `${URL_TTL_S}s`, readOnly: true }),
      { name: 'blob', type: 'azure-blob', accountUrl: az.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, urlTtl: `${URL_TTL_S}s`, readOnly: true },
    ],
  });
});

afterAll(async () => {
  const code = await d?.stop();
  if (code !== 0 && d) process.stderr.write(`daemon logs:\n${d.logs().slice(-5000)}\n`);
  await proxy?.close();
  await Promise.allSettled([s3?.stop(), az?.stop()]);
});

const sources = ['s3', 'blob'] as const;
const path = (src: string, p: string) => join(d.mountpoint, src, p);
const q = (s: string) => JSON.stringify(s);

describe.each(sources)('%s mount', (src) => {
  it('lists the source root and nested folders with ls -l', async () => {
    const root = await sh(`ls ${q(d.mountpoint)}`);
    expect(root.split('\n').filter(Boolean).sort()).toEqual(['blob', 's3']);
    const top = (await sh(`ls ${q(path(src, ''))}`)).split('\n').filter(Boolean).sort();
    expect(top).toEqual(['README.txt', 'big', 'faults', 'images', 'large', 'many', 'projects', 'videos']);
    const l = await sh(`ls -l ${q(path(src, 'videos'))}`);
    expect(l).toMatch(/sample\.mp4/);
    const mp4 = files.find((f) => f.path === 'videos/sample.mp4')!;
    expect(l).toContain(` ${mp4.data.length} `);
  });

  it('ls -a lists . and .. first, as directories, and find walks the tree without them', async () => {
    const all = (await sh(`ls -a1 ${q(path(src, 'videos'))}`)).split('\n').filter(Boolean);
    expect(all.slice(0, 2)).toEqual(['.', '..']);
    expect(all).toContain('sample.mp4');
    expect(await sh(`ls -a1 ${q(d.mountpoint)}`)).toBe('.\n..\nblob\ns3\n');
    const long = (await sh(`ls -la ${q(path(src, 'videos'))}`)).split('\n');
    expect(long.find((l) => / \.$/.test(l))).toMatch(/^d/);
    expect(long.find((l) => / \.\.$/.test(l))).toMatch(/^d/);
    const found = (await sh(`find ${q(path(src, 'projects'))} -mindepth 1`)).split('\n').filter(Boolean);
    expect(found.length).toBeGreaterThan(0);
    expect(found.filter((f) => /\/\.{1,2}$/.test(f))).toEqual([]);
  });

  it(`ls -l of a directory of ${MANY} objects shows every one (paging)`, async () => {
    const names = (await sh(`ls -1 ${q(path(src, 'many'))}`)).split('\n').filter(Boolean);
    expect(names.length).toBe(MANY);
    expect(new Set(names).size).toBe(MANY);
    const long = (await sh(`ls -l ${q(path(src, 'many'))} | grep -c '^-'`)).trim();
    expect(Number(long)).toBe(MANY);
  });

  it('cat and cp are byte-exact (sha256) against the stored objects', async () => {
    for (const f of files.filter((x) => !x.path.startsWith('many/') && !x.path.startsWith('faults/'))) {
      const got = (await sh(`cat ${q(path(src, f.path))} | sha256sum`)).split(' ')[0];
      expect(got, f.path).toBe(sha256(f.data));
    }
    const dest = join(d.dir, `copy-${src}.bin`);
    await sh(`cp ${q(path(src, 'big/big.bin'))} ${q(dest)}`);
    expect((await sh(`sha256sum ${q(dest)}`)).split(' ')[0]).toBe(sha256(BIG));
  });

  it('dd with skip/count at odd offsets returns exactly those bytes', async () => {
    for (const [bs, skip, count] of [[4099, 1234, 77], [1, 5_000_001, 333], [65537, 100, 3], [1000003, 24, 2]] as const) {
      const start = bs * skip;
      const want = BIG.subarray(start, Math.min(start + bs * count, BIG.length));
      const got = (await sh(`dd if=${q(path(src, 'big/big.bin'))} bs=${bs} skip=${skip} count=${count} status=none | sha256sum`)).split(' ')[0];
      expect(got, `bs=${bs} skip=${skip}`).toBe(sha256(want));
    }
  });

  it('two concurrent readers both get the exact bytes', async () => {
    const [a, b] = await Promise.all([
      sh(`sha256sum ${q(path(src, 'large/random-3MiB.bin'))}`),
      sh(`cat ${q(path(src, 'large/random-3MiB.bin'))} | sha256sum`),
    ]);
    const want = sha256(files.find((f) => f.path === 'large/random-3MiB.bin')!.data);
    expect(a.split(' ')[0]).toBe(want);
    expect(b.split(' ')[0]).toBe(want);
  });

  it('a missing file is ENOENT, and writing into a readOnly source is refused with EROFS', async () => {
    const missing = await shResult(`cat ${q(path(src, 'no/such/file'))}`);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/No such file or directory/);
    const write = await shResult(`echo x > ${q(path(src, 'README.txt'))}`);
    expect(write.code).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
  });
});

describe('faults on the S3 path (through the fault proxy)', () => {
  it('a read that crosses an expired signed URL succeeds (natural expiry and a forced 403)', async () => {
    const f = path('s3', 'faults/expiry.bin');
    const slice = (skip: number) => sha256(EXPIRY.subarray(skip * 1048576, (skip + 1) * 1048576));
    expect((await sh(`dd if=${q(f)} bs=1M skip=2 count=1 status=none | sha256sum`)).split(' ')[0]).toBe(slice(2));
    await new Promise((r) => setTimeout(r, (URL_TTL_S + 1) * 1000));
    expect((await sh(`dd if=${q(f)} bs=1M skip=12 count=1 status=none | sha256sum`)).split(' ')[0]).toBe(slice(12));
    proxy.clearLog();
    proxy.expireNext(1);
    expect((await sh(`dd if=${q(f)} bs=1M skip=22 count=1 status=none | sha256sum`)).split(" ")[0]).toBe(slice(22));
    const statuses = proxy.requests().map((r) => r.status);
    expect(statuses).toContain(403);
    expect(statuses.filter((s) => s === 206).length).toBeGreaterThan(0);
  });

  it('a 500 injected mid-read is retried and the bytes are exact', async () => {
    const f = path('s3', 'faults/500.bin');
    const want = sha256(FAULT);
    proxy.clearLog();
    proxy.failNext(2, 500);
    expect((await sh(`sha256sum ${q(f)}`)).split(' ')[0]).toBe(want);
    const statuses = proxy.requests().map((r) => r.status);
    expect(statuses.filter((s) => s === 500).length).toBe(2);
  });
});

describe('the receive path', () => {
  it('ranged reads from s3rver and Azurite land on the fast path, none handed to undici', async () => {
    for (const src of sources) expect(await sh(`sha256sum < ${q(path(src, 'big/big.bin'))}`)).toContain(sha256(BIG));
    const status = JSON.parse(await sh(`node ${BIN} status --json --socket ${join(d.dir, 'cache', 'control.sock')}`)) as { receive: { fast: number; fallback: Record<string, number> } };
    expect(status.receive.fast).toBeGreaterThan(0);
    expect(status.receive.fallback).toEqual({});
  });
});
