/**
 * Signed locators, minted once per object version and reused until shortly before they expire.
 *
 * Invariants:
 *  - A locator is handed out only while the margin rule of providers/common/expiring.ts allows
 *    (min(60 s, 25 % of its lifetime as seen here) before it expires), so a read never starts on a URL
 *    about to die. The mint map is its own (not an ExpiringCredential per key): entries are per object
 *    version, bounded by an LRU, and clear() must also drop mints under way.
 *  - One mint per (source, ref, version) at a time, however many readers ask; a caller's signal only
 *    stops that caller's wait, never the shared mint.
 *  - After clear() (new credentials), a mint that was already under way is not cached, and new callers
 *    start a fresh one.
 */
import { LRUCache } from 'lru-cache';
import type { ObjectVersion, Provider, Ref, SignedLocator } from '../core/types.js';
import { useUntil } from '../providers/common/expiring.js';
import { abortable } from '../util/abortable.js';


interface Cached {
  readonly loc: SignedLocator;
  /** Epoch ms after which this locator is no longer handed out. */
  readonly useUntil: number;
}

/** One mint under way; `promise` is set right after registration. */
interface Flight {
  promise?: Promise<SignedLocator>;
}

const keyOf = (source: string, ref: Ref, version: string) => `${source}\0${ref}\0${version}`;

/**
 * Locators shared by the hosts of a farm (src/farm/metadata.ts): asked before minting, told of every
 * mint (with the time until which it may be handed out) and of every locator a 401/403 refused.
 */
export interface LocatorShare {
  getLocator(obj: ObjectVersion): Promise<{ loc: SignedLocator; useUntil: number } | undefined>;
  putLocator(obj: ObjectVersion, loc: SignedLocator, useUntil: number): void;
  dropLocator(obj: ObjectVersion): void;
}

export interface LocatorCacheOptions {
  /** Fixed skew instead of the margin rule; tests use it. */
  skewMs?: number;
  /** Most locators remembered. Default 10,000. */
  maxEntries?: number;
  shared?: LocatorShare;
  /** Counts re-mints of locators whose lifetime ran out (assetfs_url_refreshes_total{reason="expired"}). */
  meterFor?(source: string): { urlRefresh(reason: 'expired'): void } | undefined;
}

export class LocatorCache {
  private readonly cached: LRUCache<string, Cached>;
  private readonly minting = new Map<string, Flight>();
  private mints = 0;

  constructor(private readonly opts: LocatorCacheOptions = {}) {
    this.cached = new LRUCache<string, Cached>({ max: opts.maxEntries ?? 10_000 });
  }

  async get(provider: Provider, obj: ObjectVersion, signal?: AbortSignal): Promise<SignedLocator> {
    signal?.throwIfAborted();
    const key = keyOf(obj.source, obj.ref, obj.version);
    const hit = this.cached.get(key);
    if (hit && Date.now() < hit.useUntil) return hit.loc;
    let flight = this.minting.get(key);
    if (!flight) {
      if (hit) this.opts.meterFor?.(obj.source)?.urlRefresh('expired');
      const started: Flight = {};
      this.minting.set(key, started);
      started.promise = this.mint(provider, obj, key, started);
      // Waiters handle the rejection; this keeps an abandoned mint from being an unhandled rejection.
      started.promise.catch(() => undefined);
      flight = started;
    }
    const pending = flight.promise as Promise<SignedLocator>;
    return abortable(pending, signal);
  }

  private async mint(provider: Provider, obj: ObjectVersion, key: string, flight: Flight): Promise<SignedLocator> {
    try {
      const shared = await this.opts.shared?.getLocator(obj);
      if (shared && shared.useUntil > Date.now()) {
        if (this.minting.get(key) === flight) this.cached.set(key, shared);
        return shared.loc;
      }
      const mintedAt = Date.now();
      this.mints++;
      const loc = await provider.locate(obj);
      // Still registered means no clear() came in between: the locator was minted with current credentials.
      if (this.minting.get(key) === flight) {
        const until = this.opts.skewMs === undefined ? useUntil(mintedAt, loc.expiresAt) : loc.expiresAt - this.opts.skewMs;
        if (until > Date.now()) {
          this.cached.set(key, { loc, useUntil: until });
          this.opts.shared?.putLocator(obj, loc, until);
        }
      }
      return loc;
    } finally {
      if (this.minting.get(key) === flight) this.minting.delete(key);
    }
  }

  /**
   * Forget the locator of one object version (a 401/403 said it is no longer good). With `stale`, only
   * that locator is forgotten: a fresher one minted meanwhile by another reader is kept.
   */
  invalidate(obj: ObjectVersion, stale?: SignedLocator): void {
    const key = keyOf(obj.source, obj.ref, obj.version);
    const hit = this.cached.peek(key);
    if (hit && (stale === undefined || hit.loc === stale)) {
      this.cached.delete(key);
      this.opts.shared?.dropLocator(obj);
    }
  }

  /** Forget the locators of every version of (source, ref). */
  invalidateRef(source: string, ref: Ref): void {
    const prefix = `${source}\0${ref}\0`;
    for (const key of [...this.cached.keys()]) if (key.startsWith(prefix)) this.cached.delete(key);
  }

  /** Forget every locator, or those of one source (its credentials changed). */
  clear(source?: string): void {
    if (source === undefined) {
      this.cached.clear();
      this.minting.clear();
      return;
    }
    const prefix = `${source}\0`;
    for (const key of [...this.cached.keys()]) if (key.startsWith(prefix)) this.cached.delete(key);
    for (const key of [...this.minting.keys()]) if (key.startsWith(prefix)) this.minting.delete(key);
  }

  stats(): { cached: number; mints: number } {
    return { cached: this.cached.size, mints: this.mints };
  }
}
