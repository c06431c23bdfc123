/**
 * Storage for the emulators of S3-backed platforms (MediaHub, Nomad, MK.IO): s3rver with one bucket,
 * and the expiry-enforcing fault proxy in front of it that the platform's presigned URLs point at.
 */
import { S3Backing } from '@assetfs/lab/emulators/common/backing.js';
import { startProxiedBucket, type ProxiedBucket } from './proxied-s3.js';

export interface S3BackedStorage extends ProxiedBucket {
  /** What the platform emulator stores through: writes to s3rver, presigns URLs on the proxy. */
  readonly backing: S3Backing;
}

export async function startS3BackedStorage(bucket: string): Promise<S3BackedStorage> {
  const storage = await startProxiedBucket(bucket, { enforcePresignExpiry: true });
  const backing = new S3Backing(storage.s3.url, storage.proxy.url, bucket);
  return {
    ...storage,
    backing,
    async close() {
      backing.close();
      await storage.close();
    },
  };
}
