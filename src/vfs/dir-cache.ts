/**
 * Directory listings with a TTL. One listing per (source, dir ref), fetched once however many
 * lookups ask at the same moment; names already mapped to safe local names (names.ts). Attributes of
 * children come from the listing, so `ls -l` costs one listing and no per-file requests.
 * A name missing from a fresh listing is a cached negative lookup: it costs nothing until the TTL ends.
 */
import { LRUCache } from 'lru-cache';
import type { Provider, Ref, RemoteEntry } from '../core/types.js';
import { retry } from '../util/pacer.js';
import { mapListing } from './names.js';

export type Listing = ReadonlyMap<string, RemoteEntry>;

interface Ctx {
  provider: Provider;
  ref: Ref;
  ttlMs: number;
}

/**
 * Listings shared by the hosts of a farm (src/shared/metadata.ts). A listing read from it is kept here
 * no longer than it has left there; a listing fetched here is shared unless its source was invalidated
 * meanwhile (`epoch` changed); every invalidation here is passed on to the other hosts.
 */
export interface ListingShare {
  getListing(source: string, ref: Ref): Promise<{ entries: RemoteEntry[]; ttlMs: number } | undefined>;
  putListing(source: string, ref: Ref, entries: readonly RemoteEntry[], ttlMs: number, epochAtStart: number): void;
  epoch(source: string): number;
  invalidated(source: string, ref?: Ref): void;
}

export interface DirCacheOptions {
  /** Most listings kept at once (each may be large). */
  maxListings?: number;
  /** How long listing retries transient faults before failing. */
  maxRetryTimeMs: number;
  shared?: ListingShare;
}

const key = (source: string, ref: Ref) => `${source}\0${ref}`;

export class DirCache {
  private readonly cache: LRUCache<string, Listing, Ctx>;

  constructor(private readonly opts: DirCacheOptions) {
    this.cache = new LRUCache<string, Listing, Ctx>({
      max: opts.maxListings ?? 4096,
      ttlAutopurge: false,
      allowStale: false,
      fetchMethod: async (_k, _stale, { context, signal, options }) => {
        const shared = await this.opts.shared?.getListing(context.provider.name, context.ref);
        if (shared) {
          options.ttl = Math.max(1, Math.min(context.ttlMs, shared.ttlMs));
          return mapListing(shared.entries);
        }
        return this.load(context, signal);
      },
    });
  }

  private async load({ provider, ref, ttlMs }: Ctx, signal: AbortSignal): Promise<Listing> {
    const epoch = this.opts.shared?.epoch(provider.name) ?? 0;
    const entries = await retry(
      async () => {
        const entries: RemoteEntry[] = [];
        for await (const e of provider.list(ref, signal)) entries.push(e);
        return entries;
      },
      { maxTimeMs: this.opts.maxRetryTimeMs, signal },
    );
    this.opts.shared?.putListing(provider.name, ref, entries, ttlMs, epoch);
    return mapListing(entries);
  }

  /** The listing of `ref`, from cache when younger than `ttlMs`. */
  async get(provider: Provider, ref: Ref, ttlMs: number): Promise<Listing> {
    for (let attempt = 1; ; attempt++) {
      try {
        const listing = await this.cache.fetch(key(provider.name, ref), { context: { provider, ref, ttlMs }, ttl: Math.max(1, ttlMs) });
        if (!listing) throw new Error('listing fetch returned nothing');
        return listing;
      } catch (e) {
        // invalidate() while the listing was under way aborts it (it may predate the change): list again.
        if (attempt < 3 && e instanceof Error && e.message === 'deleted') continue;
        throw e;
      }
    }
  }

  /** The cached listing without fetching, if still fresh. */
  peek(source: string, ref: Ref): Listing | undefined {
    return this.cache.get(key(source, ref));
  }

  /** Forget one listing, or every listing of a source when `ref` is undefined; the other hosts of a farm too. */
  invalidate(source: string, ref?: Ref): void {
    this.opts.shared?.invalidated(source, ref);
    this.forget(source, ref);
  }

  /** invalidate() here only: another host of the farm made the change and told the others. */
  forget(source: string, ref?: Ref): void {
    if (ref !== undefined) {
      this.cache.delete(key(source, ref));
      return;
    }
    const prefix = `${source}\0`;
    for (const k of [...this.cache.keys()]) if (k.startsWith(prefix)) this.cache.delete(k);
  }

  clear(): void {
    this.cache.clear();
  }

  get size(): number {
    return this.cache.size;
  }
}
