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
}

export interface DirCacheOptions {
  /** Most listings kept at once (each may be large). */
  maxListings?: number;
  /** How long listing retries transient faults before failing. */
  maxRetryTimeMs: number;
}

const key = (source: string, ref: Ref) => `${source}\0${ref}`;

export class DirCache {
  private readonly cache: LRUCache<string, Listing, Ctx>;

  constructor(private readonly opts: DirCacheOptions) {
    this.cache = new LRUCache<string, Listing, Ctx>({
      max: opts.maxListings ?? 4096,
      ttlAutopurge: false,
      allowStale: false,
      fetchMethod: async (_k, _stale, { context, signal }) => this.load(context, signal),
    });
  }

  private async load({ provider, ref }: Ctx, signal: AbortSignal): Promise<Listing> {
    return retry(
      async () => {
        const entries: RemoteEntry[] = [];
        for await (const e of provider.list(ref, signal)) entries.push(e);
        return mapListing(entries);
      },
      { maxTimeMs: this.opts.maxRetryTimeMs, signal },
    );
  }

  /** The listing of `ref`, from cache when younger than `ttlMs`. */
  async get(provider: Provider, ref: Ref, ttlMs: number): Promise<Listing> {
    const listing = await this.cache.fetch(key(provider.name, ref), { context: { provider, ref }, ttl: Math.max(1, ttlMs) });
    if (!listing) throw new Error('listing fetch returned nothing');
    return listing;
  }

  /** The cached listing without fetching, if still fresh. */
  peek(source: string, ref: Ref): Listing | undefined {
    return this.cache.get(key(source, ref));
  }

  /** Forget one listing, or every listing of a source when `ref` is undefined. */
  invalidate(source: string, ref?: Ref): void {
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
