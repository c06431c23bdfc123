/**
 * Issue 5's cold-read comparison on Azurite, measured as on s3rver and on the same bytes: curl of the
 * blob's SAS URL, assetfs with its default cache, and rclone mount --vfs-cache-mode full. Debian's
 * rclone 1.60 reaches Azurite only through an account SAS in `sas_url` (docs/testing.md, "Azurite"). s3fs has no
 * Azure backend and Debian packages no blobfuse2, so those have no row.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccountSASPermissions, AccountSASResourceTypes, AccountSASServices, StorageSharedKeyCredential, generateAccountSASQueryParameters } from '@azure/storage-blob';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite } from '@assetfs/lab/emulators/storage-servers.js';
import { seedAzure } from '@assetfs/lab/demo/seed-storage.js';
import { AzureBlobProvider } from '../src/providers/azure-blob/index.js';
import { ConfigSchema, type SourceConfigOf } from '../src/config/schema.js';
import { silentLogger } from '../src/util/logger.js';
import { mountDaemon, sh } from '../test/helpers/mount.js';
import { coldStart, curlMiBps, ddMiBps, peerColdRead } from './tools.js';
import { receiveRows } from './receive.js';

type Median = (xs: number[]) => number;

export async function azuriteColdReads(data: Buffer, runs: number, median: Median, tools: Set<string>): Promise<{ rows: string[][]; raw: string }> {
  const az = await startAzurite();
  const work = await mkdtemp(join(tmpdir(), 'assetfs-bench-az-'));
  try {
    await seedAzure(az, 'bench', [{ path: 'big.bin', data }], 1);
    await sh('sync', { timeoutMs: 600_000 });
    await new Promise((r) => setTimeout(r, 3_000)); // writeback of the seeded GiB, as on s3rver
    const source = { name: 'blob', type: 'azure-blob', accountUrl: az.url, container: 'bench', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY } as const;
    const provider = new AzureBlobProvider(ConfigSchema.parse({ sources: [source] }).sources[0] as SourceConfigOf<'azure-blob'>, { log: silentLogger });
    const st = await provider.stat('big.bin');
    const loc = await provider.locate({ source: 'blob', ref: st.ref, version: st.version, size: st.size });
    await provider.close();
    const receive = await receiveRows([{ name: 'Azurite', loc, expect: { version: st.version, size: st.size }, serverDir: az.dir }], runs, median);

    const direct: number[] = [];
    const cold: number[] = [];
    const rclone: number[] = [];
    for (let i = 0; i < runs; i++) {
      await coldStart(az.dir);
      direct.push(await curlMiBps(loc.url, data.length));
      const d = await mountDaemon({ cacheDir: join(work, `cache-${i}`), sources: [source] }, { logLevel: 'warn' });
      try {
        await coldStart(az.dir);
        cold.push(await ddMiBps(join(d.mountpoint, 'blob', 'big.bin'), data.length));
      } finally {
        await d.stop();
      }
      if (!tools.has('rclone')) continue;
      const sas = generateAccountSASQueryParameters(
        {
          services: AccountSASServices.parse('b').toString(),
          resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
          permissions: AccountSASPermissions.parse('rl'),
          expiresOn: new Date(Date.now() + 3_600_000),
        },
        new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
      ).toString();
      const mnt = join(work, `rclone-${i}`);
      const env = { RCLONE_CONFIG_AZ_TYPE: 'azureblob', RCLONE_CONFIG_AZ_SAS_URL: `${az.url}?${sas}` };
      rclone.push(await peerColdRead(az.dir, ['rclone', 'mount', 'az:bench', mnt, '--vfs-cache-mode', 'full', '--cache-dir', join(work, `rclone-cache-${i}`), '--read-only'], mnt, 'big.bin', data.length, env));
    }
    const f = (x: number) => x.toFixed(0);
    const rows: string[][] = [
      ...receive.rows,
      ['Azurite: direct download of the SAS URL (curl)', `${f(median(direct))} MiB/s`, 'baseline'],
      ['Azurite: cold sequential read through assetfs (default cache)', `${f(median(cold))} MiB/s`, `${(median(cold) / median(direct)).toFixed(2)} × direct (aim ≥ 0.9)`],
      rclone.length
        ? ['Azurite: cold sequential read through rclone mount --vfs-cache-mode full', `${f(median(rclone))} MiB/s`, `assetfs is ${(median(cold) / median(rclone)).toFixed(2)} × this (aim ≥ 1.3)`]
        : ['Azurite: cold sequential read through rclone mount', 'skipped (tool not available)', ''],
      ['Azurite: s3fs, blobfuse2', 'no row: s3fs has no Azure backend, Debian has no blobfuse2', ''],
    ];
    return { rows, raw: `Azurite raw MiB/s — direct: ${direct.map(f).join(', ')}; cold: ${cold.map(f).join(', ')}; rclone: ${rclone.map(f).join(', ')}\n${receive.raw}` };
  } finally {
    await rm(work, { recursive: true, force: true });
    await az.stop();
  }
}
