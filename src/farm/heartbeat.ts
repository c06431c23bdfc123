/**
 * The farm in one view: every host writes a record of itself to the shared tier each `shared.heartbeat`
 * period, and `assetfs status --cluster` (any host) reads them all.
 *
 * Keys: one hash `<prefix>hosts`, a field per daemon (its owner id, unique per process) holding the
 * host's record as JSON.
 *
 * Invariants:
 *  - A record carries the time it was written and the writer's period: a host whose record is older
 *    than GONE_PERIODS of its own period is shown as gone (killed, cut off, or its Redis calls failing),
 *    whatever the reader's clock drift within a period.
 *  - A clean stop writes a last record marked `stopped` (shown as such, not as gone).
 *  - Records silent for longer than FORGET_AFTER_MS are deleted by the next reader: the hash does not
 *    grow with every restart of every host.
 *  - A heartbeat never throws and never waits on a failing Redis (the breaker answers at once).
 */
import type { Logger } from '../util/logger.js';
import { quiet, type GuardedStore } from './guarded-store.js';

export const GONE_PERIODS = 3;
const FORGET_AFTER_MS = 24 * 3600_000;

/** What a host tells the farm about itself (plain figures, no paths of files, no secrets). */
export interface HostReport {
  readonly mountpoint: string;
  readonly cache: { memoryBytes: number; memoryLimit: number; diskBytes: number; diskLimit: number; hits: number; misses: number };
  readonly shared: { state: string; hits: number; misses: number };
  readonly uploads: { uploading: number; queued: number; failed: number };
}

export interface HostRecord extends HostReport {
  readonly host: string;
  readonly owner: string;
  readonly pid: number;
  /** ISO time the record was written. */
  readonly time: string;
  readonly periodMs: number;
  readonly stopped?: boolean;
}

export interface ClusterHost extends HostRecord {
  readonly state: 'up' | 'gone' | 'stopped';
  /** Seconds since the host last reported. */
  readonly silentSec: number;
}

export interface HeartbeatOptions {
  store: GuardedStore;
  keyPrefix: string;
  host: string;
  owner: string;
  periodMs: number;
  report(): HostReport;
  log: Logger;
}

export const hostsKey = (keyPrefix: string) => `${keyPrefix}hosts`;

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: HeartbeatOptions) {}

  start(): void {
    if (this.timer) return;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.opts.periodMs);
    this.timer.unref();
  }

  /** Stops beating and leaves a last record marked stopped. */
  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beat(true);
  }

  private async beat(stopped = false): Promise<void> {
    const o = this.opts;
    let report: HostReport;
    try {
      report = o.report();
    } catch (e) {
      o.log.debug({ err: e }, 'heartbeat: no report');
      return;
    }
    const record: HostRecord = { host: o.host, owner: o.owner, pid: process.pid, time: new Date().toISOString(), periodMs: o.periodMs, ...report, ...(stopped ? { stopped } : {}) };
    await quiet(o.store.hset(hostsKey(o.keyPrefix), { [o.owner]: JSON.stringify(record) }), undefined);
  }
}

/** Every host's last record, with its state as of `now`; undefined when the shared tier is unavailable. */
export async function clusterView(store: GuardedStore, keyPrefix: string, now = Date.now()): Promise<ClusterHost[] | undefined> {
  let fields: Record<string, string>;
  try {
    fields = await store.hgetall(hostsKey(keyPrefix));
  } catch {
    return undefined;
  }
  const hosts: ClusterHost[] = [];
  for (const [owner, json] of Object.entries(fields)) {
    let r: HostRecord;
    try {
      r = JSON.parse(json) as HostRecord;
    } catch {
      await quiet(store.hdel(hostsKey(keyPrefix), owner), undefined);
      continue;
    }
    const silentMs = Math.max(0, now - Date.parse(r.time));
    if (!(silentMs <= FORGET_AFTER_MS)) {
      await quiet(store.hdel(hostsKey(keyPrefix), owner), undefined);
      continue;
    }
    const state = r.stopped ? 'stopped' : silentMs > GONE_PERIODS * r.periodMs ? 'gone' : 'up';
    hosts.push({ ...r, state, silentSec: Math.round(silentMs / 1000) });
  }
  return hosts.sort((a, b) => a.host.localeCompare(b.host) || a.owner.localeCompare(b.owner));
}
