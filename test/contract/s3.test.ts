import { PutObjectCommand } from '@aws-sdk/client-s3';
import { putManyFiles, runProviderContract } from './provider-suite.js';
import { S3Provider } from '../../src/providers/s3/index.js';
import { ConfigSchema, type SourceConfigOf } from '../../src/config/schema.js';
import { S3RVER_KEY, startS3rver } from '../../src/emulators/storage-servers.js';
import { startFaultProxy } from '../../src/emulators/fault-proxy.js';
import { s3rverClient } from '../../src/demo/seed-storage.js';
import { silentLogger } from '../../src/util/logger.js';

// s3rver never checks presigned-URL expiry: the fault proxy in front of it does, as S3 would.
runProviderContract('s3 (s3rver behind an expiry-enforcing proxy)', async () => {
  const server = await startS3rver({ buckets: ['media'] });
  const proxy = await startFaultProxy(server.url, { enforcePresignExpiry: true });
  const client = s3rverClient(server.url);
  const put = async (path: string, data: Buffer) => void (await client.send(new PutObjectCommand({ Bucket: 'media', Key: path, Body: data })));
  return {
    provider: ({ listPageSize, urlTtlMs }) => {
      const cfg = ConfigSchema.parse({
        sources: [{ name: 's3', type: 's3', endpoint: proxy.url, bucket: 'media', accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY, urlTtl: urlTtlMs }],
      }).sources[0] as SourceConfigOf<'s3'>;
      return new S3Provider(cfg, { log: silentLogger, listPageSize });
    },
    base: 'media/',
    nested: true,
    missingRefs: ['media/nope.bin', 'nope/'],
    put,
    putMany: (count) => putManyFiles(put, 'many/', count),
    teardown: async () => {
      client.destroy();
      await proxy.close();
      await server.stop();
    },
  };
});
