/**
 * What receiving a cold object costs the reading process, per transport: CPU-seconds (user and system
 * apart) per GiB of reading a whole object through Transport.readRangeInto in readahead-sized parts
 * (16 MiB, RECEIVE_INFLIGHT at once, as the daemon's default window keeps them) into 1 MiB block
 * buffers recycled as the memory tier recycles them. Each run is a fresh child process started with
 * the daemon's Node flags, timed with process.cpuUsage() around the reads alone; the transports take
 * turns, so drift on a shared machine falls on both. CPU-seconds, not MiB/s, are the figure: they do
 * not depend on what else the machine runs.
 *
 * `npm run bench` prints these rows for s3rver (bench/run.ts) and Azurite (bench/azurite.ts);
 * `node dist/bench/receive.js` runs this part alone on both servers.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Expectation, SignedLocator, Transport } from '../src/core/types.js';
import { HttpTransport } from '../src/transports/http.js';
import { FastHttpTransport } from '../src/transports/fast-http.js';
import { NODE_FLAGS, sh } from '../test/helpers/mount.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, s3rverSource, startAzurite, startS3rver } from '@assetfs/lab/emulators/storage-servers.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { seedAzure, seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { ConfigSchema } from '../src/config/schema.js';
import { createProvider } from '../src/providers/registry.js';
import { silentLogger } from '../src/util/logger.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const BLOCK = MiB;
const PART = 16 * MiB;
const INFLIGHT = Number(process.env.RECEIVE_INFLIGHT ?? 4);

export interface ReceiveTarget {
  /** The server, as the rows name it. */
  readonly name: string;
  readonly loc: SignedLocator;
  readonly expect: Expectation;
  /** The server's data dir: its files are read back in before each run, so the server serves from memory. */
  readonly serverDir: string;
}

interface Sample {
  user: number;
  sys: number;
  secs: number;
  bytes: number;
  stats?: unknown;
}

const TRANSPORTS = {
  undici: { label: 'HttpTransport (undici)', make: (): Transport => new HttpTransport() },
  fast: { label: 'FastHttpTransport (net + onread into the blocks)', make: (): Transport => new FastHttpTransport() },
} as const;
type Kind = keyof typeof TRANSPORTS;

/** In the child: read the whole object, print one Sample as JSON. */
async function child(kind: Kind, loc: SignedLocator, expect: Expectation): Promise<void> {
  const transport = TRANSPORTS[kind].make();
  const ring = Array.from({ length: INFLIGHT * (PART / BLOCK) }, () => Buffer.alloc(BLOCK));
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let next = 0;
  const worker = async (lane: number) => {
    const blocks = ring.slice(lane * (PART / BLOCK), (lane + 1) * (PART / BLOCK));
    for (;;) {
      const start = next;
      if (start >= expect.size) return;
      next = Math.min(expect.size, start + PART);
      const into: Buffer[] = [];
      for (let at = start, i = 0; at < next; at += BLOCK, i++) into.push(blocks[i]!.subarray(0, Math.min(BLOCK, next - at)));
      await transport.readRangeInto(loc, { start, end: next }, expect, into);
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, (_, lane) => worker(lane)));
  const cpu = process.cpuUsage(cpu0);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const stats = transport instanceof FastHttpTransport ? transport.stats() : undefined;
  await transport.close();
  const sample: Sample = { user: cpu.user / 1e6, sys: cpu.system / 1e6, secs, bytes: expect.size, stats };
  process.stdout.write(`${JSON.stringify(sample)}\n`);
}

async function runChild(kind: Kind, target: ReceiveTarget): Promise<Sample> {
  const args = [...NODE_FLAGS, fileURLToPath(import.meta.url), '--child', kind, JSON.stringify({ loc: target.loc, expect: target.expect })];
  return new Promise<Sample>((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`receive bench child (${kind}) exited ${code}`);
        resolve(JSON.parse(out.trim().split('\n').pop()!) as Sample);
      } catch (e) {
        reject(e);
      }
    });
  });
}

const perGiB = (s: Sample, x: number) => x / (s.bytes / GiB);
const fmt = (x: number) => x.toFixed(2);

