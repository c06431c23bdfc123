/**
 * The daemon's CPU per GiB (and per 4 KiB read) through the mount, user and system apart, by thread
 * group (the JS main thread, libfuse's workers, libuv's pool, V8's helpers), for:
 *   cold   — a cold sequential read of the object, default cache (disk tier on);
 *   hot    — a re-read from the memory tier (page cache dropped);
 *   rand   — 4 KiB O_DIRECT random reads of the cached file (fio, one job, a fixed count);
 *   write  — dd bs=1M of `BENCH_BYTES` into the mount (staged for upload);
 *   trivial-read, trivial-write, trivial-rand — the same through the trivial fuse-native FS.
 * CPU-seconds come from /proc/<pid>/task/<tid>/stat around the timed command, so they do not depend
 * on what else the machine runs (MiB/s do). Run alone:
 *   node dist/bench/fuse-cpu.js [scenario…]   (S3 object: FUSE_CPU_S3DIR keeps a seeded s3rver dir)
 * It runs each scenario BENCH_RUNS times (default 3) and prints the medians beside the issue's aims;
 * scenario `ls` is the cold `ls -l` of 10,000 entries of bench/ls-paging.ts.
 * FUSE_CPU_PERF=<file> records `perf record -g` of the daemon during each timed step;
 * FUSE_CPU_NODE_ARGS adds Node flags to the daemon (e.g. `--cpu-prof --cpu-prof-dir=/tmp/p`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { s3rverSource, startS3rver } from '@assetfs/lab/emulators/storage-servers.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { mountDaemon, sh } from '../test/helpers/mount.js';
import { coldStart, dropPageCache, trivialFs } from './tools.js';
import { lsPaging, type LsRun } from './ls-paging.js';

const GiB = 1024 ** 3;
const MiB = 1024 * 1024;

export interface ThreadCpu {
  /** CPU-seconds by thread group: main (the JS thread), fuse (libfuse workers), pool (libuv), v8 (helpers). */
  readonly groups: Record<string, { user: number; sys: number }>;
  readonly user: number;
  readonly sys: number;
  /** Minor page faults of the process meanwhile (first touches of fresh memory among them). */
  readonly minorFaults: number;
}

async function threadTimes(pid: number): Promise<Map<string, { group: string; user: number; sys: number }>> {
  const ticks = Number(await sh('getconf CLK_TCK'));
  const out = new Map<string, { group: string; user: number; sys: number }>();
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Threads inherit their creator's name: libfuse's workers are the "node" threads other than the main one.
    const group = tid === String(pid) ? 'main' : comm === 'node' ? 'fuse' : comm.startsWith('libuv') ? 'pool' : 'v8';
    out.set(tid, { group, user: Number(f[11]) / ticks, sys: Number(f[12]) / ticks });
  }
  return out;
}

/** `run()`'s result and the CPU process `pid` used meanwhile, by thread group (threads that exited meanwhile are lost: none do here but idle libfuse workers). */
export async function withThreadCpu<T>(pid: number, run: () => Promise<T>): Promise<[T, ThreadCpu]> {
  const before = await threadTimes(pid);
  const procBefore = await readFile(`/proc/${pid}/stat`, 'utf8');
  const result = await run();
  const procAfter = await readFile(`/proc/${pid}/stat`, 'utf8');
  const after = await threadTimes(pid);
  const groups: Record<string, { user: number; sys: number }> = {};
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { user: 0, sys: 0 };
    const g = (groups[a.group] ??= { user: 0, sys: 0 });
    g.user += a.user - b.user;
    g.sys += a.sys - b.sys;
  }
  // The process totals (exited threads included): fields 14 and 15.
  const ticks = Number(await sh('getconf CLK_TCK'));
  const tot = (s: string) => s.slice(s.lastIndexOf(')') + 2).split(' ');
  const user = (Number(tot(procAfter)[11]) - Number(tot(procBefore)[11])) / ticks;
  const sys = (Number(tot(procAfter)[12]) - Number(tot(procBefore)[12])) / ticks;
  const minorFaults = Number(tot(procAfter)[7]) - Number(tot(procBefore)[7]);
  return [result, { groups, user, sys, minorFaults }];
}

