/**
 * Assembles one running daemon from a validated config: providers → transport → caches → block
 * source → VFS → FUSE mount. `stop()` is the clean shutdown: lazy unmount first (new opens fail, the
 * mount point is free at once), then keep serving until every open file is released (bounded), then
 * close providers and sockets. Exiting right after unmount would give ENOTCONN to open files.
 */
import { mkdir } from 'node:fs/promises';
import type { Provider } from '../core/types.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../util/logger.js';
import { createProvider } from '../providers/registry.js';
import { HttpTransport } from '../transports/http.js';
import { MemoryBlockCache } from '../cache/memory-cache.js';
import { DiskBlockCache } from '../cache/disk-cache.js';
import { TieredBlockCache } from '../cache/tiered-cache.js';
import { join } from 'node:path';
import { LocatorCache } from '../read/locator-cache.js';
import { NetworkBlockSource } from '../read/block-source.js';
import { fitReadahead } from '../read/readahead.js';
import { AssetVfs } from '../vfs/vfs.js';
import { mountVfs, type MountedFs } from '../fuse/adapter.js';
import { preflight } from './preflight.js';
import { TextReply, controlSocketPath, startControlServer } from './control.js';
import { DaemonMetrics } from '../metrics/metrics.js';
import { startMetricsListener } from '../metrics/listener.js';
import { cacheRoutes } from './cache-routes.js';
import { claimCacheDir } from './cache-dir-lock.js';
import { RecentEvents } from '../util/recent.js';
import { UploadService } from '../upload/service.js';
import { Pinner } from '../cache/pinner.js';
import { Staging } from '../vfs/staging.js';
import { WriteOps } from '../vfs/write-ops.js';
import { rm } from 'node:fs/promises';

export interface DaemonOptions {
  config: Config;
  log: Logger;
  mountpoint: string;
  /** Clear a stale mount left by a killed daemon instead of refusing to start. */
  force?: boolean;
  /** How long stop() waits for open files to be released. */
  drainTimeoutMs?: number;
}

export interface Daemon {
  readonly mountpoint: string;
  readonly vfs: AssetVfs;
  readonly blocks: NetworkBlockSource;
  readonly cache: TieredBlockCache;
  readonly providers: ReadonlyMap<string, Provider>;
  readonly uploads: UploadService;
  /** SIGHUP: new credentials for existing sources, without unmounting. Added/removed sources need a remount. */
  reload(config: Config): Promise<void>;
  /** `unmounted`: the mount is already gone (an outside `umount`): only drain and close. */
  stop(opts?: { unmounted?: boolean }): Promise<void>;
}

