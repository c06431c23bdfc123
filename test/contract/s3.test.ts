import { putManyFiles, runProviderContract } from './provider-suite.js';
import { PAGED_ENTRIES, PAGING_DOWNLOAD, runPagingSuite } from './paging-suite.js';
import { virtualName } from '../../src/emulators/common/knobs.js';
import { S3Provider } from '../../src/providers/s3/index.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { silentLogger } from '../../src/util/logger.js';
import { startProxiedBucket } from '../helpers/proxied-s3.js';

// s3rver never checks presigned-URL expiry: the fault proxy in front of it does, as S3 would.
runProviderContract('s3 (s3rver behind an expiry-enforcing proxy)', async () => {
  const storage = await startProxiedBucket('media', { enforcePresignExpiry: true });
  const put = (path: string, data: Buffer) => storage.seed([{ path, data }], 1);
  return {
    provider: ({ listPageSize, urlTtlMs }) => {
      const cfg = ConfigSchema.parse({
        sources: [storage.source({ urlTtl: urlTtlMs })],
      }).sources[0] as SourceConfigOf<'s3'>;
      return new S3Provider(cfg, { log: silentLogger, listPageSize });
    },
    base: 'media/',
    nested: true,
    missingRefs: ['media/nope.bin', 'nope/'],
    put,
    putMany: (count) => putManyFiles(put, 'many/', count),
    teardown: () => storage.close(),
  };
});

// S3 listings are ListObjectsV2 pages through the fault proxy, whose knobs cap MaxKeys, answer an
// empty truncated page, repeat a continuation token or generate the listing; versions are ETags.
runPagingSuite('s3 (s3rver behind the fault proxy)', async () => {
  const storage = await startProxiedBucket('media');
  const names = Array.from({ length: PAGED_ENTRIES }, (_, i) => `p-${String(i).padStart(5, '0')}`);
  await storage.seed([
    { path: 'paging/download.bin', data: PAGING_DOWNLOAD },
    { path: 'virtual/seed.bin', data: Buffer.from('seed') },
    ...names.map((n) => ({ path: `paged/${n}`, data: Buffer.from(n) })),
  ], 16);
  return {
    provider: ({ listPageSize, listing, log }) => {
      const cfg = ConfigSchema.parse({ sources: [storage.source()] }).sources[0] as SourceConfigOf<'s3'>;
      return new S3Provider(cfg, { log, listPageSize, listing });
    },
    pageSize: 100,
    listingKnobs: storage.proxy.knobs,
    folder: { path: 'paged/', scope: 'paged/', names },
    virtual: { path: 'virtual/', scope: 'virtual/', name: (i) => virtualName(i, '.bin') },
    tokens: true,
    download: { path: 'paging/download.bin', knobs: storage.proxy.knobs, versionIsStorageEtag: true },
    listRequests: () => storage.proxy.requests().filter((r) => r.query.includes('list-type=2')).length,
    teardown: () => storage.close(),
  };
});
