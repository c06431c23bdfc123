/**
 * Storage for the emulators of S3-backed platforms (MediaHub, Nomad, MK.IO): s3rver with one bucket,
 * and the expiry-enforcing fault proxy in front of it that the platform's presigned URLs point at.
 * `direct` talks to s3rver itself, for tests to check what was stored.
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { S3Backing } from '../../src/emulators/common/backing.js';
import { startS3rver, type StorageServer } from '../../src/emulators/storage-servers.js';
import { startFaultProxy, type FaultProxy } from '../../src/emulators/fault-proxy.js';
import { s3rverClient } from '../../src/demo/seed-storage.js';

export interface S3BackedStorage {
  readonly s3: StorageServer;
  readonly proxy: FaultProxy;
  readonly backing: S3Backing;
  readonly direct: S3Client;
  /** The bytes stored at `key` in the bucket, read from s3rver itself; undefined when there are none. */
  object(key: string): Promise<Buffer | undefined>;
  /** The bucket's keys under `prefix`. */
  keys(prefix: string): Promise<string[]>;
  /** Stops all of it; safe to call once whatever happened before. */
  close(): Promise<void>;
}

export async function startS3BackedStorage(bucket: string): Promise<S3BackedStorage> {
  const s3 = await startS3rver({ buckets: [bucket] });
  let proxy: FaultProxy;
  try {
    proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
  } catch (e) {
    await s3.stop();
    throw e;
  }
  const backing = new S3Backing(s3.url, proxy.url, bucket);
  const direct = s3rverClient(s3.url);
  return {
    s3,
    proxy,
    backing,
    direct,
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
      backing.close();
      direct.destroy();
      await proxy.close();
      await s3.stop();
    },
  };
}
