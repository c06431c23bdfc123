/**
 * Kernel options, chosen by measurement (issue 5): each candidate set of libfuse options is mounted in
 * turn over the same object, and measured on what it is meant to change:
 *   cold sequential read (dd bs=1M), the re-read of the same open-and-read file (kernel page cache kept
 *   by auto_cache while size and mtime are unchanged), and 4 KiB O_DIRECT random reads from 8 jobs at
 *   once on the cached file (max_background bounds the requests the kernel keeps in flight).
 */
import { S3RVER_KEY } from '../src/emulators/storage-servers.js';
import { mountDaemon, sh } from '../test/helpers/mount.js';
import { coldStart } from './tools.js';

const MiB = 1024 * 1024;

async function seconds(cmd: string): Promise<number> {
  const t = process.hrtime.bigint();
  await sh(cmd, { timeoutMs: 600_000 });
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export const CANDIDATES: { name: string; fuse: { options?: string[]; readahead?: string } }[] = [
  { name: 'readahead 128 KiB (the kernel default: 128 KiB requests)', fuse: { readahead: '128KiB' } },
  { name: 'readahead 1 MiB (default), max_background 12 (libfuse default)', fuse: {} },
  { name: 'readahead 4 MiB', fuse: { readahead: '4MiB' } },
  { name: 'max_background=64', fuse: { options: ['max_background=64'] } },
];

export async function kernelOptionsBench(endpoint: string, serverDir: string, key: string, size: number, haveFio: boolean): Promise<string[][]> {
  const rows: string[][] = [];
  const source = { name: 's3', type: 's3', endpoint, bucket: 'bench', accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY };
  for (const c of CANDIDATES) {
    const d = await mountDaemon({ cache: { memory: `${Math.ceil((size * 1.25) / MiB)}MiB`, disk: 0 }, sources: [source], fuse: c.fuse }, { logLevel: 'warn' });
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
      rows.push([`kernel options: ${c.name}`, `cold ${cold.toFixed(0)} MiB/s, re-read ${again.toFixed(0)} MiB/s`, iops]);
    } finally {
      await d.stop();
    }
  }
  return rows;
}
