/**
 * Storage for the emulators of S3-backed platforms (MediaHub, Nomad, MK.IO): s3rver with one bucket,
 * and the expiry-enforcing fault proxy in front of it that the platform's presigned URLs point at.
 * `direct` talks to s3rver itself, for tests to check what was stored.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { S3Backing } from '../../src/emulators/common/backing.js';
import { startS3rver, type StorageServer } from '../../src/emulators/storage-servers.js';
import { startFaultProxy, type FaultProxy } from '../../src/emulators/fault-proxy.js';
import { s3rverClient } from '../../src/demo/seed-storage.js';

export interface S3BackedStorage {
  readonly s3: StorageServer;
  readonly proxy: FaultProxy;
  readonly backing: S3Backing;
  readonly direct: S3Client;
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
    async close() {
      backing.close();
      direct.destroy();
      await proxy.close();
      await s3.stop();
    },
  };
}
