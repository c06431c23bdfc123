/**
 * Concurrency without decay (issue 5): one reader's 4 KiB random-read rate on a cached file through the
 * mount, before and after a burst of many concurrent readers. With fuse-native 2.2.6 as published, every
 * libfuse worker thread leaks a uv_async handle, and libfuse churns threads above 10 concurrent
 * operations, so a burst used to leave the daemon slower for good. Readers run in child processes (the
 * daemon serves FUSE on its main thread: nothing here may touch the mount synchronously in-process).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { s3rverSource } from '@assetfs/lab/emulators/storage-servers.js';
import { mountDaemon, sh } from '../test/helpers/mount.js';

/** A child process doing random 4 KiB reads on `file` for `secs`; resolves with its reads per second. */
export function randomReader(file: string, size: number, secs: number): Promise<number> {
  const code = `
    const fs = require('node:fs/promises');
    (async () => {
      const fh = await fs.open(${JSON.stringify(file)}, require('node:fs').constants.O_RDONLY | require('node:fs').constants.O_DIRECT); // O_DIRECT: every read reaches the daemon, not the page cache
      const buf = Buffer.alloc(4096);
      const blocks = Math.floor(${size} / 4096);
      const end = Date.now() + ${secs * 1000};
      let n = 0;
      while (Date.now() < end) {
        await fh.read(buf, 0, 4096, Math.floor(Math.random() * blocks) * 4096);
        n++;
      }
      await fh.close();
      process.stdout.write(String(n / ${secs}));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.once('exit', (status) => (status === 0 ? resolve(Number(out)) : reject(new Error(`reader exited ${status}`))));
  });
}

export async function burstBench(endpoint: string, key: string, size: number, opts: { readers: number; burstSecs: number; probeSecs: number; probes: number }, median: (xs: number[]) => number): Promise<string[][]> {
  const d = await mountDaemon(
    { cache: { memory: `${Math.ceil((size * 1.5) / 1024 / 1024)}MiB`, disk: 0 }, sources: [s3rverSource(endpoint, 'bench')] },
    { logLevel: 'warn' },
  );
  try {
    const file = join(d.mountpoint, 's3', key);
    await sh(`cat ${file} > /dev/null`, { timeoutMs: 600_000 }); // cached in the daemon from here on
    await sh(`echo 1 > /proc/sys/vm/drop_caches || true`);
    // Several short probes on each side: on this VM one reader's rate moves by 2–4 × from one 10 s
    // window to the next (thread wake-ups across vCPUs), with or without a burst in between.
    const probes = async () => {
      const rates: number[] = [];
      for (let i = 0; i < opts.probes; i++) rates.push(await randomReader(file, size, opts.probeSecs));
      return rates;
    };
    const before = await probes();
    await Promise.all(Array.from({ length: opts.readers }, () => randomReader(file, size, opts.burstSecs)));
    const after = await probes();
    const threads = Number((await sh(`ls /proc/${d.child.pid}/task | wc -l`)).trim());
    const show = (xs: number[]) => `${median(xs).toFixed(0)} reads/s (probes: ${xs.map((x) => x.toFixed(0)).join(', ')})`;
    const ratio = median(after) / median(before);
    const verdict = median(after) >= 0.9 * median(before) || median(after) >= Math.min(...before) ? 'within noise' : 'SLOWER';
    return [
      [`one reader, 4 KiB random reads on a cached file, before a burst (median of ${opts.probes} × ${opts.probeSecs} s)`, show(before), 'baseline'],
      [`the same after ${opts.readers} concurrent readers for ${opts.burstSecs} s`, show(after), `${ratio.toFixed(2)} × before, ${verdict} (aim: equal within noise); daemon threads after: ${threads}`],
    ];
  } finally {
    await d.stop();
  }
}
