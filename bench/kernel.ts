/**
 * Kernel options, chosen by measurement (issue 5): each candidate set of libfuse options is mounted in
 * turn over the same object, and measured on what it is meant to change:
 *   cold sequential read (dd bs=1M), the re-read of the same open-and-read file (kernel page cache kept
 *   while the object version is unchanged), 4 KiB O_DIRECT random reads from 8 jobs at once on the
 *   cached file, and 64 readers at once of their own cold 1 MiB file behind 100 ms per GET (the
 *   kernel keeps at most max_background of their reads in flight).
 */
import { s3rverSource } from '@assetfs/lab/emulators/storage-servers.js';
import { startFaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { seedS3 } from '@assetfs/lab/demo/seed-storage.js';
import { mountDaemon, sh } from '../test/helpers/mount.js';
import { coldStart } from './tools.js';

const MiB = 1024 * 1024;
const READERS = 64;
const LATENCY_MS = 100;

async function seconds(cmd: string): Promise<number> {
  const t = process.hrtime.bigint();
  await sh(cmd, { timeoutMs: 600_000 });
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export const CANDIDATES: { name: string; fuse: { options?: string[]; readahead?: string; maxBackground?: number } }[] = [
  { name: 'readahead 128 KiB (the kernel default: 128 KiB requests)', fuse: { readahead: '128KiB' } },
  { name: 'readahead 1 MiB, max_background 64 (the defaults)', fuse: {} },
  { name: 'readahead 4 MiB', fuse: { readahead: '4MiB' } },
  { name: "max_background 12 (libfuse's default)", fuse: { maxBackground: 12 } },
];

export async function kernelOptionsBench(endpoint: string, serverDir: string, key: string, size: number, haveFio: boolean): Promise<string[][]> {
  const rows: string[][] = [];
  const proxy = await startFaultProxy(endpoint);
  // The big object straight from s3rver; the many small ones through the proxy that adds the latency.
  const direct = s3rverSource(endpoint, 'bench');
  const slow = s3rverSource(proxy.url, 'bench', { name: 'slow' });
  try {
    const many = (c: number, i: number) => `kernel-many/c${c}/f${i}.bin`;
    await seedS3(endpoint, 'bench', CANDIDATES.flatMap((_, c) => Array.from({ length: READERS }, (_, i) => ({ path: many(c, i), data: deterministicBytes(many(c, i), MiB) }))), 16);
    for (const [ci, c] of CANDIDATES.entries()) {
      const d = await mountDaemon({ metadataTtl: '10m', cache: { memory: `${Math.ceil((size * 1.25) / MiB)}MiB`, disk: 0 }, sources: [direct, slow], fuse: c.fuse }, { logLevel: 'warn' });
      try {
        const f = `${d.mountpoint}/s3/${key}`;
        await coldStart(serverDir);
        const cold = size / MiB / (await seconds(`dd if=${f} of=/dev/null bs=1M status=none`));
        const again = size / MiB / (await seconds(`dd if=${f} of=/dev/null bs=1M status=none`));
        let iops = 'fio not available';
        if (haveFio) {
          const out = await sh(`fio --name=par --filename=${f} --readonly --rw=randread --bs=4k --ioengine=psync --direct=1 --numjobs=8 --group_reporting --runtime=8 --time_based --output-format=json`, { timeoutMs: 120_000 });
          iops = `${(JSON.parse(out) as { jobs: { read: { iops: number } }[] }).jobs[0]!.read.iops.toFixed(0)} IOPS (8 jobs)`;
        }
        const dir = `${d.mountpoint}/slow/kernel-many/c${ci}`;
        await sh(`ls ${dir} > /dev/null`); // listed first: only the GETs of the bytes are slowed
        proxy.slowNext(READERS, LATENCY_MS, 'GET'); // one GET per 1 MiB file
        const manySecs = await seconds(`for i in $(seq 0 ${READERS - 1}); do cat ${dir}/f$i.bin > /dev/null & done; wait`);
        rows.push([`kernel options: ${c.name}`, `cold ${cold.toFixed(0)} MiB/s, re-read ${again.toFixed(0)} MiB/s`, `${iops}; ${READERS} readers of cold 1 MiB files at ${LATENCY_MS} ms per GET: ${manySecs.toFixed(2)} s`]);
      } finally {
        await d.stop();
      }
    }
  } finally {
    await proxy.close();
  }
  return rows;
}
