/**
 * One paging loop for every provider (docs/semantics.md, "Paging and versions").
 *
 * Invariants:
 *  - The page size asked for is never an end condition: a server may cap pages below it. Paging ends
 *    only where the platform says (the provider's `fetch` returns no continuation: no token, an empty
 *    page of an offset API, IsTruncated false …), or once as many rows arrived as the server's stated
 *    total.
 *  - Bounded whatever the server sends: at most `maxPages` requests and `maxEntriesPerFolder` entries
 *    per listing; a continuation token offered twice, or a page of rows identical to an earlier one,
 *    is a paging loop. Each of these ends the listing with the entries so far and one warning that
 *    names the folder and the reason. Entries stream out page by page; what is kept across pages is
 *    the keys of the last two pages (to drop rows an offset API repeats when the catalog shifts),
 *    one short hash per page and per token: O(page size + pages), never O(entries).
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../util/logger.js';

export interface ListingLimits {
  /** Most entries one listing of one folder yields. */
  readonly maxEntriesPerFolder: number;
  /** Most page requests one listing makes. */
  readonly maxPages: number;
}

export const DEFAULT_LISTING_LIMITS: ListingLimits = { maxEntriesPerFolder: 100_000, maxPages: 10_000 };

export interface Page<T, C> {
  readonly items: readonly T[];
  /** Where the next page starts; undefined when the platform's end condition says this was the last. */
  readonly next?: C;
  /** Rows in the whole listing, when the server states it. */
  readonly total?: number;
}

export interface PagedListing<T, C> {
  /** Names the source and folder in warnings, e.g. `nomad source "n": folder 1234`. */
  readonly what: string;
  readonly limits?: ListingLimits;
  readonly log: Logger;
  /** The first request's continuation (an offset of 0, or undefined for "no token"). */
  readonly first: C;
  fetch(at: C): Promise<Page<T, C>>;
  /** A row's identity within the listing (name, id, key). */
  key(item: T): string;
  /** A continuation's identity, for token APIs; offset APIs leave it out (their offsets never repeat). */
  token?(at: C): string;
}

/** Why a listing ended before the platform's end condition. */
export type ListingStop = 'entry-cap' | 'page-cap' | 'repeated-token' | 'repeated-page' | 'total-unreached';

const digest = (parts: readonly string[]) => createHash('sha256').update(parts.join('\0')).digest('base64').slice(0, 16);

/** The rows of every page, each once, lazily; see the invariants above. */
export async function* pagedList<T, C>(o: PagedListing<T, C>): AsyncGenerator<T, ListingStop | undefined> {
  const limits = o.limits ?? DEFAULT_LISTING_LIMITS;
  const tokens = new Set<string>();
  const pages = new Set<string>();
  let recent: Set<string>[] = [];
  let at = o.first;
  let rows = 0;
  let yielded = 0;
  const stop = (why: ListingStop, detail: string): ListingStop => {
    o.log.warn({ listing: o.what, entries: yielded, pages: pages.size, reason: why }, `${o.what}: listing stopped at ${yielded} entries: ${detail}`);
    return why;
  };
  for (let requested = 0; ; ) {
    if (requested >= limits.maxPages) return stop('page-cap', `the server still offered more after ${requested} pages (listing.maxPages)`);
    if (o.token) {
      const t = digest([o.token(at)]);
      if (requested > 0 && tokens.has(t)) return stop('repeated-token', 'the server sent the same continuation token twice (a paging loop)');
      tokens.add(t);
    }
    requested++;
    const page = await o.fetch(at);
    const keys = page.items.map((it) => o.key(it));
    if (keys.length > 0) {
      const print = digest(keys);
      if (pages.has(print)) return stop('repeated-page', 'the server sent the same page twice (a paging loop)');
      pages.add(print);
    }
    rows += keys.length;
    const fresh = new Set<string>();
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (fresh.has(k) || recent.some((s) => s.has(k))) continue; // repeated by a shifting offset
      fresh.add(k);
      if (yielded >= limits.maxEntriesPerFolder) {
        return stop('entry-cap', `the folder has more than ${limits.maxEntriesPerFolder} entries (listing.maxEntriesPerFolder); the rest are not shown`);
      }
      yielded++;
      yield page.items[i]!;
    }
    recent = [recent.at(-1) ?? new Set(), fresh];
    const total = page.total !== undefined && Number.isFinite(page.total) && page.total >= 0 ? page.total : undefined;
    if (total !== undefined && rows >= total) return undefined;
    if (page.next === undefined) {
      if (total !== undefined && rows < total) return stop('total-unreached', `the server stated ${total} rows but offered no continuation after ${rows}`);
      return undefined;
    }
    at = page.next;
  }
}

/**
 * The entry cap for a listing that comes in one answer (no paging: MK.IO's storage listing, a Wordbee
 * segment's assets): the first `maxEntriesPerFolder` items, with the same warning when more came.
 */
export function capListing<T>(items: readonly T[], o: { what: string; limits?: ListingLimits; log: Logger }): readonly T[] {
  const max = (o.limits ?? DEFAULT_LISTING_LIMITS).maxEntriesPerFolder;
  if (items.length <= max) return items;
  o.log.warn({ listing: o.what, entries: max, reason: 'entry-cap' }, `${o.what}: listing stopped at ${max} entries: the folder has ${items.length} entries (listing.maxEntriesPerFolder); the rest are not shown`);
  return items.slice(0, max);
}
