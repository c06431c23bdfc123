/**
 * `npm run bench`: read-path (and, from bench/upload.ts, upload) figures measured in ONE run on ONE 1 GiB object in s3rver, each the
 * median of several runs, reported as ratios against baselines measured in the same run:
 *   cold sequential read through the mount ÷ direct download (curl) of the same signed URL, each from
 *   the same start (coldStart: page cache dropped, the server's files read back in)
 *   hot re-read (memory tier) and warm re-read (disk tier, restarted daemon), kernel page cache dropped,
 *   ÷ a trivial in-memory fuse-native FS; kernel options; rclone and s3fs; fio; ffprobe; ls -l; RSS; bursts
 *   and the cold-read comparison again on the same bytes in Azurite (bench/azurite.ts); journal calls with
 *   100,000 queued jobs (bench/journal.ts); CPU-seconds per GiB of receiving the object through each
 *   transport, s3rver and Azurite (bench/receive.ts); 4 hosts cold-reading one object with and without the
 *   shared tier, and a shared-tier hit (bench/shared.ts)
 * Writes bench/results/latest.md. Not a test: nothing here asserts.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Provider } from '../src/providers/s3/index.js';
import { ConfigSchema, type SourceConfigOf } from '../src/config/schema.js';
import { s3rverSource, startS3rver } from '@assetfs/lab/emulators/storage-servers.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { silentLogger } from '../src/util/logger.js';
import { mountDaemon, ROOT, sh } from '../test/helpers/mount.js';
import { uploadBench } from './upload.js';
import { journalBench } from './journal.js';
import { burstBench } from './burst.js';
import { coldStart, curlMiBps, ddMiBps, directReadMiBps, dropPageCache, ensureTools, fioRandomReadIops, trivialFs, withCpu, type CpuTimes } from './tools.js';
import { azuriteColdReads } from './azurite.js';
import { kernelOptionsBench } from './kernel.js';
import { receiveRows } from './receive.js';
import { sharedMetaBench } from './shared-meta.js';
import { assetfsExtras, peerColdReads } from './peers.js';
import { startFaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { sharedBench } from './shared.js';

const GiB = 1024 ** 3;
const SIZE = Number(process.env.BENCH_BYTES ?? GiB);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const rows: string[][] = [];
  const s3 = await startS3rver({ buckets: ['bench'] });
  try {
    process.stdout.write(`bench: seeding a ${SIZE / GiB} GiB object into s3rver…\n`);
    let data: Buffer | undefined = deterministicBytes('bench', SIZE);
    await seedS3(s3.url, 'bench', [{ path: 'big.bin', data }], 1);
    // Let the kernel write the seeded object back before anything is timed: writeback of a just-written
    // GiB competes for both cores and halved the first measurements.
    await sh('sync', { timeoutMs: 600_000 });
    await new Promise((r) => setTimeout(r, 3_000));
    const srcCfg = s3rverSource(s3.url, 'bench');
    const cfg = ConfigSchema.parse({ sources: [srcCfg] }).sources[0] as SourceConfigOf<'s3'>;
    const provider = new S3Provider(cfg, { log: silentLogger });
    const st = await provider.stat('big.bin');
    const loc = await provider.locate({ source: 's3', ref: st.ref, version: st.version, size: st.size });
    await provider.close();

    const direct: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await coldStart(s3.dir);
      direct.push(await curlMiBps(loc.url, SIZE));
    }
    process.stdout.write('bench: CPU per GiB of receiving through each transport…\n');
    const receive = await receiveRows([{ name: 's3rver', loc, expect: { version: st.version, size: st.size }, serverDir: s3.dir }], RUNS, median);

    // Cold, with the default cache configuration (512 MiB memory tier, the disk tier on); then a
    // restarted daemon on the same cache dir re-reads from the disk tier (warm); then one whose memory
    // tier holds the whole file reads it from the disk tier (twice, see below) and re-reads it from memory (hot).
    const cold: number[] = [];
    const hot: number[] = [];
    const warm: number[] = [];
    let dropped = true;
    const wholeInMemory = { memory: `${Math.ceil((SIZE * 1.25) / 1024 / 1024)}MiB` };
    // The daemon's own CPU (all its threads) during each cold and hot read, user and system apart.
    const coldCpu: CpuTimes[] = [];
    const hotCpu: CpuTimes[] = [];
    const daemonOn = async <T>(cacheDir: string, cache: Record<string, string>, use: (file: string, pid: number) => Promise<T>): Promise<T> => {
      const d = await mountDaemon({ cacheDir, cache, sources: [srcCfg] }, { logLevel: 'warn' });
      try {
        return await use(join(d.mountpoint, 's3', 'big.bin'), d.child.pid!);
      } finally {
        await d.stop(); // flushes the disk tier's background writes
      }
    };
    for (let i = 0; i < RUNS; i++) {
      const cacheDir = await mkdtemp(join(tmpdir(), 'assetfs-bench-cache-'));
      try {
        cold.push(
          await daemonOn(cacheDir, {}, async (f, pid) => {
            dropped = (await coldStart(s3.dir)) && dropped;
            const [speed, cpu] = await withCpu(pid, () => ddMiBps(f, SIZE));
            coldCpu.push(cpu);
            return speed;
          }),
        );
        warm.push(
          await daemonOn(cacheDir, {}, async (f) => {
            dropped = (await dropPageCache()) && dropped;
            return await ddMiBps(f, SIZE);
          }),
        );
        hot.push(
          await daemonOn(cacheDir, wholeInMemory, async (f, pid) => {
            // Read twice from the disk tier first: a block a sequential stream has read once is let go
            // early, one read again is kept (scan resistance, memory-cache.ts).
            for (let i = 0; i < 2; i++) {
              await ddMiBps(f, SIZE);
              dropped = (await dropPageCache()) && dropped;
            }
            const [speed, cpu] = await withCpu(pid, () => ddMiBps(f, SIZE));
            hotCpu.push(cpu);
            return speed;
          }),
        );
      } finally {
        await rm(cacheDir, { recursive: true, force: true });
      }
    }

    const tools = await ensureTools(['rclone', 's3fs', 'fio', 'ffprobe'], (m) => process.stdout.write(`${m}\n`));
    // The trivial FS with assetfs's kernel readahead (1 MiB: requests of up to 1 MiB), the baseline; and
    // with the kernel's default 128 KiB, which every fuse-native filesystem had before libfuse 3.
    const trivial: number[] = [];
    const trivial128: number[] = [];
    let trivialIops: number | undefined;
    for (const [readaheadKb, into] of [[1024, trivial], [128, trivial128]] as const) {
      const t = await trivialFs(SIZE, readaheadKb);
      try {
        await ddMiBps(t.file, SIZE);
        for (let i = 0; i < RUNS; i++) {
          await dropPageCache();
          into.push(await ddMiBps(t.file, SIZE));
        }
        if (tools.has('fio') && readaheadKb === 1024) trivialIops = await fioRandomReadIops(t.file);
      } finally {
        await t.stop();
      }
    }
    const diskRead = await directReadMiBps(SIZE);

    process.stdout.write('bench: kernel options…\n');
    const kernelRows = await kernelOptionsBench(s3.url, s3.dir, 'big.bin', SIZE, tools.has('fio'));
    process.stdout.write('bench: cold reads through rclone mount and s3fs…\n');
    const peers = await peerColdReads(s3.url, s3.dir, SIZE, RUNS, median, tools);
    process.stdout.write('bench: the cold reads again, on Azurite…\n');
    const azurite = await azuriteColdReads(data, RUNS, median, tools);
    data = undefined;
    process.stdout.write('bench: fio, ffprobe, ls -l of 10,000 entries, peak RSS over a long read…\n');
    const proxy = await startFaultProxy(s3.url);
    let extraRows: string[][] = [];
    try {
      extraRows = await assetfsExtras(proxy.url, proxy, s3.url, tools, {
        bigRssBytes: Number(process.env.BENCH_RSS_BYTES ?? 4 * GiB),
        ffprobeBytes: Number(process.env.BENCH_MP4_BYTES ?? 512 * 1024 * 1024 + 4096),
        trivialIops,
      });
    } finally {
      await proxy.close();
    }
    process.stdout.write('bench: 64 concurrent readers, before/after…\n');
    const burstRows = await burstBench(s3.url, 'big.bin', SIZE, { readers: 64, burstSecs: Number(process.env.BENCH_BURST_SECS ?? 60), probeSecs: 5, probes: 3 }, median);
    let uploadRows: string[][] = [];
    if (process.env.BENCH_UPLOADS !== '0') {
      process.stdout.write('bench: uploads (dd into the mount, watched-folder sync vs lib-storage Upload)…\n');
      uploadRows = await uploadBench(s3.url, SIZE, RUNS, median);
    }
    process.stdout.write('bench: journal calls with 100,000 queued jobs…\n');
    const journalRows = await journalBench();
    process.stdout.write('bench: the shared tier (4 hosts, one Redis)…\n');
    const sharedRows = await sharedBench(SIZE);
    process.stdout.write('bench: logins, listings and URL mints of 4 hosts walking one tree, shared tier vs none…\n');
    const sharedMetaRows = await sharedMetaBench();
    const f = (x: number) => x.toFixed(0);
    rows.push(['direct download of the signed URL (curl)', `${f(median(direct))} MiB/s`, 'baseline']);
    rows.push(['cold sequential read through assetfs (dd bs=1M; default cache: 512 MiB memory tier, disk tier on)', `${f(median(cold))} MiB/s`, `${(median(cold) / median(direct)).toFixed(2)} × direct (aim ≥ 0.9)`]);
    const cpuRow = (what: string, xs: CpuTimes[], aim: number) => {
      const per = (x: number) => (x / SIZE) * GiB;
      const total = median(xs.map((x) => per(x.user + x.sys)));
      return [`daemon CPU per GiB of the ${what}`, `${total.toFixed(2)} CPU-s (user ${median(xs.map((x) => per(x.user))).toFixed(2)}, sys ${median(xs.map((x) => per(x.sys))).toFixed(2)})`, `aim ≤ ${aim}`];
    };
    rows.push(cpuRow('cold read (default cache, disk tier on)', coldCpu, 1.0));
    rows.push(cpuRow('hot re-read (memory tier)', hotCpu, 0.5));
    rows.push(['trivial in-memory fuse-native FS, page cache dropped (kernel readahead 1 MiB, as assetfs sets it)', `${f(median(trivial))} MiB/s`, 'baseline']);
    rows.push(['the same trivial FS at the kernel\'s default readahead, 128 KiB (128 KiB requests)', `${f(median(trivial128))} MiB/s`, `${(median(trivial128) / median(trivial)).toFixed(2)} × with 1 MiB`]);
    rows.push(['dd bs=1M iflag=direct of a file on the cache dir\'s disk (what the disk tier reads from)', `${f(diskRead)} MiB/s`, 'context for the warm re-read']);
    const pc = dropped ? 'page cache dropped' : 'page cache NOT dropped';
    rows.push([`hot re-read through assetfs (memory tier, ${pc})`, `${f(median(hot))} MiB/s`, `${(median(hot) / median(trivial)).toFixed(2)} × trivial FS (aim ≥ 0.8)`]);
    rows.push([`warm re-read through assetfs (disk tier: restarted daemon, default cache, ${pc})`, `${f(median(warm))} MiB/s`, `${(median(warm) / median(trivial)).toFixed(2)} × trivial FS (aim ≥ 0.8); ${(median(warm) / diskRead).toFixed(2)} × the disk`]);
    for (const [name, speed] of [['rclone mount --vfs-cache-mode full', peers.rclone], ['s3fs', peers.s3fs]] as const) {
      rows.push(
        speed === undefined
          ? [`cold sequential read through ${name}`, 'skipped (tool not available)', '']
          : [`cold sequential read through ${name}`, `${f(speed)} MiB/s`, `assetfs is ${(median(cold) / speed).toFixed(2)} × this (aim ≥ 1.3)`],
      );
    }
    rows.push(...receive.rows, ...azurite.rows, ...kernelRows, ...extraRows, ...burstRows, ...uploadRows, ...journalRows, ...sharedRows, ...sharedMetaRows);
    const table = [
      `Benchmark, ${SIZE / GiB} GiB object in s3rver, median of ${RUNS} runs, ${new Date().toISOString()}`,
      '',
      '| measurement | throughput | ratio |',
      '|---|---|---|',
      ...rows.map((r) => `| ${r.join(' | ')} |`),
      '',
      `raw MiB/s — direct: ${direct.map(f).join(', ')}; cold: ${cold.map(f).join(', ')}; hot: ${hot.map(f).join(', ')}; warm: ${warm.map(f).join(', ')}; trivial: ${trivial.map(f).join(', ')}; trivial at 128 KiB: ${trivial128.map(f).join(', ')}`,
      '',
      receive.raw,
      '',
      azurite.raw,
    ].join('\n');
    process.stdout.write(`\n${table}\n`);
    await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
    await writeFile(join(ROOT, 'bench', 'results', 'latest.md'), `${table}\n`);
  } finally {
    await s3.stop();
  }
}

await main();