/** Build everything but the mount: used by the daemon and by tests that drive the VFS directly. */
export async function buildCore(config: Config, log: Logger, metrics?: DaemonMetrics) {
  const meterFor = (source: string) => metrics?.source(source);
  const providerDeps = (name: string) => ({ log: log.child({ c: 'provider', source: name }), meter: meterFor(name) });
  const providers = new Map<string, Provider>();
  for (const s of config.sources) providers.set(s.name, await createProvider(s, providerDeps(s.name)));
  const transport = new HttpTransport({ requestTimeoutMs: config.retry.requestTimeout });
  const memory = new MemoryBlockCache({ maxBytes: config.cache.memory, blockSize: config.cache.blockSize });
  // cache.disk: 0 turns the disk tier off (its puts are then no-ops).
  const disk = new DiskBlockCache({ dir: join(config.cacheDir, 'blocks'), maxBytes: config.cache.disk, blockSize: config.cache.blockSize });
  const cache = new TieredBlockCache(memory, disk);
  const readahead = fitReadahead(config.readahead, config.cache.memory);
  if (readahead.max < config.readahead.max || readahead.budget < config.readahead.budget) {
    log.info({ window: readahead.max, budget: readahead.budget }, 'readahead window and prefetch budget limited to a quarter and a half of cache.memory');
  }
  const locators = new LocatorCache({ meterFor });
  const blocks = new NetworkBlockSource({
    cache,
    transport,
    locators,
    providerFor: (source) => {
      const p = providers.get(source);
      if (!p) throw new Error(`unknown source ${source}`);
      return p;
    },
    partSize: config.readahead.part,
    maxRetryTimeMs: config.retry.maxTime,
    prefetchBudgetBytes: readahead.budget,
    log: log.child({ c: 'blocks' }),
    meterFor,
  });
  const ttlBySource = new Map(config.sources.map((s) => [s.name, s.metadataTtl]));
  const vfs = new AssetVfs({
    providers,
    blocks,
    log: log.child({ c: 'vfs' }),
    metadataTtlMs: config.metadataTtl,
    metadataNegativeTtlMs: config.metadataNegativeTtl,
    sourceTtlMs: (name) => ttlBySource.get(name),
    readaheadMaxBytes: readahead.max,
    readaheadStepBytes: config.readahead.part,
    maxRetryTimeMs: config.retry.maxTime,
  });
  async function close() {
    await vfs.close();
    await cache.flushed();
    await disk.close();
    await Promise.allSettled([...providers.values()].map((p) => p.close()));
    await transport.close();
  }
  async function reload(next: Config) {
    for (const s of next.sources) {
      const old = providers.get(s.name);
      if (!old) {
        log.warn({ source: s.name }, 'new source in the reloaded config: remount to add it');
        continue;
      }
      providers.set(s.name, await createProvider(s, providerDeps(s.name)));
      locators.clear(s.name);
      vfs.invalidate(`/${s.name}`);
      await old.close().catch(() => undefined);
    }
    for (const name of providers.keys()) {
      if (!next.sources.some((s) => s.name === name)) log.warn({ source: name }, 'source removed from the config: remount to drop it');
    }
    log.info('credentials reloaded');
  }
  return { providers, transport, cache, disk, locators, blocks, vfs, close, reload, meterFor };
}

