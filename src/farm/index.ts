/**
 * The shared tier of a farm (config `shared:`), assembled: the Redis engine behind its circuit
 * breaker, and the protocols on it. The daemon loads this module only when `shared:` is set, so
 * without it nothing here (nor the redis package) is loaded and nothing changes.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { SharedConfig } from '../config/schema.js';
import type { Logger } from '../util/logger.js';
import { CircuitBreaker, type BreakerStatus } from './breaker.js';
import { GuardedStore, quiet } from './guarded-store.js';
import { RedisStore } from './redis-store.js';
import { SharedBlocks } from './shared-blocks.js';
import { SharedLeases } from './leases.js';
import { SharedMetadata } from './metadata.js';
import { SharedTierCache, type LocalTiers } from './shared-tier-cache.js';
import type { SharedBlockStats, SharedStore } from './types.js';
import { clusterView, Heartbeat, type ClusterHost, type HostReport } from './heartbeat.js';

export interface SharedTierStatus {
  /** The Redis address, credentials redacted. */
  readonly redis: string;
  readonly host: string;
  readonly breaker: BreakerStatus;
  readonly blocks: SharedBlockStats & { queuedBytes: number; hitRate: number };
  /** Redis's memory, when it answered. */
  readonly memory?: { used: number; max: number; policy: string };
}

export interface SharedTierOptions {
  log: Logger;
  /** Test seam: another engine instead of Redis. */
  engine?: SharedStore;
}

export class SharedTier {
  readonly store: GuardedStore;
  readonly blocks: SharedBlocks;
  /** Upload leases of the farm (leases.ts). */
  readonly leases: SharedLeases;
  /** Shared listings, signed URLs and invalidation (metadata.ts). */
  readonly metadata: SharedMetadata;
  /** This daemon's id: the value of its claims and leases; unique per process. */
  readonly owner: string;
  readonly host: string;
  private heartbeat: Heartbeat | undefined;

  constructor(
    readonly config: SharedConfig,
    engine: SharedStore,
    private readonly log: Logger,
  ) {
    this.host = config.hostName ?? hostname();
    this.owner = `${this.host}/${process.pid}/${randomBytes(4).toString('hex')}`;
    const breaker = new CircuitBreaker({ timeoutMs: config.timeout, probe: () => engine.probe(), log });
    this.store = new GuardedStore(engine, breaker);
    this.metadata = new SharedMetadata({ store: this.store, keyPrefix: config.keyPrefix, owner: this.owner, locators: config.locators, log });
    this.leases = new SharedLeases({ store: this.store, keyPrefix: config.keyPrefix, owner: this.owner, ttlMs: config.leaseTtl, log });
    this.blocks = new SharedBlocks({ store: this.store, keyPrefix: config.keyPrefix, owner: this.owner, lockTtlMs: config.lockTtl, writeQueueBytes: config.writeQueue, log });
  }

  /** The host's tiers with this shared tier behind them. */
  cacheFor(local: LocalTiers): SharedTierCache {
    return new SharedTierCache(local, this.blocks);
  }

  /** Reports this host to the farm every `shared.heartbeat` (status --cluster). */
  startHeartbeat(report: () => HostReport): void {
    this.heartbeat ??= new Heartbeat({ store: this.store, keyPrefix: this.config.keyPrefix, host: this.host, owner: this.owner, periodMs: this.config.heartbeat, report, log: this.log });
    this.heartbeat.start();
  }

  /** Every host of the farm as its last heartbeat shows it; undefined while the shared tier is unavailable. */
  cluster(): Promise<ClusterHost[] | undefined> {
    return clusterView(this.store, this.config.keyPrefix);
  }

  /** Figures without I/O (a metrics series can read them at any time). */
  stats(): { breaker: BreakerStatus; blocks: SharedTierStatus['blocks'] } {
    const b = this.blocks.stats();
    const lookups = b.hits + b.misses;
    return { breaker: this.store.breaker.status(), blocks: { ...b, hitRate: lookups ? b.hits / lookups : 0 } };
  }

  async status(): Promise<SharedTierStatus> {
    const memory = this.store.available ? await quiet(this.store.memory(), undefined) : undefined;
    return { redis: redactAddress(this.config.redis), host: this.host, ...this.stats(), ...(memory ? { memory } : {}) };
  }

  async close(): Promise<void> {
    await this.heartbeat?.stop();
    await Promise.race([this.blocks.flushed(), new Promise((r) => setTimeout(r, 2_000))]);
    await this.store.close().catch((e: unknown) => this.log.debug({ err: e }, 'shared tier: close failed'));
  }
}

/** Connects (in the background when Redis is not there yet: the breaker finds it later). */
export async function startSharedTier(config: SharedConfig, o: SharedTierOptions): Promise<SharedTier> {
  const log = o.log.child({ c: 'shared' });
  let engine = o.engine;
  let failedAtStart = false;
  if (!engine) {
    const redis = new RedisStore(config.redis, log, config.keyPrefix);
    failedAtStart = !(await redis.connect(config.timeout));
    engine = redis;
  }
  const tier = new SharedTier(config, engine, log);
  await tier.metadata.start(config.timeout);
  if (failedAtStart || !(await tier.store.probe().then(() => true, () => false))) tier.store.breaker.trip(new Error('Redis not reachable at start'));
  log.info({ redis: redactAddress(config.redis), host: tier.host, available: tier.store.available }, 'shared tier configured');
  return tier;
}

function redactAddress(a: string): string {
  return a.replace(/\/\/([^@/]*)@/, '//[redacted]@');
}