/** Rows (and the raw figures) for each target: the undici baseline, then the fast path against it. */
export async function receiveRows(targets: readonly ReceiveTarget[], runs: number, median: (xs: number[]) => number): Promise<{ rows: string[][]; raw: string }> {
  const rows: string[][] = [];
  const raw: string[] = [];
  for (const target of targets) {
    const samples: Record<Kind, Sample[]> = { undici: [], fast: [] };
    for (let i = 0; i < runs; i++) {
      for (const kind of (i % 2 === 0 ? ['undici', 'fast'] : ['fast', 'undici']) as Kind[]) {
        await sh(`find ${JSON.stringify(target.serverDir)} -type f -exec cat {} + > /dev/null`, { timeoutMs: 600_000 });
        samples[kind].push(await runChild(kind, target));
      }
    }
    const cpu = (k: Kind) => median(samples[k].map((s) => perGiB(s, s.user + s.sys)));
    for (const kind of ['undici', 'fast'] as Kind[]) {
      const s = samples[kind];
      const user = median(s.map((x) => perGiB(x, x.user)));
      const sys = median(s.map((x) => perGiB(x, x.sys)));
      const mibps = median(s.map((x) => x.bytes / MiB / x.secs));
      rows.push([
        `${target.name}: receiving ${fmt(target.expect.size / GiB)} GiB through ${TRANSPORTS[kind].label}, ${PART / MiB} MiB parts × ${INFLIGHT} into 1 MiB blocks`,
        `${fmt(cpu(kind))} CPU-s/GiB (user ${fmt(user)}, sys ${fmt(sys)}); ${mibps.toFixed(0)} MiB/s`,
        kind === 'undici' ? 'baseline' : `${fmt(cpu(kind) / cpu('undici'))} × undici's CPU per GiB`,
      ]);
      raw.push(`${target.name} ${kind} CPU-s/GiB (user+sys): ${s.map((x) => `${fmt(perGiB(x, x.user))}+${fmt(perGiB(x, x.sys))}`).join(', ')}`);
    }
  }
  return { rows, raw: raw.join('\n') };
}

/** `node dist/bench/receive.js`: this part alone, on a fresh s3rver and Azurite. */
async function standalone(): Promise<void> {
  const size = Number(process.env.BENCH_BYTES ?? GiB);
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const data = deterministicBytes('bench', size);
  const s3 = await startS3rver({ buckets: ['bench'] });
  const az = await startAzurite();
  try {
    await seedS3(s3.url, 'bench', [{ path: 'big.bin', data }], 1);
    await seedAzure(az, 'bench', [{ path: 'big.bin', data }], 1);
    const sources = ConfigSchema.parse({
      sources: [s3rverSource(s3.url, 'bench', { urlTtl: '1h' }), { name: 'blob', type: 'azure-blob', accountUrl: az.url, container: 'bench', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, urlTtl: '1h' }],
    }).sources;
    const targets: ReceiveTarget[] = [];
    for (const [cfg, name, dir] of [[sources[0]!, 's3rver', s3.dir], [sources[1]!, 'Azurite', az.dir]] as const) {
      const provider = await createProvider(cfg, { log: silentLogger });
      const st = await provider.stat('big.bin');
      const expect = { version: st.version, size: st.size };
      targets.push({ name, loc: await provider.locate({ source: cfg.name, ref: st.ref, ...expect }), expect, serverDir: dir });
      await provider.close();
    }
    await sh('sync', { timeoutMs: 600_000 }); // writeback of the seeded objects, before anything is timed
    const { rows, raw } = await receiveRows(targets, runs, median);
    process.stdout.write(`\n| measurement | CPU per GiB | ratio |\n|---|---|---|\n${rows.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n\n${raw}\n`);
  } finally {
    await Promise.all([s3.stop(), az.stop()]);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--child') {
    const { loc, expect } = JSON.parse(process.argv[4]!) as { loc: SignedLocator; expect: Expectation };
    await child(process.argv[3] as Kind, { ...loc, expiresAt: Infinity }, expect);
  } else {
    await standalone();
  }
}
