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
 *  - Offset listings may fetch pages in parallel (OffsetPaging below); they are taken in order, through
 *    the same guards, as if they had come one by one.
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

/**
 * Offset paging (Wordbee skip/take, MediaHub start/limit, Nomad's search pages): pages are addressed
 * by row offset, so once the first page states the total and shows the server's page size, the rest
 * can be asked for at once. A listing with `offsets` does that, at most `concurrency` pages in flight
 * and at most that many answers held (a window, not a queue of every page: memory stays O(page size)),
 * taking the pages in order through the same guards as the sequential loop. Each parallel page must
 * end where the first page's size and the total say it does; the first that does not (a total that
 * lies, a page size that changes, a catalog that shifted) is taken as the sequential loop would have
 * taken it, the pages after it are dropped, and the listing goes on sequentially from there (one
 * warning, reason `parallel-fallback`). Token APIs leave `offsets` out: their pages are sequential.
 */
export interface OffsetPaging<C> {
  /** The continuation of the page that starts at row `offset` when pages hold `size` rows. */
  at(offset: number, size: number): C;
  /** The row offset a continuation stands for. */
  offsetOf(at: C): number;
  /** Pages in flight at once. Default PARALLEL_PAGES. */
  readonly concurrency?: number;
}

/** Pages one offset listing asks for at once: enough to hide a round trip, few enough to be polite. */
export const PARALLEL_PAGES = 6;

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
  /** Offset APIs: fetch the pages after the first in parallel (see OffsetPaging). */
  readonly offsets?: OffsetPaging<C>;
}

/** Why a listing ended before the platform's end condition. */
export type ListingStop = 'entry-cap' | 'page-cap' | 'repeated-token' | 'repeated-page' | 'total-unreached';

const digest = (parts: readonly string[]) => createHash('sha256').update(parts.join('\0')).digest('base64').slice(0, 16);

type Step<C> = { readonly end: true; readonly why?: ListingStop } | { readonly end: false; readonly next: C };

/** What one listing remembers across pages (see the invariants above), and the taking of one page. */
class ListingState<T, C> {
  readonly limits: ListingLimits;
  readonly pages = new Set<string>();
  private recent: Set<string>[] = [];
  private rows = 0;
  private yielded = 0;

  constructor(private readonly opts: PagedListing<T, C>) {
    this.limits = opts.limits ?? DEFAULT_LISTING_LIMITS;
  }

  stop(why: ListingStop, detail: string): { readonly end: true; readonly why: ListingStop } {
    this.opts.log.warn({ listing: this.opts.what, entries: this.yielded, pages: this.pages.size, reason: why }, `${this.opts.what}: listing stopped at ${this.yielded} entries: ${detail}`);
    return { end: true, why };
  }

  warnFallback(detail: string): void {
    this.opts.log.warn({ listing: this.opts.what, entries: this.yielded, pages: this.pages.size, reason: 'parallel-fallback' }, `${this.opts.what}: ${detail}; listing the rest page by page`);
  }

  /** Yields the new rows of `page`; ends the listing, or says where it goes on. */
  async *take(page: Page<T, C>): AsyncGenerator<T, Step<C>> {
    const keys = page.items.map((it) => this.opts.key(it));
    if (keys.length > 0) {
      const print = digest(keys);
      if (this.pages.has(print)) return this.stop('repeated-page', 'the server sent the same page twice (a paging loop)');
      this.pages.add(print);
    }
    this.rows += keys.length;
    const fresh = new Set<string>();
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (fresh.has(k) || this.recent.some((s) => s.has(k))) continue; // repeated by a shifting offset
      fresh.add(k);
      if (this.yielded >= this.limits.maxEntriesPerFolder) {
        return this.stop('entry-cap', `the folder has more than ${this.limits.maxEntriesPerFolder} entries (listing.maxEntriesPerFolder); the rest are not shown`);
      }
      this.yielded++;
      yield page.items[i]!;
    }
    this.recent = [this.recent.at(-1) ?? new Set(), fresh];
    const total = statedTotal(page);
    if (total !== undefined && this.rows >= total) return { end: true };
    if (page.next === undefined) {
      if (total !== undefined && this.rows < total) return this.stop('total-unreached', `the server stated ${total} rows but offered no continuation after ${this.rows}`);
      return { end: true };
    }
    return { end: false, next: page.next };
  }
}

const statedTotal = (p: Page<unknown, unknown>) => (p.total !== undefined && Number.isFinite(p.total) && p.total >= 0 ? p.total : undefined);

/** The rows of every page, each once, lazily; see the invariants above. */
export async function* pagedList<T, C>(o: PagedListing<T, C>): AsyncGenerator<T, ListingStop | undefined> {
  const st = new ListingState(o);
  const tokens = new Set<string>();
  let at = o.first;
  for (let requested = 0; ; ) {
    if (requested >= st.limits.maxPages) return st.stop('page-cap', `the server still offered more after ${requested} pages (listing.maxPages)`).why;
    if (o.token) {
      const t = digest([o.token(at)]);
      if (requested > 0 && tokens.has(t)) return st.stop('repeated-token', 'the server sent the same continuation token twice (a paging loop)').why;
      tokens.add(t);
    }
    requested++;
    const page = await o.fetch(at);
    let step = yield* st.take(page);
    if (!step.end && requested === 1 && o.offsets) {
      const par = yield* parallelPages(o, o.offsets, st, page, step.next);
      requested += par.requested;
      step = par.step;
    }
    if (step.end) return step.why;
    at = step.next;
  }
}

/**
 * The pages after `first` of an offset listing, in parallel where the first page allows it (a stated
 * total, rows in it); returns the step after the last page taken and how many pages were asked for.
 */
async function* parallelPages<T, C>(o: PagedListing<T, C>, offsets: OffsetPaging<C>, st: ListingState<T, C>, first: Page<T, C>, next: C): AsyncGenerator<T, { step: Step<C>; requested: number }> {
  const total = statedTotal(first);
  const start = offsets.offsetOf(o.first);
  const size = offsets.offsetOf(next) - start;
  if (total === undefined || !(size > 0)) return { step: { end: false, next }, requested: 0 };
  // Pages past the entry cap would only be dropped: ask for those the cap can show, and one more row.
  const last = Math.min(total, start + st.limits.maxEntriesPerFolder + 1);
  const planned: number[] = [];
  for (let off = start + size; off < last && planned.length + 1 < st.limits.maxPages; off += size) planned.push(off);
  const window: Promise<Page<T, C>>[] = [];
  let launched = 0;
  const launch = () => {
    const p = o.fetch(offsets.at(planned[launched]!, size));
    p.catch(() => undefined); // answers of pages dropped after a stop must not become unhandled rejections
    window.push(p);
    launched++;
  };
  const width = Math.max(1, offsets.concurrency ?? PARALLEL_PAGES);
  let step: Step<C> = { end: false, next };
  for (let i = 0; i < planned.length; i++) {
    while (launched < planned.length && window.length < width) launch();
    const page = await window.shift()!;
    const end = Math.min(planned[i]! + size, total);
    const agrees = page.next !== undefined ? offsets.offsetOf(page.next) === end : false;
    if (!agrees) {
      st.warnFallback(`the page at row ${planned[i]} ended at ${page.next === undefined ? 'no continuation' : `row ${offsets.offsetOf(page.next)}`}, not at row ${end} as the first page (${size} rows) and the stated total (${total}) said`);
      return { step: yield* st.take(page), requested: launched };
    }
    step = yield* st.take(page);
    if (step.end) return { step, requested: launched };
  }
  return { step, requested: launched };
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
