import { describe, expect, it } from 'vitest';
import { putManyFiles, runProviderContract, walk } from './provider-suite.js';
import { NotFoundError } from '../../src/core/errors.js';
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
