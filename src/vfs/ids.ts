/**
 * Platform ids in the mount (docs/semantics.md#platform-ids): the read-only `user.assetfs.*` extended
 * attributes of an entry, the `.by-id/` folder at the root of each source that has ids, and the way
 * back from an id to the entry's path.
 *
 * Invariants:
 *  - `.by-id/<name>` names the id `nameToId(name)`: '/' is written `%2F`, '%' `%25` and NUL `%00`, so any
 *    id is one path segment (S3 keys hold slashes); nothing else is escaped.
 *  - An id resolves through Provider.byId() (one API call, no listing), once per metadata TTL however
 *    many lookups ask at once; the entry it gives has the listed ref and version, so a read through
 *    `.by-id/` reads the same ObjectVersion (and cache blocks) as a read through the path.
 *  - An id the platform does not know is "no such id" for `negativeTtlMs` (metadataNegativeTtl), like
 *    a name missing from a listing (dir-cache.ts): a tool probing ids does not cost a call per probe,
 *    and an object created on the platform is found by id within that time.
 *  - forget() leaves a lookup in flight to finish (as the dir cache does with listings): deleting it
 *    would fail the readers waiting on it, and what it brings is fresh already.
 *  - `.by-id/` lists nothing (ids are looked up, never enumerated) and takes no writes.
 */
import { LRUCache } from 'lru-cache';
import type { Provider, Ref, RemoteEntry } from '../core/types.js';
import { FsError, NotFoundError } from '../core/errors.js';
import { retry } from '../util/pacer.js';
import type { DirCache } from './dir-cache.js';

export const BY_ID = '.by-id';
export const XATTR_PREFIX = 'user.assetfs.';
export const XATTR = {
  source: `${XATTR_PREFIX}source`,
  id: `${XATTR_PREFIX}id`,
  version: `${XATTR_PREFIX}version`,
  status: `${XATTR_PREFIX}status`,
  contentType: `${XATTR_PREFIX}contentType`,
} as const;

