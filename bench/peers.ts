/**
 * Side-by-side figures of issue 5, in the same run as their baselines:
 *   cold sequential read through rclone mount (--vfs-cache-mode full) and through s3fs, of the same object;
 *   fio 4 KiB random reads through assetfs: IOPS on a cached file, and cold (bytes fetched ÷ bytes read);
 *   ffprobe of a ≥ 512 MiB MP4 whose moov is at the end: wall time and bytes fetched ÷ file size;
 *   ls -l of a 10,000-entry folder, cold and warm;
 *   the daemon's peak RSS during a 4 GiB sequential read with cache.memory 256 MiB.
 * Bytes fetched are counted at a proxy in front of s3rver.
 */
import { readFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createCipheriv, createHash } from 'node:crypto';
import { Upload } from '@aws-sdk/lib-storage';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { S3RVER_KEY, s3rverSource } from '@assetfs/lab/emulators/storage-servers.js';
import type { FaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { s3rverClient, seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { sampleMp4WithMoovAtEnd } from '@assetfs/lab/demo/sample-media.js';
import { mountDaemon, sh } from '../test/helpers/mount.js';
import { fioRandomReadIops, peerColdRead, timed } from './tools.js';

const MiB = 1024 * 1024;
type Median = (xs: number[]) => number;

/** Bytes the proxy passed for GETs of `key` since its log was cleared (from Content-Range-less ranges). */
export function fetchedBytes(proxy: FaultProxy, key: string, size: number): number {
  let n = 0;
  for (const r of proxy.requests()) {
    if (r.method !== 'GET' || !r.path.endsWith(`/${key}`)) continue;
    const m = r.range ? /bytes=(\d+)-(\d*)/.exec(r.range) : null;
    n += m ? (m[2] ? Number(m[2]) : size - 1) - Number(m[1]) + 1 : size;
  }
  return n;
}

export async function peerColdReads(endpoint: string, serverDir: string, size: number, runs: number, median: Median, tools: Set<string>): Promise<{ rclone?: number; s3fs?: number }> {
  const work = await mkdtemp(join(tmpdir(), 'assetfs-peers-'));
  const out: { rclone?: number; s3fs?: number } = {};
  try {
    if (tools.has('rclone')) {
      const speeds: number[] = [];
      const env = { RCLONE_CONFIG_BENCH_TYPE: 's3', RCLONE_CONFIG_BENCH_PROVIDER: 'Other', RCLONE_CONFIG_BENCH_ENDPOINT: endpoint, RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: S3RVER_KEY, RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: S3RVER_KEY, RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true' };
      for (let i = 0; i < runs; i++) {
        const mnt = join(work, `rclone-${i}`);
        speeds.push(await peerColdRead(serverDir, ['rclone', 'mount', 'bench:bench', mnt, '--vfs-cache-mode', 'full', '--cache-dir', join(work, `rclone-cache-${i}`), '--read-only'], mnt, 'big.bin', size, env));
      }
      out.rclone = median(speeds);
    }
    if (tools.has('s3fs')) {
      const speeds: number[] = [];
      const pw = join(work, 'passwd');
      await writeFile(pw, `${S3RVER_KEY}:${S3RVER_KEY}\n`, { mode: 0o600 });
      for (let i = 0; i < runs; i++) {
        const mnt = join(work, `s3fs-${i}`);
        speeds.push(await peerColdRead(serverDir, ['s3fs', 'bench', mnt, '-f', '-o', `url=${endpoint},use_path_request_style,passwd_file=${pw},ro`], mnt, 'big.bin', size));
      }
      out.s3fs = median(speeds);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return out;
}

/** Seconds to list every key under `prefix` with ListObjectsV2 (1000 a page), as the daemon does. */
async function listSeconds(endpoint: string, prefix: string): Promise<number> {
  const c = s3rverClient(endpoint);
  try {
    const t = process.hrtime.bigint();
    let token: string | undefined;
    do {
      const out = await c.send(new ListObjectsV2Command({ Bucket: 'bench', Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
      token = out.NextContinuationToken;
    } while (token);
    return Number(process.hrtime.bigint() - t) / 1e9;
  } finally {
    c.destroy();
  }
}

/** A deterministic stream of `size` bytes (AES-CTR keystream), for objects too big to hold. */
function keystream(seed: string, size: number): Readable {
  const cipher = createCipheriv('aes-128-ctr', createHash('sha256').update(seed).digest().subarray(0, 16), Buffer.alloc(16));
  const chunk = Buffer.alloc(4 * MiB);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(cipher.update(chunk.subarray(0, n)));
    },
  });
}

export async function assetfsExtras(endpoint: string, proxy: FaultProxy, s3url: string, tools: Set<string>, opts: { bigRssBytes: number; ffprobeBytes: number; trivialIops?: number }): Promise<string[][]> {
  const rows: string[][] = [];
  const source = s3rverSource(endpoint, 'bench');

  // fio random reads: cold (bytes fetched ÷ read) on a fresh daemon, then IOPS on the now-cached file.
  if (tools.has('fio')) {
    const d = await mountDaemon({ cache: { memory: '1500MiB', disk: 0 }, sources: [source] }, { logLevel: 'warn' });
    try {
      const f = `${d.mountpoint}/s3/big.bin`;
      proxy.clearLog();
      await sh(`fio --name=cold --filename=${f} --readonly --rw=randread --bs=4k --ioengine=psync --direct=1 --number_ios=2000 --output-format=json > /dev/null`, { timeoutMs: 600_000 });
      const fetched = fetchedBytes(proxy, 'big.bin', 0);
      rows.push(['fio 4 KiB random reads, cold (2000 reads)', `${(fetched / MiB).toFixed(1)} MiB fetched for ${(2000 * 4096) / MiB} MiB read`, `${(fetched / (2000 * 4096)).toFixed(1)} × bytes read (1 MiB blocks)`]);
      await sh(`cat ${f} > /dev/null`, { timeoutMs: 600_000 });
      const iops = await fioRandomReadIops(f);
      const vs = opts.trivialIops ? `${(iops / opts.trivialIops).toFixed(2)} × the trivial FS (${opts.trivialIops.toFixed(0)} IOPS)` : '';
      rows.push(['fio 4 KiB random reads on a cached file (O_DIRECT, one job)', `${iops.toFixed(0)} IOPS`, vs]);
    } finally {
      await d.stop();
    }
  }

  // ffprobe of a large MP4 with moov at the end.
  if (tools.has('ffprobe')) {
    const mp4 = await sampleMp4WithMoovAtEnd(opts.ffprobeBytes);
    await seedS3(s3url, 'bench', [{ path: 'movie.mp4', data: mp4 }], 1);
    const d = await mountDaemon({ cache: { disk: 0 }, sources: [source] }, { logLevel: 'warn' });
    try {
      proxy.clearLog();
      const secs = await timed(`ffprobe -v error -show_format -show_streams ${d.mountpoint}/s3/movie.mp4 > /dev/null`);
      const fetched = fetchedBytes(proxy, 'movie.mp4', mp4.length);
      rows.push([`ffprobe of a ${(mp4.length / MiB).toFixed(0)} MiB MP4, moov at the end (cold)`, `${secs.toFixed(2)} s`, `${((100 * fetched) / mp4.length).toFixed(2)} % of the file fetched (aim ≤ 1 %)`]);
    } finally {
      await d.stop();
    }
  }

  // ls -l of 10,000 entries, cold and warm.
  await seedS3(s3url, 'bench', Array.from({ length: 10_000 }, (_, i) => ({ path: `many/f-${String(i).padStart(5, '0')}.txt`, data: Buffer.from(String(i)) })), 16);
  {
    const listing = await listSeconds(endpoint, 'many/');
    const d = await mountDaemon({ cache: { disk: 0 }, sources: [source] }, { logLevel: 'warn' });
    try {
      const cold = await timed(`ls -l ${d.mountpoint}/s3/many > /dev/null`);
      const warm = await timed(`ls -l ${d.mountpoint}/s3/many > /dev/null`);
      rows.push(['ls -l of a 10,000-entry folder', `cold ${cold.toFixed(2)} s, warm ${warm.toFixed(2)} s`, `cold is ${(cold / listing).toFixed(2)} × listing the folder directly (ListObjectsV2, 10 pages: ${listing.toFixed(2)} s)`]);
    } finally {
      await d.stop();
    }
  }

  // Peak RSS over a long sequential read with a 256 MiB memory tier.
  {
    const c = s3rverClient(s3url);
    try {
      await new Upload({ client: c, params: { Bucket: 'bench', Key: 'huge.bin', Body: keystream('huge', opts.bigRssBytes) }, partSize: 64 * MiB, queueSize: 2 }).done();
    } finally {
      c.destroy();
    }
    const d = await mountDaemon({ cache: { memory: '256MiB', disk: 0 }, sources: [source] }, { logLevel: 'warn' });
    try {
      const secs = await timed(`dd if=${d.mountpoint}/s3/huge.bin of=/dev/null bs=1M status=none`);
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${d.child.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
      rows.push([`daemon peak RSS, ${(opts.bigRssBytes / 1024 ** 3).toFixed(1)} GiB sequential read, cache.memory 256 MiB`, `${hwm.toFixed(0)} MiB (${(opts.bigRssBytes / MiB / secs).toFixed(0)} MiB/s)`, `aim ≤ 406 MiB: ${hwm <= 406 ? 'met' : 'NOT met'}`]);
    } finally {
      await d.stop();
    }
  }
  return rows;
}
