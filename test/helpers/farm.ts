/**
 * A farm on this machine: N daemons (each in its own process, with its own cache dir and mount point),
 * one real redis-server on a unix socket (redis-server.ts), one s3rver bucket behind the counting fault
 * proxy (proxied-s3.ts). What the origin served is read from the proxy's log of ranged GETs.
 *
 * The daemons start side by side; startFarm returns once every one is mounted. stop() unmounts every daemon, then stops Redis and the bucket; it is
 * safe after a failed start and whatever the test did to Redis (paused, down).
 */
import type { SampleFile } from '@assetfs/lab/demo/sample-media.js';
import { mountDaemon, type MountedDaemon } from './mount.js';
import { startProxiedBucket, type ProxiedBucket } from './proxied-s3.js';
import { startRedis, type RedisOptions, type RedisServer } from './redis-server.js';
import { daemonStatus } from './status.js';
import { callControl, controlSocketPath } from '../../src/daemon/control.js';
import { join } from 'node:path';

export interface FarmOptions {
  /** Daemons to start (default 3). */
  hosts?: number;
  bucket?: string;
  files?: SampleFile[];
  /** false: the same daemons without `shared:` (the farm without a shared tier). Default true. */
  shared?: boolean;
  /** Extra `shared:` keys (lockTtl, timeout, heartbeat…) for every host. */
  sharedConfig?: Record<string, unknown>;
  /** Extra top-level config for every host (cache sizes, metadataTtl…). */
  config?: Record<string, unknown>;
  /** Extra keys of the S3 source entry. */
  source?: Record<string, unknown>;
  redis?: RedisOptions;
  logLevel?: string;
}

export interface FarmHost {
  readonly name: string;
  readonly daemon: MountedDaemon;
  readonly mountpoint: string;
  readonly cacheDir: string;
  /** `assetfs status --json` of this host's daemon (through the CLI). */
  status<T = Record<string, unknown>>(): Promise<T>;
  /** The same document straight from the control socket: cheap enough to poll. */
  poll<T = Record<string, unknown>>(): Promise<T>;
}

export interface Farm {
  readonly redis: RedisServer;
  readonly storage: ProxiedBucket;
  readonly hosts: FarmHost[];
  /** `shared.keyPrefix` of this farm. */
  readonly keyPrefix: string;
  /** Bytes of `key` the origin served in ranged GETs since the last clearOrigin() (each range clamped to `size`). */
  originBytes(key: string, size: number): number;
  /** GET requests for `key` the origin saw. */
  originGets(key: string): number;
  clearOrigin(): void;
  /** The path of `key` (under the source 's3') inside host i's mount. */
  path(i: number, key: string): string;
  stop(): Promise<void>;
}

/** Length of a `bytes=a-b` range, clamped to an object of `size` bytes (a whole GET counts `size`). */
export function rangeBytes(range: string | undefined, size: number): number {
  const m = /bytes=(\d+)-(\d*)/.exec(range ?? '');
  if (!m) return size;
  const start = Number(m[1]);
  const end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
  return Math.max(0, end - start + 1);
}

export async function startFarm(o: FarmOptions = {}): Promise<Farm> {
  const n = o.hosts ?? 3;
  const keyPrefix = `farm${process.pid}:`;
  const redis = await startRedis(o.redis);
  let storage: ProxiedBucket | undefined;
  const hosts: FarmHost[] = [];
  const stop = async () => {
    redis.resume();
    await Promise.allSettled(hosts.map((h) => h.daemon.stop()));
    await storage?.close().catch(() => undefined);
    await redis.stop();
  };
  try {
    storage = await startProxiedBucket(o.bucket ?? 'farm', { files: o.files ?? [] });
    const started = await Promise.allSettled(
      Array.from({ length: n }, async (_, i) => {
        const name = `host${i + 1}`;
        const daemon = await mountDaemon(
          {
            metadataTtl: '5s',
            cache: { memory: '64MiB', disk: '256MiB' },
            ...o.config,
            sources: [storage!.source(o.source)],
            ...(o.shared === false ? {} : { shared: { redis: redis.socket, keyPrefix, hostName: name, ...o.sharedConfig } }),
          },
          { logLevel: o.logLevel ?? 'info' },
        );
        const cacheDir = join(daemon.dir, 'cache');
        const host: FarmHost = {
          name,
          daemon,
          mountpoint: daemon.mountpoint,
          cacheDir,
          status: <T>() => daemonStatus<T>(cacheDir),
          poll: async <T>() => (await callControl(controlSocketPath(cacheDir), 'GET', '/status')) as T,
        };
        hosts[i] = host;
        return host;
      }),
    );
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (e) {
    await stop();
    throw e;
  }
  const s = storage;
  const getsOf = (key: string) => s.proxy.requests().filter((r) => r.method === 'GET' && r.path.endsWith(`/${key}`));
  return {
    redis,
    storage: s,
    hosts,
    keyPrefix,
    originBytes: (key, size) => getsOf(key).filter((r) => r.status >= 200 && r.status < 300).reduce((a, r) => a + rangeBytes(r.range, size), 0),
    originGets: (key) => getsOf(key).length,
    clearOrigin: () => s.proxy.clearLog(),
    path: (i, key) => join(hosts[i]!.mountpoint, 's3', key),
    stop,
  };
}
