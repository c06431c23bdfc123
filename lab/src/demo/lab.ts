/**
 * The platform lab: s3rver and Azurite (each behind a fault proxy that enforces presigned-URL expiry
 * and injects storage faults), the five platform emulators on top of them, and sample content in all
 * seven sources. `assetfs demo` and the per-platform mount tests both run on it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AZURITE_ACCOUNT, AZURITE_KEY, s3rverSource, startAzurite, startS3rver, type StorageServer } from '../emulators/storage-servers.js';
import { startFaultProxy, type FaultProxy } from '../emulators/fault-proxy.js';
import { AzureBacking, S3Backing } from '../emulators/common/backing.js';
import { startWordbeeEmulator, type WordbeeEmulator } from '../emulators/wordbee/index.js';
import { MKIO_DEFAULT_TOKEN, startMkioEmulator, type MkioEmulator } from '../emulators/mkio/index.js';
import { startAmsEmulator, type AmsEmulator } from '../emulators/ams/index.js';
import { DEFAULT_NOMAD_USER, startNomadEmulator, type NomadEmulator } from '../emulators/nomad/index.js';
import { MEDIAHUB_CLIENT, startMediahubEmulator, type MediahubEmulator } from '../emulators/mediahub/index.js';
import { storageSampleTree } from './sample-media.js';
import { seedAzure, seedS3 } from './seed-storage.js';
import { seedPlatforms, type PlatformPaths } from './lab-content.js';

/** What the lab logs through: the daemon's pino logger fits; the lab does not depend on the daemon. */
export interface LabLog {
  info(msg: string): void;
  info(obj: object, msg: string): void;
}

export type PlatformName = 'wordbee' | 'mkio' | 'ams' | 'nomad' | 'mediahub';

export interface LabOptions {
  log: LabLog;
  /** Size of the large file in the s3 and blob sources. Default 72 MiB. */
  bigFileBytes?: number;
  /** Entries of the one very large folder per platform (0 = none). */
  manyCount?: number;
  /** Lifetime of the platforms' signed URLs and tokens where the emulator decides it. Default 15 min. */
  urlTtlMs?: number;
}

export interface PlatformLab {
  readonly s3: StorageServer;
  readonly azurite: StorageServer;
  readonly s3Proxy: FaultProxy;
  readonly azureProxy: FaultProxy;
  readonly wordbee: WordbeeEmulator;
  readonly mkio: MkioEmulator;
  readonly ams: AmsEmulator;
  readonly nomad: NomadEmulator;
  readonly mediahub: MediahubEmulator;
  /** Config `sources:` entries for all seven sources, named after their type (s3, blob, wordbee, …). */
  readonly sources: Record<string, unknown>[];
  /** Where the interesting files are, per platform (mount-relative). */
  readonly paths: Record<PlatformName, PlatformPaths>;
  /** Revoke every token and signed URL a platform has issued (the next use is refused as expired). */
  expire(platform: PlatformName): void;
  stop(): Promise<void>;
}

