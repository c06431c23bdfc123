import { S3Provider } from '../../src/providers/s3/index.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { silentLogger } from '../../src/util/logger.js';
import { startProxiedBucket } from '../helpers/proxied-s3.js';
import { runHostileSuite } from './hostile-suite.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { PAGED_ENTRIES, PAGING_DOWNLOAD, runPagingSuite } from './paging-suite.js';
import { virtualName } from '@assetfs/lab/emulators/common/knobs.js';
import { describe, expect, it } from 'vitest';
import { putManyFiles, runProviderContract, walk } from './provider-suite.js';
import { NotFoundError } from '../../src/core/errors.js';

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

// The hostile-server cases (hostile-suite.ts): the SDK's calls and the presigned reads both go through
// the bucket's fault proxy. A distinct secret key (s3rver checks no signature on GETs) lets the suite
// tell it apart from the access key id that presigned URLs carry in the open.
const HOSTILE_FILE = { path: 'dir/hostile.bin', data: deterministicBytes('hostile-s3', 300_001) };
runHostileSuite('s3 (s3rver)', {}, async () => {
  const storage = await startProxiedBucket('hostile', { files: [HOSTILE_FILE] });
  const secretAccessKey = 'hostile-secret-access-key';
  return {
    provider: (net) => {
      const cfg = ConfigSchema.parse({ sources: [storage.source({ secretAccessKey })] }).sources[0] as SourceConfigOf<'s3'>;
      return new S3Provider(cfg, { log: silentLogger, net });
    },
    api: storage.proxy,
    storage: storage.proxy,
    storageTarget: storage.s3.url,
    format: 'xml',
    file: HOSTILE_FILE,
    secrets: [secretAccessKey],
    listCall: (r) => r.method === 'GET' && r.query.includes('list-type=2'),
    readCall: (r) => r.method === 'GET' && r.path.endsWith('/hostile.bin'),
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

describe('s3 ids below a source prefix', () => {
  it('the id is the whole key; byId takes only keys below the prefix; ancestry is relative to it', async () => {
    const storage = await startProxiedBucket('media');
    const p = new S3Provider(ConfigSchema.parse({ sources: [storage.source({ prefix: 'pre/fix' })] }).sources[0] as SourceConfigOf<'s3'>, { log: silentLogger });
    try {
      await storage.seed([{ path: 'pre/fix/a/b.txt', data: Buffer.from('b') }, { path: 'other/c.txt', data: Buffer.from('c') }]);
      const listed = await walk(p, 'a/b.txt');
      expect(p.idOf(listed)).toBe('pre/fix/a/b.txt');
      expect(await p.byId('pre/fix/a/b.txt')).toMatchObject({ ref: listed.ref, version: listed.version, size: 1 });
      expect(await p.ancestry(listed)).toEqual(['a/']);
      for (const outside of ['other/c.txt', 'a/b.txt', 'pre/fix/', 'pre/fix/a/']) await expect(p.byId(outside)).rejects.toBeInstanceOf(NotFoundError);
      expect(p.idOf(await walk(p, 'a'))).toBeUndefined();
    } finally {
      await p.close();
      await storage.close();
    }
  });
});
