/**
 * s3rver with one bucket behind the fault proxy, which logs, holds and breaks requests: the storage of
 * tests that count what reaches the server. `object` and `keys` read s3rver itself, past the proxy.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import { s3rverSource, startS3rver, type StorageServer } from '@assetfs/lab/emulators/storage-servers.js';
import { startFaultProxy, type FaultProxy } from '@assetfs/lab/emulators/fault-proxy.js';
import { s3rverClient } from '@assetfs/lab/demo/seed-storage.js';
import type { SampleFile } from '@assetfs/lab/demo/sample-media.js';

export interface ProxiedBucket {
  readonly s3: StorageServer;
  readonly proxy: FaultProxy;
  readonly bucket: string;
  /** A `sources` entry for the bucket through the proxy, named 's3' unless `extra` names it. */
  source(extra?: Record<string, unknown>): ReturnType<typeof s3rverSource>;
  /** The same entry straight to s3rver, for mounts whose requests need not be seen. */
  directSource(extra?: Record<string, unknown>): ReturnType<typeof s3rverSource>;
  /** Uploads `files` to s3rver directly (the proxy does not log them). */
  seed(files: SampleFile[], parallel?: number): Promise<void>;
  /** The bytes stored at `key`, read from s3rver; undefined when there are none. */
  object(key: string): Promise<Buffer | undefined>;
  /** The bucket's keys under `prefix`, in S3's order. */
  keys(prefix: string): Promise<string[]>;
  /** Stops the proxy and s3rver; safe to call once whatever happened before. */
  close(): Promise<void>;
}

export async function startProxiedBucket(
  bucket: string,
  opts: { files?: SampleFile[]; parallel?: number; enforcePresignExpiry?: boolean } = {},
): Promise<ProxiedBucket> {
  const s3 = await startS3rver({ buckets: [bucket] });
  let proxy: FaultProxy;
  try {
    proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: opts.enforcePresignExpiry ?? false });
  } catch (e) {
    await s3.stop();
    throw e;
  }
  const direct = s3rverClient(s3.url);
  const handle: ProxiedBucket = {
    s3,
    proxy,
    bucket,
    source: (extra) => s3rverSource(proxy.url, bucket, extra),
    directSource: (extra) => s3rverSource(s3.url, bucket, extra),
    async seed(files, parallel = 8) {
      const limit = pLimit(parallel);
      await Promise.all(files.map((f) => limit(() => direct.send(new PutObjectCommand({ Bucket: bucket, Key: f.path, Body: f.data })))));
    },
    async object(key) {
      try {
        const o = await direct.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await o.Body!.transformToByteArray());
      } catch (e) {
        if ((e as { name?: string }).name === 'NoSuchKey') return undefined;
        throw e;
      }
    },
    async keys(prefix) {
      const r = await direct.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      return (r.Contents ?? []).map((c) => c.Key!);
    },
    async close() {
      direct.destroy();
      await proxy.close();
      await s3.stop();
    },
  };
  if (opts.files?.length) {
    try {
      await handle.seed(opts.files, opts.parallel);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }
  return handle;
}