async function perfDuring<T>(pid: number, out: string | undefined, run: () => Promise<T>): Promise<T> {
  if (!out) return run();
  const p = spawn('perf', ['record', '-q', '-g', '-F', '999', '-p', String(pid), '-o', out], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  try {
    return await run();
  } finally {
    p.kill('SIGINT');
    await new Promise((r) => p.once('exit', r));
  }
}

async function seconds(cmd: string): Promise<number> {
  const t = process.hrtime.bigint();
  await sh(cmd, { timeoutMs: 1_200_000 });
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export interface CpuRun {
  readonly scenario: string;
  /** What the CPU is per: GiB moved, or 10,000 4 KiB reads. */
  readonly per: number;
  readonly unit: string;
  readonly cpu: ThreadCpu;
  readonly secs: number;
}

const FIO_READS = 20_000;
const fio = (file: string) =>
  `fio --name=rand --filename=${JSON.stringify(file)} --readonly --rw=randread --bs=4k --ioengine=psync --direct=1 --number_ios=${FIO_READS} --size=$(stat -c %s ${JSON.stringify(file)}) --randrepeat=1 --output-format=terse >/dev/null`;

/** One scenario through an assetfs daemon on the s3rver object `key` of `size` bytes. */
export async function assetfsCpu(scenario: string, endpoint: string, serverDir: string, key: string, size: number, perfOut?: string): Promise<CpuRun> {
  const src = s3rverSource(endpoint, 'bench');
  const cacheDir = await mkdtemp(join(tmpdir(), 'assetfs-cpu-cache-'));
  const whole = { memory: `${Math.ceil((size * 1.25) / MiB)}MiB` };
  const cache = scenario === 'cold' ? {} : scenario === 'write' ? { disk: 0 } : whole;
  const d = await mountDaemon({ cacheDir, cache, sources: [src], ...(scenario === 'write' ? { uploads: { writeBack: '600s' } } : {}) }, { logLevel: 'warn', nodeArgs: process.env.FUSE_CPU_NODE_ARGS?.split(' ').filter(Boolean) ?? [] });
  const pid = d.child.pid!;
  const file = join(d.mountpoint, 's3', key);
  try {
    let cmd: string;
    if (scenario === 'cold') {
      await coldStart(serverDir);
      cmd = `dd if=${file} of=/dev/null bs=1M status=none`;
    } else if (scenario === 'write') {
      cmd = `dd if=/dev/zero of=${d.mountpoint}/s3/dd.bin bs=1M count=${size / MiB} status=none`;
    } else {
      // Into the memory tier: read twice (a block read once by a stream is let go early).
      for (let i = 0; i < 2; i++) {
        await sh(`dd if=${file} of=/dev/null bs=1M status=none`, { timeoutMs: 600_000 });
        await dropPageCache();
      }
      cmd = scenario === 'hot' ? `dd if=${file} of=/dev/null bs=1M status=none` : fio(file);
    }
    const [secs, cpu] = await withThreadCpu(pid, () => perfDuring(pid, perfOut, () => seconds(cmd)));
    return { scenario, per: scenario === 'rand' ? FIO_READS / 10_000 : size / GiB, unit: scenario === 'rand' ? '10k reads' : 'GiB', cpu, secs };
  } finally {
    await d.stop();
    await rm(cacheDir, { recursive: true, force: true });
  }
}

/** The same through the trivial fuse-native FS (bench/trivial-fs.ts). */
export async function trivialCpu(scenario: string, size: number): Promise<CpuRun> {
  const t = await trivialFs(size);
  try {
    const pid = t.pid;
    let cmd: string;
    if (scenario === 'trivial-write') cmd = `dd if=/dev/zero of=${t.file} bs=1M count=${size / MiB} conv=notrunc status=none`;
    else {
      await dropPageCache();
      cmd = scenario === 'trivial-read' ? `dd if=${t.file} of=/dev/null bs=1M status=none` : fio(t.file);
    }
    const [secs, cpu] = await withThreadCpu(pid, () => seconds(cmd));
    return { scenario, per: scenario === 'trivial-rand' ? FIO_READS / 10_000 : size / GiB, unit: scenario === 'trivial-rand' ? '10k reads' : 'GiB', cpu, secs };
  } finally {
    await t.stop();
  }
}

export function describe(r: CpuRun): string {
  const f = (x: number) => (x / r.per).toFixed(2);
  const groups = Object.entries(r.cpu.groups)
    .filter(([, g]) => g.user + g.sys >= 0.005 * r.per)
    .map(([k, g]) => `${k} ${f(g.user)}+${f(g.sys)}`)
    .join(', ');
  return `${r.scenario}: ${f(r.cpu.user + r.cpu.sys)} CPU-s per ${r.unit} (user ${f(r.cpu.user)}, sys ${f(r.cpu.sys)}; ${groups}; ${Math.round(r.cpu.minorFaults / r.per)} minor faults per ${r.unit}) in ${r.secs.toFixed(2)} s`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The medians of `runs` of one scenario: CPU per unit (total, user, sys) and seconds. */
export interface CpuMedian {
  readonly scenario: string;
  readonly unit: string;
  readonly total: number;
  readonly user: number;
  readonly sys: number;
  readonly secs: number;
}

export function medianOf(runs: CpuRun[]): CpuMedian {
  const per = (f: (r: CpuRun) => number) => median(runs.map((r) => f(r) / r.per));
  return { scenario: runs[0]!.scenario, unit: runs[0]!.unit, total: per((r) => r.cpu.user + r.cpu.sys), user: per((r) => r.cpu.user), sys: per((r) => r.cpu.sys), secs: median(runs.map((r) => r.secs)) };
}

const cpuText = (m: CpuMedian) => `${m.total.toFixed(2)} CPU-s per ${m.unit} (user ${m.user.toFixed(2)}, sys ${m.sys.toFixed(2)})`;

/** The issue's rows: each figure beside its aim (issue 24). `trivial` holds the trivial FS's medians by scenario. */
export function cpuRows(ours: Map<string, CpuMedian>, trivial: Map<string, CpuMedian>): string[][] {
  const rows: string[][] = [];
  const cold = ours.get('cold');
  if (cold) rows.push(['daemon CPU, cold sequential read (disk tier on)', cpuText(cold), 'aim ≤ 1.0 CPU-s per GiB']);
  const hot = ours.get('hot');
  if (hot) rows.push(['daemon CPU, hot re-read (memory tier)', cpuText(hot), 'aim ≤ 0.5 CPU-s per GiB']);
  const vsTrivial = (what: string, ours?: CpuMedian, base?: CpuMedian, aim = '') => {
    if (!ours) return;
    const speed = base ? `; speed ${(base.secs / ours.secs).toFixed(2)} × the trivial FS (its CPU ${base.total.toFixed(2)})` : '';
    rows.push([what, `${cpuText(ours)}${speed}`, aim]);
  };
  vsTrivial('daemon CPU, cached 4 KiB random reads (O_DIRECT, one job)', ours.get('rand'), trivial.get('trivial-rand'), 'aim: speed ≥ 0.9 × the trivial FS');
  vsTrivial('daemon CPU, dd bs=1M into the mount', ours.get('write'), trivial.get('trivial-write'), 'aim: speed ≥ 0.6 × the FUSE write ceiling (the trivial FS)');
  return rows;
}

async function main(): Promise<void> {
  const size = Number(process.env.BENCH_BYTES ?? GiB);
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const all = ['cold', 'hot', 'rand', 'write', 'trivial-rand', 'trivial-write', 'ls'];
  const scenarios = process.argv.slice(2).length ? process.argv.slice(2) : all;
  const dir = process.env.FUSE_CPU_S3DIR ?? (await mkdtemp(join(tmpdir(), 'assetfs-cpu-s3-')));
  await mkdir(dir, { recursive: true });
  const seeded = existsSync(join(dir, 'bench'));
  const s3 = await startS3rver({ buckets: ['bench'], dir });
  const ours = new Map<string, CpuMedian>();
  const trivial = new Map<string, CpuMedian>();
  const lsRows: string[][] = [];
  try {
    if (!seeded) {
      await seedS3(s3.url, 'bench', [{ path: 'big.bin', data: deterministicBytes('bench', size) }], 1);
      await sh('sync', { timeoutMs: 600_000 });
    }
    for (const s of scenarios) {
      if (s === 'ls') {
        const ls: LsRun[] = [];
        for (let i = 0; i < runs; i++) ls.push(await lsPaging());
        const ratio = median(ls.map((r) => r.mountSecs / r.directSecs));
        process.stdout.write(`ls: ${ls.map((r) => `mount ${r.mountSecs.toFixed(2)} s, direct ${r.directSecs.toFixed(2)} s (${r.pages} pages)`).join('; ')}\n`);
        lsRows.push(['cold ls -l of 10,000 entries, Nomad (search pages, 50 ms each)', `${ratio.toFixed(2)} × a direct sequential listing (median ${median(ls.map((r) => r.mountSecs)).toFixed(2)} s against ${median(ls.map((r) => r.directSecs)).toFixed(2)} s)`, 'aim ≤ 0.6 ×']);
        continue;
      }
      const got: CpuRun[] = [];
      for (let i = 0; i < runs; i++) {
        const perf = process.env.FUSE_CPU_PERF ? `${process.env.FUSE_CPU_PERF}.${s}.${i}` : undefined;
        const r = s.startsWith('trivial') ? await trivialCpu(s, size) : await assetfsCpu(s, s3.url, dir, 'big.bin', size, perf);
        process.stdout.write(`${describe(r)}\n`);
        got.push(r);
      }
      (s.startsWith('trivial') ? trivial : ours).set(s, medianOf(got));
    }
  } finally {
    await s3.stop();
  }
  const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  process.stdout.write(`\nmedians of ${runs}, ${size / MiB} MiB, load average at the end ${load}\n`);
  for (const r of [...cpuRows(ours, trivial), ...lsRows]) process.stdout.write(`| ${r.join(' | ')} |\n`);
}

if (process.argv[1]?.endsWith('fuse-cpu.js')) await main();
