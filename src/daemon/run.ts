/**
 * Assembles one running daemon from a validated config: providers → upload journal and engine →
 * staging area (recovered) → transport → caches → block source → VFS → FUSE mount. Each part is built
 * once, complete, from the parts before it. `stop()` is the clean shutdown: lazy unmount first (new opens fail, the
 * mount point is free at once), then keep serving until every open file is released (bounded), then
 * close providers and sockets. Exiting right after unmount would give ENOTCONN to open files.
 */
import { mkdir } from 'node:fs/promises';
import type { Provider, Vfs } from '../core/types.js';
import type { Config, SourceConfig } from '../config/schema.js';
import type { Logger } from '../util/logger.js';
import { createProvider } from '../providers/registry.js';
import { FastHttpTransport } from '../transports/fast-http.js';
import { boundsOf, type NetBounds } from '../transports/bounds.js';
import { MemoryBlockCache } from '../cache/memory-cache.js';
import { DiskBlockCache } from '../cache/disk-cache.js';
import { TieredBlockCache } from '../cache/tiered-cache.js';
import { join } from 'node:path';
import { LocatorCache } from '../read/locator-cache.js';
import { NetworkBlockSource } from '../read/block-source.js';
import { fitReadahead } from '../read/readahead.js';
import { AssetVfs } from '../vfs/vfs.js';
import { ownershipFrom } from '../vfs/permissions.js';
import { mountVfs, type MountedFs } from '../fuse/adapter.js';
import { preflight } from './preflight.js';
import { TextReply, controlSocketPath, startControlServer } from './control.js';
import { faultRoutes } from './crash-policy.js';
import { DaemonMetrics, type SourceMeter } from '../metrics/metrics.js';
import { startMetricsListener } from '../metrics/listener.js';
import { cacheRoutes } from './cache-routes.js';
import { claimCacheDir } from './cache-dir-lock.js';
import { RecentEvents } from '../util/recent.js';
import { UploadService, type UploadsStatus } from '../upload/service.js';
import type { StatusDoc } from './status-doc.js';
import { Pinner } from '../pin/pinner.js';
import { Staging } from '../vfs/write/staging.js';
import { StagedRecords } from '../vfs/write/records.js';
import type { WriteOptions } from '../vfs/write/write-ops.js';
import { SourceHealth, brokenProvider, isUp } from './health.js';
import { checkAtStart, fixFor } from './source-check.js';
import type { SharedTier } from '../farm/index.js';

/** How long the mount waits for the start's source checks (checkAtStart) before it appears anyway. */
const START_CHECK_WAIT_MS = 5_000;

export interface DaemonOptions {
  config: Config;
  log: Logger;
  mountpoint: string;
  /** Clear a stale mount left by a killed daemon instead of refusing to start. */
  force?: boolean;
  /** How long stop() waits for open files to be released. */
  drainTimeoutMs?: number;
}

/** The running daemon as its callers (the CLI, the supervisor, the demo) see it: seams, not its parts' classes. */
export interface Daemon {
  readonly mountpoint: string;
  /** The filesystem core, with the number of open files the status line shows. */
  readonly vfs: Vfs & { readonly openFiles: number };
  /** The farm's shared tier (config `shared:`), absent without it. */
  readonly shared?: SharedTier;
  readonly providers: ReadonlyMap<string, Provider>;
  /** The upload side, as the status line reads it. */
  readonly uploads: { status(): UploadsStatus };
  /** SIGHUP: new credentials for existing sources, without unmounting. Added/removed sources need a remount. */
  reload(config: Config): Promise<void>;
  /** `unmounted`: the mount is already gone (an outside `umount`): only drain and close. */
  stop(opts?: { unmounted?: boolean }): Promise<void>;
}

/** Every configured source's provider, each watched by the health board. */
export interface Sources {
  readonly providers: Map<string, Provider>;
  readonly health: SourceHealth;
  /** The counting side of each source (metrics/metrics.ts), when the daemon keeps metrics. */
  meterFor(source: string): SourceMeter | undefined;
}