/** The `.by-id/` name of an id: one path segment. */
export function idToName(id: string): string {
  return id.replace(/%/g, '%25').replace(/\//g, '%2F').replace(/\0/g, '%00');
}

/** The id a `.by-id/` name stands for (the inverse of idToName, in one pass). */
export function nameToId(name: string): string {
  return name.replace(/%(25|2F|00)/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export function idsReadOnly(path: string): FsError {
  return new FsError('EROFS', `${path}: ${BY_ID}/ is read-only; write through the path that \`assetfs locate --id\` prints`);
}

/** Writes under a source's `.by-id/` are EROFS: an entry found by id has a path of its own. */
export function refuseIdWrite(path: string, providers: ReadonlyMap<string, Provider>): void {
  const parts = path.split('/').filter(Boolean);
  if (parts[1] === BY_ID && providers.get(parts[0]!)?.byId) throw idsReadOnly(path);
}

/** The attributes of a source's root folder, or of an entry in it, in the order getfattr lists them. */
export function xattrsOf(provider: Provider, entry?: RemoteEntry): Map<string, string> {
  const out = new Map<string, string>([[XATTR.source, provider.name]]);
  if (!entry) return out;
  const id = provider.idOf?.(entry);
  if (id !== undefined) out.set(XATTR.id, id);
  if (entry.version) out.set(XATTR.version, entry.version);
  if (entry.status) out.set(XATTR.status, entry.status);
  if (entry.contentType) out.set(XATTR.contentType, entry.contentType);
  return out;
}

/** What `assetfs locate PATH` shows (mount-relative `byIdPath`). */
export interface Located {
  readonly source: string;
  readonly id?: string;
  readonly version?: string;
  readonly status?: string;
  readonly contentType?: string;
  readonly byIdPath?: string;
}

export function located(path: string, attrs: ReadonlyMap<string, string>): Located {
  const source = attrs.get(XATTR.source);
  if (source === undefined) throw new FsError('EINVAL', `${path} is not inside a source`);
  const id = attrs.get(XATTR.id);
  return {
    source, id, version: attrs.get(XATTR.version), status: attrs.get(XATTR.status), contentType: attrs.get(XATTR.contentType),
    byIdPath: id === undefined ? undefined : `/${source}/${BY_ID}/${idToName(id)}`,
  };
}

interface Ctx {
  provider: Provider;
  id: string;
}

export interface IdCacheOptions {
  /** How long a lookup retries transient faults before failing. */
  maxRetryTimeMs: number;
  /** How long an id found missing stays "no such id" (metadataNegativeTtl). Default 5 s. */
  negativeTtlMs?: number;
  /** Most ids kept at once (and, separately, most missing ids). */
  max?: number;
}

/** Entries found by id, kept for the source's metadata TTL; one byId() call per id however many ask. */
export class IdCache {
  private readonly cache: LRUCache<string, RemoteEntry, Ctx>;
  /** Ids the platform answered "not found", for negativeTtlMs. */
  private readonly missing: LRUCache<string, true>;
  /** Keys whose lookup is in flight. */
  private readonly loading = new Set<string>();

  constructor(opts: IdCacheOptions) {
    this.cache = new LRUCache<string, RemoteEntry, Ctx>({
      max: opts.max ?? 4096,
      ttlAutopurge: false,
      allowStale: false,
      fetchMethod: async (k, _stale, { context: { provider, id }, signal }) => {
        this.loading.add(k);
        try {
          return await retry(() => provider.byId!(id, signal), { maxTimeMs: opts.maxRetryTimeMs, signal });
        } finally {
          this.loading.delete(k);
        }
      },
    });
    this.missing = new LRUCache<string, true>({ max: opts.max ?? 4096, ttl: Math.max(1, opts.negativeTtlMs ?? 5_000), ttlAutopurge: false });
  }

  /** The entry of `id` in `provider`'s source. NotFoundError when the source has no ids or no such id. */
  async get(provider: Provider, id: string, ttlMs: number): Promise<RemoteEntry> {
    if (!provider.byId) throw new NotFoundError(`${provider.name} has no ids`);
    const k = `${provider.name}\0${id}`;
    if (this.missing.has(k)) throw new NotFoundError(`${provider.name}: no id ${id}`);
    let e: RemoteEntry | undefined;
    try {
      e = await this.cache.fetch(k, { context: { provider, id }, ttl: Math.max(1, ttlMs) });
    } catch (err) {
      if (err instanceof NotFoundError) this.missing.set(k, true);
      throw err;
    }
    if (!e) throw new NotFoundError(`${provider.name}: no id ${id}`);
    return e;
  }

  /**
   * Forget one id (its object changed or went away), or every id of a source, missing ones included.
   * Returns the ids forgotten that had an entry, with it (their `.by-id/` paths may be in the kernel).
   */
  forget(source: string, id?: string): Array<{ id: string; entry: RemoteEntry }> {
    const prefix = `${source}\0`;
    const keys = id !== undefined ? [`${prefix}${id}`] : [...this.cache.keys()].filter((k) => k.startsWith(prefix));
    const gone: Array<{ id: string; entry: RemoteEntry }> = [];
    for (const k of keys) {
      const entry = this.cache.peek(k, { allowStale: true });
      if (entry) gone.push({ id: k.slice(prefix.length), entry });
      if (!this.loading.has(k)) this.cache.delete(k);
    }
    if (id !== undefined) this.missing.delete(`${prefix}${id}`);
    else for (const k of [...this.missing.keys()]) if (k.startsWith(prefix)) this.missing.delete(k);
    return gone;
  }

  clear(): void {
    for (const k of [...this.cache.keys()]) if (!this.loading.has(k)) this.cache.delete(k);
    this.missing.clear();
  }
}

/**
 * The local names from the source root down to `entry`: its ancestry (Provider.ancestry) matched ref by
 * ref against the listings of those folders. A listing that does not show the next ref is fetched once
 * more (it may predate the object); still absent, the id has no path in the mount.
 */
export async function namesDownTo(
  dirs: DirCache,
  provider: Provider,
  entry: RemoteEntry,
  ttlMs: number,
  signal?: AbortSignal,
): Promise<string[]> {
  if (!provider.ancestry) throw new FsError('ENOTSUP', `${provider.name}: paths cannot be found from ids`);
  const refs = [...(await provider.ancestry(entry, signal)), entry.ref];
  const names: string[] = [];
  let dir: Ref = '';
  for (const ref of refs) {
    let name = find(await dirs.get(provider, dir, ttlMs), ref);
    if (name === undefined) {
      dirs.invalidate(provider.name, dir);
      name = find(await dirs.get(provider, dir, ttlMs), ref);
    }
    if (name === undefined) throw new NotFoundError(`${provider.name}: ${entry.name} is not listed where the platform places it (${names.join('/') || 'the source root'})`);
    names.push(name);
    dir = ref;
  }
  return names;
}

function find(listing: ReadonlyMap<string, RemoteEntry>, ref: Ref): string | undefined {
  for (const [name, e] of listing) if (e.ref === ref) return name;
  return undefined;
}
