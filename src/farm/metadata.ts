/**
 * Shared metadata: folder listings (and with them every child's attributes) and signed URLs, shared
 * by the hosts of a farm so that N hosts do not list and mint N times; and invalidation by pub/sub, so
 * that a write, rename or delete through one host is seen by the others at once.
 *
 * Keys, under the farm's key prefix:
 *  - `ls:<hash(source, generation, ref)>`: a listing (JSON of the remote entries), expiring with the
 *    metadata TTL of the host that listed. `lsgen:<hash(source)>` is the source's generation: dropping
 *    every listing of a source (a finished upload, a refresh) is one INCR, not a scan.
 *  - `loc:<hash(source, ref, version)>`: a signed locator, expiring when the minting host would stop
 *    handing it out (its expiry minus a margin, src/read/locator-cache.ts). Only with
 *    `shared.locators` (the URLs carry read credentials).
 *  - channel `inval`: `{ from, source, ref? }` for every local invalidation, and `{ from, refresh }`
 *    for `assetfs refresh PATH` (a mount path, the same on every host): each host refreshes PATH as if
 *    it had been asked, the kernel's attributes included.
 *
 * Invariants:
 *  - A host reading a shared listing or locator keeps it no longer than Redis does (the key's own
 *    remaining TTL): sharing never makes anything older than one host's TTL would.
 *  - A listing that was being fetched when an invalidation of its source arrived (from this host or
 *    another) is not shared: the invalidation is never undone by a listing fetched before it.
 *  - Messages from this host are ignored on arrival (it already dropped its own entries).
 *  - Everything here is best effort: the shared tier unavailable means a miss, an unshared listing, an
 *    unsent message (other hosts then see the change after their TTL, as without the shared tier).
 */
import { createHash } from 'node:crypto';
import type { ObjectVersion, Ref, RemoteEntry, SignedLocator } from '../core/types.js';
import type { Logger } from '../util/logger.js';
import type { ListingShare } from '../vfs/dir-cache.js';
import type { LocatorShare } from '../read/locator-cache.js';
import { quiet, type GuardedStore } from './guarded-store.js';

export interface SharedMetadataOptions {
  store: GuardedStore;
  keyPrefix: string;
  owner: string;
  /** Share signed locators too (config shared.locators). */
  locators: boolean;
  log: Logger;
}

interface InvalidationMessage {
  from: string;
  source?: string;
  ref?: Ref;
  refresh?: string;
}

const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 32);

export interface SharedMetadataStats {
  listingHits: number;
  listingMisses: number;
  listingsShared: number;
  locatorHits: number;
  locatorMisses: number;
  invalidationsSent: number;
  invalidationsReceived: number;
}

export class SharedMetadata implements ListingShare, LocatorShare {
  private readonly listeners: ((source: string, ref?: Ref) => void)[] = [];
  private readonly refreshListeners: ((path: string) => void)[] = [];
  /** Invalidations seen per source (local and remote): a listing fetched across one is not shared. */
  private readonly epochs = new Map<string, number>();
  private readonly counters: SharedMetadataStats = { listingHits: 0, listingMisses: 0, listingsShared: 0, locatorHits: 0, locatorMisses: 0, invalidationsSent: 0, invalidationsReceived: 0 };
  private readonly channel: string;

  constructor(private readonly opts: SharedMetadataOptions) {
    this.channel = `${opts.keyPrefix}inval`;
  }