export async function startPlatformLab(opts: LabOptions): Promise<PlatformLab> {
  const { log } = opts;
  const stops: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    log.info('starting s3rver and Azurite on loopback');
    const [s3, azurite] = await Promise.all([startS3rver({ buckets: ['media', 'mkio', 'nomad', 'mediahub'] }), startAzurite()]);
    stops.push(() => s3.stop(), () => azurite.stop());
    const s3Proxy = await startFaultProxy(s3.url, { enforcePresignExpiry: true });
    const azureProxy = await startFaultProxy(azurite.url.replace(/\/devstoreaccount1$/, ''));
    stops.push(() => s3Proxy.close(), () => azureProxy.close());
    const azure = new AzureBacking(azurite.url, `${azureProxy.url}/${AZURITE_ACCOUNT}`);
    const backing = (bucket: string) => new S3Backing(s3.url, s3Proxy.url, bucket);
    const work = await mkdtemp(join(tmpdir(), 'assetfs-lab-'));
    stops.push(() => rm(work, { recursive: true, force: true }));

    log.info('starting the platform emulators (Wordbee, MK.IO, AMS, Nomad, MediaHub)');
    const ttl = opts.urlTtlMs ?? 15 * 60_000;
    const mkioS3 = backing('mkio');
    const nomadS3 = backing('nomad');
    const mhS3 = backing('mediahub');
    stops.push(async () => [mkioS3, nomadS3, mhS3].forEach((b) => b.close()));
    const [wordbee, mkio, ams, nomad, mediahub] = await Promise.all([
      startWordbeeEmulator({ accounts: [{ accountId: 'demo', key: 'wordbee-demo-key' }] }),
      startMkioEmulator({ azure, s3: mkioS3, urlTtlMs: ttl }),
      startAmsEmulator({ azure }),
      startNomadEmulator({ s3: nomadS3, urlTtlMs: ttl }),
      startMediahubEmulator({ s3: mhS3, urlTtlMs: ttl }),
    ]);
    ams.urlTtlCapMs = opts.urlTtlMs;
    stops.push(() => wordbee.close(), () => mkio.close(), () => ams.close(), () => nomad.close(), () => mediahub.close());

    const files = await storageSampleTree({ bigFileBytes: opts.bigFileBytes });
    log.info({ many: opts.manyCount ?? 0 }, 'seeding sample media into every source');
    const [, , paths] = await Promise.all([
      seedS3(s3.url, 'media', files),
      seedAzure(azurite, 'media', files),
      seedPlatforms({ wordbee, mkio, ams, nomad, mediahub }, { manyCount: opts.manyCount ?? 0 }),
    ]);

    const sources: Record<string, unknown>[] = [
      s3rverSource(s3Proxy.url, 'media'),
      { name: 'blob', type: 'azure-blob', accountUrl: azurite.url, container: 'media', accountName: AZURITE_ACCOUNT, accountKey: AZURITE_KEY },
      { name: 'wordbee', type: 'wordbee', baseUrl: wordbee.apiUrl, accountId: 'demo', apiKey: 'wordbee-demo-key', scopes: ['pr7214'] },
      // MK.IO writes go straight to the asset storage with the customer's credential (an account SAS here).
      { name: 'mkio', type: 'mkio', baseUrl: mkio.url, project: mkio.project, token: MKIO_DEFAULT_TOKEN, storage: mkio.storageCredential('azure', { ttlMs: 7 * 86_400_000 }) },
      { name: 'ams', type: 'ams', restUrl: ams.apiUrl, tokenUrl: ams.tokenUrl, clientId: ams.clientId, clientSecret: ams.clientSecret, urlTtl: ttl },
      { name: 'nomad', type: 'nomad', baseUrl: nomad.url, username: DEFAULT_NOMAD_USER.userName, password: DEFAULT_NOMAD_USER.password },
      { name: 'mediahub', type: 'mediahub', baseUrl: mediahub.baseUrl, clientId: MEDIAHUB_CLIENT.id, clientSecret: MEDIAHUB_CLIENT.secret, urlTtl: ttl },
    ];

    const expire = (p: PlatformName) => {
      if (p === 'wordbee') wordbee.expireTokens();
      if (p === 'mkio') mkio.signer.revokeAll();
      if (p === 'ams') ams.signer.revokeAll();
      if (p === 'nomad') nomad.revokeTokens();
      if (p === 'mediahub') mediahub.expireTokens();
      // Signed storage URLs already handed out: the storage proxies refuse the next use as expired.
      if (p === 'ams') azureProxy.expireNext(1);
      if (p === 'nomad' || p === 'mediahub') s3Proxy.expireNext(1);
    };
    return { s3, azurite, s3Proxy, azureProxy, wordbee, mkio, ams, nomad, mediahub, sources, paths, expire, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
