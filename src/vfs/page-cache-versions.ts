/**
 * Which object version the kernel's page cache may hold for each path, so that each open can tell the
 * kernel to keep the pages it has (FOPEN_KEEP_CACHE) exactly when they are bytes of the version this
 * open reads, and to drop them otherwise. libfuse's auto_cache could only guess from size and mtime,
 * which a replacement of the same size within the same second leaves unchanged.
 *
 * Invariant: an entry (path → V) exists only while every read the kernel was sent for that path since
 * the entry was made was served from version V. A read of another version, an open for writing, a
 * rename, unlink or truncate through the mount remove it; a missing entry means "drop the pages", so
 * forgetting (the LRU bound) only ever costs a re-read, never a wrong byte.
 */
import { LRUCache } from 'lru-cache';

/** Paths remembered; beyond this the least recently opened are forgotten (their next open re-reads). */
const MAX_PATHS = 100_000;

export class PageCacheVersions {
  private readonly byPath = new LRUCache<string, string>({ max: MAX_PATHS });

  /** An open of `path` that reads `version`: whether the kernel may keep the pages it holds for it. */
  opened(path: string, version: string): boolean {
    const keep = version !== '' && this.byPath.get(path) === version;
    if (version === '') this.byPath.delete(path);
    else this.byPath.set(path, version);
    return keep;
  }

  /** A read of `path` the kernel sent us, served from `version`: the kernel may cache its bytes. */
  served(path: string, version: string): void {
    if (this.byPath.peek(path) !== version) this.byPath.delete(path);
  }

  /** The path's content changes, or its name moves, through the mount: its pages are no longer known. */
  forget(path: string): void {
    this.byPath.delete(path);
  }

  /** `path` and everything under it moved (a rename): all their entries go. */
  forgetTree(path: string): void {
    this.byPath.delete(path);
    const under = `${path}/`;
    for (const k of [...this.byPath.keys()]) if (k.startsWith(under)) this.byPath.delete(k);
  }
}