  /**
   * Subscribes to the farm's invalidations, waiting at most `waitMs` (a hung Redis must not hold the
   * start up). The client renews a subscription after a reconnection; one that never succeeded is tried
   * again whenever the breaker finds Redis back.
   */
  async start(waitMs: number): Promise<void> {
    this.opts.store.breaker.onRecovered(() => void this.subscribe());
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.subscribe(), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  private subscribed: Promise<void> | undefined;

  private subscribe(): Promise<void> {
    this.subscribed ??= this.opts.store.subscribe(this.channel, (m) => this.received(m)).catch((e: unknown) => {
      this.subscribed = undefined;
      this.opts.log.warn({ err: e instanceof Error ? e.message : String(e) }, "shared tier: not subscribed to invalidations (yet); other hosts' changes show after the metadata TTL");
    });
    return this.subscribed;
  }

  /** `fn` is called for every invalidation another host made (drop the local copy, do not republish). */
  onRemoteInvalidation(fn: (source: string, ref?: Ref) => void): void {
    this.listeners.push(fn);
  }

  /** `fn` is called with the mount path of every `assetfs refresh` run on another host. */
  onRemoteRefresh(fn: (path: string) => void): void {
    this.refreshListeners.push(fn);
  }

  /**
   * `assetfs refresh PATH` on this host, before it refreshes locally: the shared listings of PATH's
   * source (of every source in `sources` for the mount's root) are dropped — one generation step, so
   * the refresh's own listings come from the platform — and the other hosts are told to refresh PATH.
   */
  async refreshed(path: string, sources: readonly string[]): Promise<void> {
    const first = path.split('/').find((p) => p !== '');
    const affected = first === undefined ? sources : sources.filter((s) => s === first);
    for (const source of affected) this.bump(source);
    if (!this.opts.store.available) return;
    try {
      for (const source of affected) await this.opts.store.incr(`${this.opts.keyPrefix}lsgen:${hash(source)}`);
      await this.opts.store.publish(this.channel, JSON.stringify({ from: this.opts.owner, refresh: path } satisfies InvalidationMessage));
      this.counters.invalidationsSent++;
    } catch (e) {
      this.opts.log.warn({ err: e instanceof Error ? e.message : String(e), path }, 'shared tier: the refresh reached this host only');
    }
  }

  stats(): SharedMetadataStats {
    return { ...this.counters };
  }

  epoch(source: string): number {
    return this.epochs.get(source) ?? 0;
  }

  private bump(source: string): void {
    this.epochs.set(source, this.epoch(source) + 1);
  }

  private received(text: string): void {
    let m: InvalidationMessage;
    try {
      m = JSON.parse(text) as InvalidationMessage;
    } catch {
      return;
    }
    if (m.from === this.opts.owner) return;
    if (typeof m.refresh === 'string') {
      this.counters.invalidationsReceived++;
      for (const fn of this.refreshListeners) fn(m.refresh);
      return;
    }
    if (typeof m.source !== 'string') return;
    this.counters.invalidationsReceived++;
    this.bump(m.source);
    const ref = typeof m.ref === 'string' ? m.ref : undefined;
    for (const fn of this.listeners) fn(m.source, ref);
  }

  private async listingKey(source: string, ref: Ref): Promise<string> {
    const gen = (await this.opts.store.getText(`${this.opts.keyPrefix}lsgen:${hash(source)}`)) ?? '0';
    return `${this.opts.keyPrefix}ls:${hash(source, gen, ref)}`;
  }

  // ListingShare (src/vfs/dir-cache.ts)

  async getListing(source: string, ref: Ref): Promise<{ entries: RemoteEntry[]; ttlMs: number; at: number } | undefined> {
    if (!this.opts.store.available) return undefined;
    try {
      const key = await this.listingKey(source, ref);
      const [text, ttl] = await Promise.all([this.opts.store.getText(key), this.opts.store.ttl(key)]);
      const listing = text !== undefined && ttl !== undefined && ttl > 0 ? parseListing(text) : undefined;
      if (!listing) {
        this.counters.listingMisses++;
        return undefined;
      }
      this.counters.listingHits++;
      return { ...listing, ttlMs: ttl! };
    } catch {
      return undefined;
    }
  }

  putListing(source: string, ref: Ref, entries: readonly RemoteEntry[], ttlMs: number, epochAtStart: number): void {
    if (!this.opts.store.available || this.epoch(source) !== epochAtStart) return;
    void (async () => {
      const key = await this.listingKey(source, ref);
      if (this.epoch(source) !== epochAtStart) return;
      await this.opts.store.set(key, JSON.stringify({ at: Date.now(), entries }), ttlMs);
      this.counters.listingsShared++;
    })().catch(() => undefined);
  }

  invalidated(source: string, ref?: Ref): void {
    this.bump(source);
    if (!this.opts.store.available) return;
    void (async () => {
      if (ref === undefined) await this.opts.store.incr(`${this.opts.keyPrefix}lsgen:${hash(source)}`);
      else await this.opts.store.del(await this.listingKey(source, ref));
      const m: InvalidationMessage = { from: this.opts.owner, source, ...(ref !== undefined ? { ref } : {}) };
      await this.opts.store.publish(this.channel, JSON.stringify(m));
      this.counters.invalidationsSent++;
    })().catch((e: unknown) => this.opts.log.debug({ err: e instanceof Error ? e.message : String(e), source }, 'shared tier: invalidation not shared'));
  }

  // LocatorShare (src/read/locator-cache.ts)

  private locatorKey(obj: ObjectVersion): string {
    return `${this.opts.keyPrefix}loc:${hash(obj.source, obj.ref, obj.version)}`;
  }

  async getLocator(obj: ObjectVersion): Promise<{ loc: SignedLocator; useUntil: number } | undefined> {
    if (!this.opts.locators || !this.opts.store.available) return undefined;
    try {
      const key = this.locatorKey(obj);
      const [text, ttl] = await Promise.all([this.opts.store.getText(key), this.opts.store.ttl(key)]);
      const loc = text !== undefined && ttl !== undefined && ttl > 0 ? parseLocator(text) : undefined;
      if (!loc) {
        this.counters.locatorMisses++;
        return undefined;
      }
      this.counters.locatorHits++;
      return { loc, useUntil: Date.now() + ttl! };
    } catch {
      return undefined;
    }
  }

  putLocator(obj: ObjectVersion, loc: SignedLocator, useUntil: number): void {
    const ttl = useUntil - Date.now();
    // A locator that never expires (Infinity) is kept a day: Redis needs a finite TTL, and a day is plenty.
    const px = Number.isFinite(ttl) ? Math.round(ttl) : 24 * 3_600_000;
    if (!this.opts.locators || !this.opts.store.available || px < 1_000) return;
    void this.opts.store.set(this.locatorKey(obj), JSON.stringify({ ...loc, expiresAt: Number.isFinite(loc.expiresAt) ? loc.expiresAt : null }), px).catch(() => undefined);
  }

  dropLocator(obj: ObjectVersion): void {
    if (!this.opts.locators || !this.opts.store.available) return;
    void quiet(this.opts.store.del(this.locatorKey(obj)), undefined);
  }
}

/** A stored listing: its entries, and when it was listed (the age of its negative answers). */
function parseListing(text: string): { entries: RemoteEntry[]; at: number } | undefined {
  try {
    const doc = JSON.parse(text) as { at?: unknown; entries?: unknown };
    const v = doc.entries;
    if (!Array.isArray(v) || typeof doc.at !== 'number') return undefined;
    for (const e of v) {
      const r = e as Partial<RemoteEntry>;
      if (typeof r?.name !== 'string' || (r.kind !== 'file' && r.kind !== 'dir') || typeof r.ref !== 'string' || typeof r.size !== 'number' || typeof r.mtimeMs !== 'number' || typeof r.version !== 'string') return undefined;
    }
    return { entries: v as RemoteEntry[], at: doc.at };
  } catch {
    return undefined;
  }
}

function parseLocator(text: string): SignedLocator | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v['url'] !== 'string') return undefined;
    return { ...(v as unknown as SignedLocator), expiresAt: typeof v['expiresAt'] === 'number' ? v['expiresAt'] : Infinity };
  } catch {
    return undefined;
  }
}