export async function startDaemon(o: DaemonOptions): Promise<Daemon> {
  await mkdir(o.config.cacheDir, { recursive: true, mode: 0o700 });
  const lock = await claimCacheDir(o.config.cacheDir);
  try {
    const d = await startWithCacheDir(o);
    return { ...d, stop: (opts) => d.stop(opts).finally(() => lock.release()) };
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function startWithCacheDir(o: DaemonOptions): Promise<Daemon> {
  const { config, log } = o;
  await preflight(o.mountpoint, { force: o.force });
  const metrics = new DaemonMetrics(config.sources.map((s) => s.name));
  const core = await buildCore(config, log, metrics);
  const pinner = new Pinner({ file: join(config.cacheDir, 'pins.json'), disk: core.disk, blocks: core.blocks, walk: (p) => core.vfs.walkFiles(p), log: log.child({ c: 'pin' }) });
  await pinner.load(); // pinned objects must be known before the disk tier indexes (and may evict) blocks
  await core.disk.init();
  const recent = new RecentEvents();
  const stagingDir = join(config.cacheDir, 'staging');
  let staging: Staging | undefined;
  const uploads = new UploadService(config, core.providers, log, (job) => {
    core.vfs.invalidate(`/${job.source}`);
    staging?.uploaded(job.id);
    // A staged copy of an upload resumed after a restart has no staging entry any more: remove it.
    if (job.producer === 'mount' && job.localPath.startsWith(stagingDir) && !staging?.owns(job.localPath)) void rm(job.localPath, { force: true });
  }, core.meterFor);
  staging = new Staging({ dir: stagingDir, engine: uploads.engine, writeBackMs: config.uploads.writeBack, log: log.child({ c: 'staging' }), onUploaded: () => undefined });
  await staging.init();
  core.vfs.enableWrites(new WriteOps(staging, core.vfs.access(), (s) => uploads.uploaderFor(s)));
  let mounted: MountedFs;
  try {
    mounted = await mountVfs({
      mountpoint: o.mountpoint,
      vfs: core.vfs,
      log: log.child({ c: 'fuse' }),
      attrTimeoutSec: Math.max(1, Math.round(config.metadataTtl / 1000)),
      allowOther: config.fuse.allowOther,
      maxBackground: config.fuse.maxBackground,
      extraOptions: config.fuse.options,
      kernelReadaheadKb: Math.max(4, Math.round(config.fuse.readahead / 1024)),
      opTimeoutMs: config.retry.maxTime + config.retry.requestTimeout + 5_000,
      recent,
      meter: metrics.fuse,
    });
  } catch (e) {
    await uploads.stop();
    await core.close();
    throw e;
  }
  log.info({ mountpoint: o.mountpoint, sources: [...core.providers.keys()] }, 'mounted');
  metrics.readFrom({
    caches: () => ({ memory: core.cache.memory.stats(), disk: core.cache.disk.stats() }),
    metadata: () => core.vfs.metadataLookups,
    uploads: () => {
      const u = uploads.status();
      return { queued: u.queued.length, uploading: u.active.length, failed: u.failed.length };
    },
  });
  await uploads.start();
  pinner.refreshAll();
  /** A path given to `assetfs pin`: absolute under the mount point, or already mount-relative. */
  const inMount = (body: unknown): string => {
    const raw = String((body as { path?: unknown } | undefined)?.path ?? '');
    const rel = raw.startsWith(`${o.mountpoint}/`) ? raw.slice(o.mountpoint.length) : raw.startsWith('/') && !raw.startsWith(o.mountpoint) ? raw : '';
    if (!rel || rel === '/') throw new Error(`${raw} is not a path inside the mount at ${o.mountpoint}`);
    return rel.replace(/\/+$/, '');
  };
  const startedAt = Date.now();
  const control = await startControlServer(controlSocketPath(config.cacheDir), {
    'GET /status': async () => ({
      mountpoint: o.mountpoint,
      pid: process.pid,
      uptimeSec: Math.round((Date.now() - startedAt) / 1000),
      sources: config.sources.map((s) => ({ name: s.name, type: s.type })),
      cache: { memory: core.cache.memory.stats(), disk: core.cache.disk.stats() },
      network: core.blocks.stats(),
      openFiles: core.vfs.openFiles,
      errors: recent.list(),
      uploads: uploads.status(),
      pins: pinner.status(),
      // libfuse workers' locals ever allocated: bounded by the most workers alive at once, however many
      // bursts of concurrent operations came (fuse-native patch 1: docs/design.md#fuse-native-patched).
      fuse: { workerLocals: mounted.workerLocals() },
    }),
    'POST /retry': async () => ({ retried: uploads.engine.retryNow() }),
    'POST /pin': async (body) => pinner.pin(inMount(body)),
    'POST /unpin': async (body) => ({ unpinned: await pinner.unpin(inMount(body)) }),
    'GET /metrics': async () => new TextReply(metrics.contentType, await metrics.scrape()),
    ...cacheRoutes({ mountpoint: o.mountpoint, vfs: core.vfs, cache: core.cache, invalidateKernel: (paths) => mounted.invalidate(paths) }),
  }).catch((e: unknown) => {
    log.warn({ err: e }, 'control socket unavailable: `assetfs status` will not reach this daemon');
    return undefined;
  });

  const metricsListener = config.metrics.listen
    ? await startMetricsListener(config.metrics.listen, metrics, { allowRemote: config.metrics.allowRemote }).catch((e: unknown) => {
        log.warn({ err: e, listen: config.metrics.listen }, 'metrics listener unavailable: /metrics is still served on the control socket');
        return undefined;
      })
    : undefined;
  if (metricsListener) log.info({ address: metricsListener.address }, 'serving /metrics over TCP');

  let stopping: Promise<void> | undefined;
  const stop = (opts?: { unmounted?: boolean }) =>
    (stopping ??= (async () => {
      if (!opts?.unmounted) {
        log.info({ mountpoint: o.mountpoint }, 'unmounting');
        try {
          await mounted.unmount();
        } catch (e) {
          log.warn({ err: e }, 'unmount failed');
        }
      }
      const deadline = Date.now() + (o.drainTimeoutMs ?? 10_000);
      while (core.vfs.openFiles > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (core.vfs.openFiles > 0) log.warn({ open: core.vfs.openFiles }, 'files still open at shutdown');
      await control?.close();
      await metricsListener?.close();
      staging?.stop();
      await uploads.stop();
      await core.close();
      log.info('stopped');
    })());

  const reload = async (next: Config) => {
    await core.reload(next);
    uploads.providersChanged();
  };
  return { mountpoint: o.mountpoint, vfs: core.vfs, blocks: core.blocks, cache: core.cache, providers: core.providers, uploads, reload, stop };
}
