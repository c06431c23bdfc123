/**
 * Directory listings with a TTL. One listing per (source, dir ref), fetched once however many
 * lookups ask at the same moment; names already mapped to safe local names (names.ts). Attributes of
 * children come from the listing, so `ls -l` costs one listing and no per-file requests.
 *
 * Negative lookups: a name missing from a listing is "no such name" for `negativeTtlMs` after that
 * listing was fetched (metadataNegativeTtl, shorter than the listing's own TTL by default); a lookup of
 * a missing name in an older listing fetches the listing again. A file created remotely therefore
 * appears to lookups (stat, open) within metadataNegativeTtl, while names that exist are answered
 * from the listing for the whole metadataTtl.
 *
 * Lookups are counted (hit: found in a cached listing; negative: missing, answered from a cached
 * listing; miss: the listing had to be fetched) for assetfs_metadata_lookups_total.
 */
import { LRUCache } from 'lru-cache';
import type { Provider, Ref, RemoteEntry } from '../core/types.js';
import { retry } from '../util/retry.js';
import { mapListing } from './names.js';

export type Listing = ReadonlyMap<string, RemoteEntry>;

interface Fetched {
  readonly entries: Listing;
  /** Epoch ms at which the listing arrived: the age of its negative answers. */
  readonly at: number;
}

interface Ctx {
  provider: Provider;
  ref: Ref;
  ttlMs: number;
}

/**
 * Listings shared by the hosts of a farm (src/farm/metadata.ts). A listing read from it is kept here
 * no longer than it has left there, and its negative answers age from when it was listed; a listing
 * fetched here is shared unless its source was invalidated meanwhile (`epoch` changed); every
 * invalidation here is passed on to the other hosts.
 */
export interface ListingShare {
  getListing(source: string, ref: Ref): Promise<{ entries: RemoteEntry[]; ttlMs: number; at: number } | undefined>;
  putListing(source: string, ref: Ref, entries: readonly RemoteEntry[], ttlMs: number, epochAtStart: number): void;
  epoch(source: string): number;
  invalidated(source: string, ref?: Ref): void;
}

export interface DirCacheOptions {
  /** Most listings kept at once (each may be large). */
  maxListings?: number;
  /** How long listing retries transient faults before failing. */
  maxRetryTimeMs: number;
  /** How long a name missing from a listing stays "no such name" (metadataNegativeTtl). Default 5 s. */
  negativeTtlMs?: number;
  shared?: ListingShare;
}

const key = (source: string, ref: Ref) => `${source}\0${ref}`;

export class DirCache {
  private readonly cache: LRUCache<string, Fetched, Ctx>;
  private readonly negativeTtlMs: number;
  /** Name lookups so far, by how they were answered. */
  readonly lookups = { hit: 0, miss: 0, negative: 0 };
  /** Keys whose listing is being fetched. */
  private readonly loading = new Set<string>();

  constructor(private readonly opts: DirCacheOptions) {
    this.negativeTtlMs = opts.negativeTtlMs ?? 5_000;
    this.cache = new LRUCache<string, Fetched, Ctx>({
      max: opts.maxListings ?? 4096,
      ttlAutopurge: false,
      allowStale: false,
      fetchMethod: async (k, _stale, { context, signal, options }) => {
        this.loading.add(k);
        try {
          const shared = await this.opts.shared?.getListing(context.provider.name, context.ref);
          if (shared) {
            options.ttl = Math.max(1, Math.min(context.ttlMs, shared.ttlMs));
            return { entries: mapListing(shared.entries), at: Math.min(Date.now(), shared.at) };
          }
          return await this.load(context, signal);
        } finally {
          this.loading.delete(k);
        }
      },
    });
  }

  private async load({ provider, ref, ttlMs }: Ctx, signal: AbortSignal): Promise<Fetched> {
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
    return { entries: mapListing(entries), at: Date.now() };
  }

  private async fetch(provider: Provider, ref: Ref, ttlMs: number, forceRefresh = false): Promise<Fetched> {
    for (let attempt = 1; ; attempt++) {
      try {
        const fetched = await this.cache.fetch(key(provider.name, ref), { context: { provider, ref, ttlMs }, ttl: Math.max(1, ttlMs), forceRefresh });
        if (!fetched) throw new Error('listing fetch returned nothing');
        return fetched;
      } catch (e) {
        // invalidate() while the listing was under way aborts it (it may predate the change): list again.
        if (attempt < 3 && e instanceof Error && e.message === 'deleted') continue;
        throw e;
      }
    }
  }

  /** The listing of `ref`, from cache when younger than `ttlMs`. */
  async get(provider: Provider, ref: Ref, ttlMs: number): Promise<Listing> {
    return (await this.fetch(provider, ref, ttlMs)).entries;
  }

  /** The entry `name` of the directory `ref`, or undefined when there is none (see "Negative lookups"). */
  async lookup(provider: Provider, ref: Ref, name: string, ttlMs: number): Promise<RemoteEntry | undefined> {
    const cached = this.cache.get(key(provider.name, ref));
    if (cached) {
      const entry = cached.entries.get(name);
      if (entry) {
        this.lookups.hit++;
        return entry;
      }
      if (Date.now() - cached.at < this.negativeTtlMs) {
        this.lookups.negative++;
        return undefined;
      }
    }
    this.lookups.miss++;
    return (await this.fetch(provider, ref, ttlMs, cached !== undefined)).entries.get(name);
  }

  /** The cached listing without fetching, if still fresh. */
  peek(source: string, ref: Ref): Listing | undefined {
    return this.cache.get(key(source, ref))?.entries;
  }

  /**
   * Forget the listing of `ref` and (`recursive`) every cached listing below it, reached through its
   * folders, stale ones included. Returns the paths, relative to `ref`'s folder, of the entries those
   * listings held, and the listing of `ref` itself as it was.
   */
  forgetTree(source: string, ref: Ref, recursive = true): { paths: string[]; listing: Listing | undefined } {
    const paths: string[] = [];
    const seen = new Set<Ref>();
    const walk = (dirRef: Ref, prefix: string): Listing | undefined => {
      if (seen.has(dirRef)) return undefined;
      seen.add(dirRef);
      const k = key(source, dirRef);
      const fetched = this.cache.peek(k, { allowStale: true });
      // A listing being fetched right now is left to arrive: deleting it would fail its waiters.
      if (!this.loading.has(k)) this.cache.delete(k);
      for (const [name, e] of fetched?.entries ?? []) {
        paths.push(`${prefix}${name}`);
        if (recursive && e.kind === 'dir') walk(e.ref, `${prefix}${name}/`);
      }
      return fetched?.entries;
    };
    const listing = walk(ref, '');
    return { paths, listing };
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
