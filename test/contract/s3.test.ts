import { putManyFiles, runProviderContract } from './provider-suite.js';
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