export async function createProviders(config: Config, log: Logger, metrics?: DaemonMetrics): Promise<Sources> {
  const health = new SourceHealth(config.sources.map((s) => s.name));
  const meterFor = (source: string) => metrics?.source(source);
  const net = boundsOf(config.retry);
  /** A source whose provider cannot be built is served as a broken one: the others still mount. */
  const build = async (s: SourceConfig, bounds: NetBounds): Promise<Provider> => {
    try {
      return health.watch(await createProvider(s, { log: log.child({ c: 'provider', source: s.name }), net: bounds, listing: config.listing, meter: meterFor(s.name) }));
    } catch (e) {
      log.warn({ source: s.name, err: e }, `${s.type} source "${s.name}" cannot be set up; the other sources are served`);
      return health.watch(brokenProvider(s, e));
    }
  };
  const providers = new Map<string, Provider>();
  for (const s of config.sources) providers.set(s.name, await build(s, net));
  return { providers, health, meterFor };
}

/**
 * Everything but the mount and the upload side: used by the daemon and by tests that drive the VFS
 * directly. `writes` (the staging area) makes the VFS writable.
 */
export async function buildCore(config: Config, log: Logger, sources: Sources, writes?: WriteOptions) {
  const { providers, health, meterFor } = sources;
  const net = boundsOf(config.retry);
  // Ranged reads land in the block buffers straight from the socket; undici takes what that path does
  // not handle (docs/design.md#the-receive-path).
  const transport = new FastHttpTransport({ requestTimeoutMs: net.stallMs, deadlineMs: net.deadlineMs });
  const memory = new MemoryBlockCache({ maxBytes: config.cache.memory, blockSize: config.cache.blockSize });
  // cache.disk: 0 turns the disk tier off (its puts are then no-ops).
  const disk = new DiskBlockCache({ dir: join(config.cacheDir, 'blocks'), maxBytes: config.cache.disk, blockSize: config.cache.blockSize });
  const cache = new TieredBlockCache(memory, disk);
  // The one place the shared tier is started (and closed, in close() below). Loaded only when
  // configured: without `shared:` neither src/farm nor the redis package is imported.
  const shared = config.shared ? await (await import('../farm/index.js')).startSharedTier(config.shared, { log }) : undefined;
  const readahead = fitReadahead(config.readahead, config.cache.memory);
  if (readahead.max < config.readahead.max || readahead.budget < config.readahead.budget) {
    log.info({ window: readahead.max, budget: readahead.budget }, 'readahead window and prefetch budget limited to a quarter and a half of cache.memory');
  }
  const locators = new LocatorCache({ meterFor, ...(shared ? { shared: shared.metadata } : {}) });
  const blocks = new NetworkBlockSource({
    // memory → disk → shared tier → origin (src/farm/shared-tier-cache.ts)
    cache: shared ? shared.cacheFor(cache) : cache,
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
    health,
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
    ownership: ownershipFrom(config.fuse),
    writes,
    ...(shared ? { sharedListings: shared.metadata } : {}),
  });
  shared?.metadata.onRemoteInvalidation((source, ref) => vfs.forgetListing(source, ref));
  async function close() {
    await vfs.close();
    await cache.settled();
    await disk.close();
    await Promise.allSettled([...providers.values()].map((p) => p.close()));
    await transport.close();
    await shared?.close();
  }
  async function reload(next: Config) {
    for (const s of next.sources) {
      const old = providers.get(s.name);
      if (!old) {
        log.warn({ source: s.name }, 'new source in the reloaded config: remount to add it');
        continue;
      }
      providers.set(s.name, health.watch(await createProvider(s, { log: log.child({ c: 'provider', source: s.name }), net: boundsOf(next.retry), listing: next.listing, meter: meterFor(s.name) })));
      locators.clear(s.name);
      vfs.invalidate(`/${s.name}`);
      await old.close().catch(() => undefined);
    }
    for (const name of providers.keys()) {
      if (!next.sources.some((s) => s.name === name)) log.warn({ source: name }, 'source removed from the config: remount to drop it');
    }
    log.info('credentials reloaded');
  }
  return { providers, health, transport, cache, disk, shared, locators, blocks, vfs, close, reload, meterFor };
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
  const sources = await createProviders(config, log, metrics);
  const { providers } = sources;
  const uploads = new UploadService(config, providers, log, sources.meterFor);
  const stagingDir = join(config.cacheDir, 'staging');
  const staging = new Staging({
    dir: stagingDir,
    records: new StagedRecords(uploads.journal, stagingDir),
    port: uploads.engine.port(),
    writeBackMs: config.uploads.writeBack,
    maxBytes: config.uploads.stagingMax,
    log: log.child({ c: 'staging' }),
  });
  let core: Awaited<ReturnType<typeof buildCore>>;
  try {
    await staging.recover();
    core = await buildCore(config, log, sources, { staging, uploaderFor: (s) => uploads.uploaderFor(s), fsyncTimeoutMs: config.uploads.fsyncTimeout });
  } catch (e) {
    staging.stop();
    await uploads.stop();
    await Promise.allSettled([...providers.values()].map((p) => p.close()));
    throw e;
  }
  // Every source is tried before the mount appears, so that its state is known and a broken one is
  // named in the log at once; the mount never waits for a slow source longer than START_CHECK_WAIT_MS.
  await checkAtStart(config.sources, core.providers, core.health, log, { waitMs: START_CHECK_WAIT_MS, timeoutMs: config.retry.requestTimeout });
  // A farm's hosts syncing one shared folder upload each file once (src/farm/leases.ts).
  if (core.shared) uploads.engine.useLeases(core.shared.leases);
  // A finished upload changes its folder: the next listing asks the remote.
  uploads.engine.onDone((job) => core.vfs.invalidate(`/${job.source}`));
  const pinner = new Pinner({ file: join(config.cacheDir, 'pins.json'), disk: core.disk, blocks: core.blocks, walk: (p) => core.vfs.walkFiles(p), log: log.child({ c: 'pin' }) });
  await pinner.load(); // pinned objects must be known before the disk tier indexes (and may evict) blocks
  await core.disk.init();
  const recent = new RecentEvents();
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
      // A read retries for retry.maxTime, and its last attempt may take one more deadline (retry.maxTime).
      opTimeoutMs: 2 * config.retry.maxTime + config.retry.requestTimeout + 5_000,
      // fsync answers by itself within uploads.fsyncTimeout (0 or EIO): fuse-native's own timer for it,
      // which would answer ETIMEDOUT while the upload carries on, is set well past that.
      fsyncTimeoutMs: config.uploads.fsyncTimeout + 30_000,
      recent,
      meter: metrics.fuse,
    });
  } catch (e) {
    staging.stop();
    await uploads.stop();
    await core.close();
    throw e;
  }
  log.info({ mountpoint: o.mountpoint, sources: [...core.providers.keys()] }, 'mounted');
  // `assetfs refresh PATH` on another host of the farm: the same refresh here, the kernel included.
  core.shared?.metadata.onRemoteRefresh((path) => {
    core.vfs.refresh(path).then((paths) => mounted.invalidate(paths)).catch((e: unknown) => log.info({ err: e instanceof Error ? e.message : String(e), path }, 'refresh from another host not applied here'));
  });
  metrics.readFrom({
    caches: () => ({ memory: core.cache.memory.stats(), disk: core.cache.disk.stats() }),
    metadata: () => core.vfs.metadataLookups,
    uploads: () => uploads.counts(),
    // Up unless the health board holds a failure: `unknown` (no call has reached it yet) is not a failure.
    sourceUp: (source) => isUp(core.health.get(source).state),
    ...(core.shared ? { shared: () => {
      const { breaker, blocks } = core.shared!.stats();
      return { state: breaker.state, hits: blocks.hits, misses: blocks.misses, corrupt: blocks.corrupt, bytesRead: blocks.bytesRead, bytesWritten: blocks.bytesWritten };
    } } : {}),
  });
  await uploads.start();
  pinner.refreshAll();
  core.shared?.startHeartbeat(() => {
    const { memory, disk } = core.cache;
    const m = memory.stats();
    const d = disk.stats();
    const s = core.shared!.stats();
    const u = uploads.status().counts;
    return {
      mountpoint: o.mountpoint,
      // A lookup is a hit in memory or on disk; every block that missed both is a disk miss.
      cache: { memoryBytes: m.bytes, memoryLimit: m.limit, diskBytes: d.bytes, diskLimit: d.limit, hits: m.hits + d.hits, misses: d.misses },
      shared: { state: s.breaker.state, hits: s.blocks.hits, misses: s.blocks.misses },
      uploads: { uploading: u.uploading, queued: u.queued, failed: u.failed },
    };
  });
  /** A path given to `assetfs pin`: absolute under the mount point, or already mount-relative. */
  const inMount = (body: unknown): string => {
    const raw = String((body as { path?: unknown } | undefined)?.path ?? '');
    const rel = raw.startsWith(`${o.mountpoint}/`) ? raw.slice(o.mountpoint.length) : raw.startsWith('/') && !raw.startsWith(o.mountpoint) ? raw : '';
    if (!rel || rel === '/') throw new Error(`${raw} is not a path inside the mount at ${o.mountpoint}`);
    return rel.replace(/\/+$/, '');
  };
  const startedAt = Date.now();
  const control = await startControlServer(controlSocketPath(config.cacheDir), {
    'GET /status': async (): Promise<StatusDoc> => ({
      mountpoint: o.mountpoint,
      pid: process.pid,
      uptimeSec: Math.round((Date.now() - startedAt) / 1000),
      sources: config.sources.map((s) => {
        const health = core.health.get(s.name);
        const failing = isUp(health.state) ? undefined : health.state;
        return { name: s.name, type: s.type, health: { ...health, ...(failing ? { fix: fixFor(s, failing, health.lastError?.message ?? '') } : {}) } };
      }),
      cache: { memory: core.cache.memory.stats(), disk: core.cache.disk.stats() },
      ...(core.shared ? { shared: await core.shared.status() } : {}),
      network: core.blocks.stats(),
      // Ranged reads on the fast receive path, those handed to undici (by reason), resends after an idle close.
      receive: core.transport.stats(),
      openFiles: core.vfs.openFiles,
      errors: recent.list(),
      uploads: uploads.status(),
      writes: staging.status(),
      pins: pinner.status(),
      // libfuse workers' locals ever allocated: bounded by the most workers alive at once, however many
      // bursts of concurrent operations came (fuse-native patch 1: docs/design.md#fuse-native-patched).
      fuse: { workerLocals: mounted.workerLocals() },
    }),
    // With a path: upload a file kept for attention as it is (the operator vouches for it), or else
    // re-queue that file's failed upload (one the platform refused for good included).
    'POST /retry': async (body) => {
      const raw = (body as { path?: unknown } | undefined)?.path;
      if (!raw) return { ...(await uploads.retryNow()), attention: staging.attention().length };
      const rel = inMount(body);
      const retried = (await staging.retry(rel)) ? 1 : uploads.retryPath(rel, String(raw));
      return { retried, attention: staging.attention().length };
    },
    // assetfs status --cluster: every host of the farm (shared tier), as its heartbeats show it.
    'GET /cluster': async () => {
      if (!core.shared) throw new Error('this daemon has no shared tier (config `shared:`): there is no farm to show');
      const hosts = await core.shared.cluster();
      return { self: core.shared.owner, available: hosts !== undefined, hosts: hosts ?? [] };
    },
    'POST /discard': async (body) => ({ discarded: await staging.discard(inMount(body)) }),
    'POST /pin': async (body) => pinner.pin(inMount(body)),
    'POST /unpin': async (body) => ({ unpinned: await pinner.unpin(inMount(body)) }),
    // assetfs locate (src/daemon/locate.ts): a path's platform id, and the path of a platform id.
    'POST /locate': async (body) => {
      const rel = inMount(body);
      const r = await core.vfs.locate(rel);
      return { ...r, path: o.mountpoint + rel, byIdPath: r.byIdPath === undefined ? undefined : o.mountpoint + r.byIdPath };
    },
    'POST /locate-id': async (body) => {
      const { source, id } = (body ?? {}) as { source?: unknown; id?: unknown };
      if (typeof source !== 'string' || typeof id !== 'string' || !source || !id) throw new Error('locate --id needs a source name and an id');
      return { path: o.mountpoint + (await core.vfs.pathOfId(source, id)) };
    },
    'GET /metrics': async () => new TextReply(metrics.contentType, await metrics.scrape()),
    ...cacheRoutes({
      mountpoint: o.mountpoint, vfs: core.vfs, cache: core.cache, invalidateKernel: (paths) => mounted.invalidate(paths),
      ...(core.shared ? { shareRefresh: (path: string) => core.shared!.metadata.refreshed(path, [...core.providers.keys()]) } : {}),
    }),
    ...faultRoutes(),
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
      staging.stop();
      await uploads.stop();
      await core.close();
      log.info('stopped');
    })());

  const reload = async (next: Config) => {
    await core.reload(next);
    uploads.providersChanged();
  };
  return { mountpoint: o.mountpoint, vfs: core.vfs, shared: core.shared, providers: core.providers, uploads, reload, stop };
}
