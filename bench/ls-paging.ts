/**
 * Cold `ls -l` of a 10,000-entry folder on an offset-paged platform (Nomad's search pages, through
 * its emulator) against a direct sequential listing of the same folder (the same search requests
 * one after the other, from this process). Every search answer is held back `LS_PAGE_DELAY_MS`
 * (default 50 ms, a platform a continent away): on loopback the listing costs only CPU, and what
 * parallel pages save is round trips. Aim: ≤ 0.6 × the sequential listing.
 */
import { startS3rver } from '@assetfs/lab/emulators/storage-servers.js';
import { S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { DEFAULT_NOMAD_USER, startNomadEmulator } from '@assetfs/lab/emulators/nomad/index.js';
import { NomadClient } from '../src/providers/nomad/client.js';
import { silentLogger } from '../src/util/logger.js';
import { mountDaemon, sh } from '../test/helpers/mount.js';

const ENTRIES = 10_000;
const PAGE = 100; // the provider's page size (src/providers/nomad/index.ts)

export interface LsRun {
  readonly mountSecs: number;
  readonly directSecs: number;
  readonly pages: number;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/** One cold `ls -l` through a fresh daemon and one direct sequential listing, each `delayMs` per search. */
export async function lsPaging(delayMs = Number(process.env.LS_PAGE_DELAY_MS ?? 50)): Promise<LsRun> {
  const s3 = await startS3rver({ buckets: ['nomad'] });
  const nomad = await startNomadEmulator({ s3: new S3Backing(s3.url, s3.url, 'nomad') });
  try {
    const bucket = nomad.createBucket('media-bucket');
    const many = nomad.createFolder(bucket, 'many');
    for (let i = 0; i < ENTRIES; i++) nomad.createFolder(many, `f-${String(i).padStart(5, '0')}`);
    const slow = () => nomad.server.faults.add({ kind: 'slow', n: 1_000_000, delayMs, pathPrefix: '/api/admin/search' });

    const client = new NomadClient({ name: 'bench', baseUrl: nomad.url, username: DEFAULT_NOMAD_USER.userName, password: DEFAULT_NOMAD_USER.password }, silentLogger);
    const filters = [{ fieldName: 'parentId', operator: 'Equals', values: many }];
    await client.search({ filters, pageOffset: 0, pageSize: 1 }); // log in before the clock starts
    slow();
    let pages = 0;
    const directSecs = await timed(async () => {
      for (let page = 0, rows = 0; ; page++) {
        const r = await client.search({ filters, pageOffset: page, pageSize: PAGE });
        pages++;
        rows += r.items?.length ?? 0;
        if (!r.items?.length || rows >= Number(r.totalItemCount)) break;
      }
    });
    nomad.server.faults.clear();

    const d = await mountDaemon({ sources: [{ name: 'nomad', type: 'nomad', baseUrl: nomad.url, username: DEFAULT_NOMAD_USER.userName, password: DEFAULT_NOMAD_USER.password }] }, { logLevel: 'warn' });
    try {
      await sh(`ls ${d.mountpoint}/nomad/media-bucket > /dev/null`); // logged in, the bucket listed
      slow();
      const mountSecs = await timed(() => sh(`ls -l ${d.mountpoint}/nomad/media-bucket/many | wc -l`, { timeoutMs: 600_000 }));
      return { mountSecs, directSecs, pages };
    } finally {
      nomad.server.faults.clear();
      await d.stop();
    }
  } finally {
    await nomad.close();
    await s3.stop();
  }
}
