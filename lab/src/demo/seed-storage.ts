/** Writes sample files into s3rver / Azurite through their real APIs (demo, tests, benchmarks). */
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import pLimit from 'p-limit';
import { azuriteConnectionString, S3RVER_KEY, type StorageServer } from '../emulators/storage-servers.js';
import type { SampleFile } from './sample-media.js';

export function s3rverClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
    // s3rver stores aws-chunked framing as data when the SDK streams with checksum trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function seedS3(endpoint: string, bucket: string, files: SampleFile[], parallel = 8): Promise<void> {
  const s3 = s3rverClient(endpoint);
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((e: { name?: string }) => {
      if (e.name !== 'BucketAlreadyOwnedByYou' && e.name !== 'BucketAlreadyExists') throw e;
    });
    const limit = pLimit(parallel);
    await Promise.all(files.map((f) => limit(() => s3.send(new PutObjectCommand({ Bucket: bucket, Key: f.path, Body: f.data })))));
  } finally {
    s3.destroy();
  }
}

export async function seedAzure(server: StorageServer, container: string, files: SampleFile[], parallel = 8): Promise<void> {
  const svc = BlobServiceClient.fromConnectionString(azuriteConnectionString(server));
  const c = svc.getContainerClient(container);
  await c.createIfNotExists();
  const limit = pLimit(parallel);
  await Promise.all(files.map((f) => limit(() => c.getBlockBlobClient(f.path).uploadData(f.data, { blockSize: 8 * 1024 * 1024, concurrency: 4 }))));
}
