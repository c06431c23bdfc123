/**
 * `assetfs demo`: local storage servers with sample media, mounted by the same daemon code a real
 * config uses. Everything it starts is stopped by `stop()`; nothing is left mounted or running.
 */
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type Config } from '../config/schema.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, startS3rver, type StorageServer } from '../emulators/storage-servers.js';
import type { Logger } from '../util/logger.js';
import { startDaemon, type Daemon } from '../daemon/run.js';
import { storageSampleTree } from './sample-media.js';
import { seedAzure, seedS3 } from './seed-storage.js';
import { S3RVER_KEY } from '../emulators/storage-servers.js';

export interface DemoHandle {
  readonly mountpoint: string;
  readonly tour: string;
  stop(): Promise<void>;
}

export async function startDemo(opts: { mountpoint: string; log: Logger; bigFileBytes?: number }): Promise<DemoHandle> {
  const { log } = opts;
  const servers: StorageServer[] = [];
  const work = await mkdtemp(join(tmpdir(), 'assetfs-demo-'));
  let daemon: Daemon | undefined;
  const createdMountpoint = !existsSync(opts.mountpoint);
  if (createdMountpoint) await mkdir(opts.mountpoint, { recursive: true });
  const stop = async () => {
    await daemon?.stop();
    await Promise.allSettled(servers.map((s) => s.stop()));
    await rm(work, { recursive: true, force: true });
    if (createdMountpoint) await rmdir(opts.mountpoint).catch(() => undefined);
  };
  try {
    log.info('starting s3rver and Azurite on loopback');
    const [s3, az] = await Promise.all([startS3rver({ buckets: ['media'] }), startAzurite()]);
    servers.push(s3, az);
    const files = await storageSampleTree({ bigFileBytes: opts.bigFileBytes });
    log.info({ files: files.length }, 'seeding sample media');
    await Promise.all([seedS3(s3.url, 'media', files), seedAzure(az, 'media', files)]);
    const config: Config = ConfigSchema.parse({
      mountpoint: opts.mountpoint,
      cacheDir: join(work, 'cache'),
      cache: { memory: '256MiB' },
      metadataTtl: '10s',
      sources: [
        { name: 's3', type: 's3', endpoint: s3.url, bucket: 'media', accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
        { name: 'blob', type: 'azure-blob', accountUrl: az.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY },
      ],
    });
    daemon = await startDaemon({ config, log, mountpoint: opts.mountpoint, force: true });
    const m = opts.mountpoint;
    const tour = [
      `assetfs demo is mounted at ${m}. Try, in another shell:`,
      `  ls -l ${m}/s3 ${m}/blob/videos`,
      `  ffprobe ${m}/s3/videos/sample.mp4`,
      `  cat ${m}/blob/videos/subtitles/sample.fr.srt`,
      `  dd if=${m}/s3/large/random-72MiB.bin bs=1M skip=40 count=4 | sha256sum   # fetches only those blocks`,
      `  cp -r ${m}/blob/projects /tmp/projects-copy`,
      `Press Ctrl-C to stop; the mount and the servers are cleaned up.`,
    ].join('\n');
    return { mountpoint: m, tour, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
