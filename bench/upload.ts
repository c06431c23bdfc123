/**
 * Upload figures for `npm run bench` (issue 4), measured in the same run as their baselines:
 *   dd bs=1M of 1 GiB into the mount ÷ the same dd onto the cache dir's disk;
 *   syncing one 1 GiB file to s3rver through a watched folder ÷ @aws-sdk/lib-storage `Upload` of the same file;
 *   the daemon's peak RSS (VmHWM) during that sync, against part size × parallel parts + 150 MiB.
 */
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { s3rverSource } from '@assetfs/lab/emulators/storage-servers.js';
import { s3rverClient } from '@assetfs/lab/demo/seed-storage.js';
import { mountDaemon, sh } from '../test/helpers/mount.js';
import { trivialFs } from './tools.js';

const MiB = 1024 * 1024;
const PART = 8 * MiB;
const PARTS = 8;

async function seconds(f: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function exists(endpoint: string, key: string, size: number): Promise<boolean> {
  const c = s3rverClient(endpoint);
  try {
    return (await c.send(new HeadObjectCommand({ Bucket: 'bench', Key: key }))).ContentLength === size;
  } catch {
    return false;
  } finally {
    c.destroy();
  }
}

async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

export async function uploadBench(endpoint: string, size: number, runs: number, median: (xs: number[]) => number): Promise<string[][]> {
  const rows: string[][] = [];
  const work = await mkdtemp(join(tmpdir(), 'assetfs-bench-up-'));
  const source = s3rverSource(endpoint, 'bench');
  const rate = (secs: number) => size / MiB / secs;
  try {
    // 1. dd into the mount (staged in the cache dir) vs dd onto the cache dir's disk.
    const intoMount: number[] = [];
    const ontoDisk: number[] = [];
    const intoTrivial: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t = await trivialFs(MiB);
      try {
        intoTrivial.push(rate(await seconds(() => sh(`dd if=/dev/zero of=${t.file} bs=1M count=${size / MiB} status=none`, { timeoutMs: 600_000 }))));
      } finally {
        await t.stop();
      }
      const cacheDir = join(work, `cache-dd-${i}`);
      const d = await mountDaemon({ cacheDir, cache: { disk: 0 }, sources: [source], uploads: { writeBack: '60s' } }, { logLevel: 'warn' });
      try {
        intoMount.push(rate(await seconds(() => sh(`dd if=/dev/zero of=${d.mountpoint}/s3/dd-${i}.bin bs=1M count=${size / MiB} status=none`, { timeoutMs: 600_000 }))));
      } finally {
        await d.stop();
      }
      await mkdir(join(work, 'disk'), { recursive: true });
      ontoDisk.push(rate(await seconds(() => sh(`dd if=/dev/zero of=${join(work, 'disk', `dd-${i}.bin`)} bs=1M count=${size / MiB} status=none`, { timeoutMs: 600_000 }))));
      await rm(join(work, 'disk', `dd-${i}.bin`), { force: true });
      await rm(cacheDir, { recursive: true, force: true });
    }
    rows.push(['dd bs=1M onto the cache dir\'s disk', `${median(ontoDisk).toFixed(0)} MiB/s`, 'baseline']);
    rows.push(['dd bs=1M into a trivial fuse-native FS that drops the bytes (the FUSE write ceiling)', `${median(intoTrivial).toFixed(0)} MiB/s`, 'baseline']);
    rows.push([
      'dd bs=1M into the mount (staged for upload)',
      `${median(intoMount).toFixed(0)} MiB/s`,
      `${(median(intoMount) / median(ontoDisk)).toFixed(2)} × disk (aim ≥ 0.5); ${(median(intoMount) / median(intoTrivial)).toFixed(2)} × the FUSE ceiling`,
    ]);

    // 2. + 3. sync of one file vs lib-storage Upload, and the daemon's peak RSS meanwhile.
    const file = join(work, 'payload.bin');
    await sh(`head -c ${size} /dev/urandom > ${file}`, { timeoutMs: 600_000 });
    const lib: number[] = [];
    const synced: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < runs; i++) {
      const c = s3rverClient(endpoint);
      try {
        lib.push(rate(await seconds(() => new Upload({ client: c, params: { Bucket: 'bench', Key: `lib-${i}.bin`, Body: createReadStream(file) }, partSize: PART, queueSize: PARTS }).done())));
      } finally {
        c.destroy();
      }
      const watched = join(work, `watched-${i}`);
      await mkdir(watched, { recursive: true });
      const d = await mountDaemon(
        { cacheDir: join(work, `cache-sync-${i}`), cache: { disk: 0 }, sources: [source], sync: [{ local: watched, remote: 's3/synced', stableFor: '500ms' }], uploads: { parallelParts: PARTS, partsPerFile: PARTS } },
        { logLevel: 'warn' },
      );
      try {
        const key = `synced/run-${i}.bin`;
        await sh(`cp ${file} ${join(work, `staged-${i}.bin`)}`, { timeoutMs: 600_000 });
        const secs = await seconds(async () => {
          await rename(join(work, `staged-${i}.bin`), join(watched, `run-${i}.bin`)); // appears whole, at once
          while (!(await exists(endpoint, key, size))) await new Promise((r) => setTimeout(r, 100));
        });
        synced.push(rate(secs));
        rss.push(await peakRssMiB(d.child.pid!));
      } finally {
        await d.stop();
      }
      await rm(watched, { recursive: true, force: true });
    }
    const bound = (PART * PARTS) / MiB + 150;
    rows.push(['@aws-sdk/lib-storage Upload of the file (8 MiB parts, 8 in flight)', `${median(lib).toFixed(0)} MiB/s`, 'baseline']);
    rows.push(['sync of the file through a watched folder (incl. 0.5 s stability window)', `${median(synced).toFixed(0)} MiB/s`, `${(median(synced) / median(lib)).toFixed(2)} × Upload (aim ≥ 0.8)`]);
    rows.push(['daemon peak RSS (VmHWM) during the sync', `${Math.max(...rss).toFixed(0)} MiB`, `bound ${bound} MiB (8 MiB × 8 parts + 150 MiB): ${Math.max(...rss) <= bound ? 'met' : 'NOT met'}`]);
    await writeFile(join(work, 'done'), '');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}
