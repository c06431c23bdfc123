/**
 * The shared tier's rows (issue 23), on farms of real daemons on this machine (test/helpers/farm.ts:
 * one Redis on a unix socket, one s3rver behind the counting proxy):
 *   - 4 hosts cold-reading the same object at once, without and with the shared tier: bytes the origin
 *     served ÷ object size (4.0 without; aim ≤ 1.1 with), and each host's throughput against one host
 *     reading alone;
 *   - a host reading an object another host already fetched (a shared-tier hit: its own tiers and page
 *     cache have never held it) against the cold read from the origin that filled the tier.
 * All hosts share this machine's cores, so per-host throughput here is a lower bound of a real farm's.
 * Run alone: `node dist/bench/shared.js` (BENCH_BYTES sets the object size).
 */
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { startFarm, type Farm } from '../test/helpers/farm.js';
import { sh } from '../test/helpers/mount.js';
import type { SharedTierStatus } from '../src/farm/index.js';

const MiB = 1024 * 1024;
const f = (x: number) => x.toFixed(0);

/** MiB/s of one cold sequential read of `key` on host `i`. */
async function readMiBps(farm: Farm, i: number, key: string, size: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  await sh(`dd if=${farm.path(i, key)} of=/dev/null bs=1M status=none`, { timeoutMs: 1_800_000 });
  return size / MiB / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function withFarm<T>(shared: boolean, data: Buffer, keys: string[], use: (farm: Farm) => Promise<T>): Promise<T> {
  const farm = await startFarm({
    hosts: 4,
    shared,
    files: keys.map((path) => ({ path, data })),
    config: { cache: { memory: '128MiB', disk: 0 }, metadataTtl: '60s' },
    sharedConfig: { timeout: '3s', lockTtl: '30s' },
    redis: { maxmemory: `${Math.ceil((2 * data.length) / MiB) + 64}mb` },
    logLevel: 'warn',
  });
  try {
    return await use(farm);
  } finally {
    await farm.stop();
  }
}

export async function sharedBench(size: number): Promise<string[][]> {
  const data = deterministicBytes('bench-shared', size);
  const rows: string[][] = [];
  const label = `${size / MiB} MiB`;
  const together = async (farm: Farm) => {
    farm.clearOrigin();
    const rates = await Promise.all([0, 1, 2, 3].map((i) => readMiBps(farm, i, 'same.bin', size)));
    return { rates, ratio: farm.originBytes('same.bin', size) / size };
  };
  const { alone, without } = await withFarm(false, data, ['alone.bin', 'same.bin'], async (farm) => ({ alone: await readMiBps(farm, 0, 'alone.bin', size), without: await together(farm) }));
  const { withShared, cold, hit } = await withFarm(true, data, ['same.bin', 'hit.bin'], async (farm) => {
    const withShared = await together(farm);
    const cold = await readMiBps(farm, 0, 'hit.bin', size);
    // The other host reads what host 1 shared, once host 1's background writes to Redis are done.
    for (let t = 0; t < 600; t++) {
      const s = (await farm.hosts[0]!.poll<{ shared?: SharedTierStatus }>()).shared;
      if (s?.blocks.queuedBytes === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    farm.clearOrigin();
    const hit = await readMiBps(farm, 1, 'hit.bin', size);
    if (farm.originBytes('hit.bin', size) > 0) process.stdout.write(`bench: the shared-hit read fetched ${farm.originBytes('hit.bin', size)} bytes from the origin\n`);
    return { withShared, cold, hit };
  });
  const min = (xs: number[]) => Math.min(...xs);
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  rows.push(['one host alone, cold read from the origin (farm bench baseline)', `${f(alone)} MiB/s`, `${label}, baseline`]);
  rows.push(['4 hosts cold-reading one object at once, no shared tier: origin bytes ÷ size', without.ratio.toFixed(2), `per host ${f(avg(without.rates))} MiB/s (slowest ${f(min(without.rates))}) = ${(avg(without.rates) / alone).toFixed(2)} × alone`]);
  rows.push(['4 hosts cold-reading one object at once, shared tier (Redis): origin bytes ÷ size', withShared.ratio.toFixed(2), `aim ≤ 1.1; per host ${f(avg(withShared.rates))} MiB/s (slowest ${f(min(withShared.rates))}) = ${(avg(withShared.rates) / alone).toFixed(2)} × alone`]);
  rows.push(['shared-tier hit: a host reads an object another host fetched (own tiers and page cache never held it)', `${f(hit)} MiB/s`, `${(hit / cold).toFixed(2)} × the cold origin read that filled the tier (${f(cold)} MiB/s)`]);
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const size = Number(process.env.BENCH_BYTES ?? 1024 ** 3);
  const rows = await sharedBench(size);
  for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
}
