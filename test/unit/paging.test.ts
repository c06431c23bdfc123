import { describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { capListing, pagedList, PARALLEL_PAGES, type Page, type PagedListing } from '../../src/providers/common/paging.js';

/** A logger that keeps its records, and the reasons of the warnings among them. */
function captured() {
  const lines: { reason?: string; msg: string; level: number }[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, reasons: () => lines.filter((l) => l.level >= 40).map((l) => l.reason) };
}

/** An offset API over `n` rows (names r-0…), capping pages at `cap` whatever is asked. */
function offsetServer(n: number, cap: number, opts: { total?: boolean } = {}) {
  let requests = 0;
  const fetch = async (at: number): Promise<Page<string, number>> => {
    requests++;
    const items = Array.from({ length: Math.max(0, Math.min(cap, n - at)) }, (_, i) => `r-${at + i}`);
    return { items, next: items.length ? at + items.length : undefined, total: opts.total ? n : undefined };
  };
  return { fetch, requests: () => requests };
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const listing = <C>(o: Partial<PagedListing<string, C>> & Pick<PagedListing<string, C>, 'first' | 'fetch'>, log = captured().log): PagedListing<string, C> => ({
  what: 'test folder', log, key: (s) => s, ...o,
});

describe('pagedList: paging never trusts the page size it asked for', () => {
  it('a page shorter than asked is not the end: pages go on to the empty page, or to the stated total', async () => {
    const s = offsetServer(250, 30);
    expect(await all(pagedList(listing({ first: 0, fetch: s.fetch })))).toHaveLength(250);
    expect(s.requests()).toBe(10); // 9 pages of rows and the empty page that ends them
    const t = offsetServer(250, 30, { total: true });
    expect(await all(pagedList(listing({ first: 0, fetch: t.fetch })))).toHaveLength(250);
    expect(t.requests()).toBe(9); // the total says the ninth page was the last
  });

  it('a continuation token with an empty page is followed', async () => {
    const pages: Record<string, Page<string, string>> = {
      start: { items: [], next: 't1' },
      t1: { items: ['a', 'b'], next: 't2' },
      t2: { items: [], next: 't3' },
      t3: { items: ['c'] },
    };
    const got = await all(pagedList(listing({ first: 'start', fetch: async (t) => pages[t]!, token: (t) => t })));
    expect(got).toEqual(['a', 'b', 'c']);
  });

  it('a repeated continuation token ends the listing with a warning', async () => {
    const c = captured();
    let n = 0;
    const fetch = async () => ({ items: [`x-${n++}`], next: 'same-token' });
    const got = await all(pagedList(listing({ first: 'first', fetch, token: (t) => t }, c.log)));
    expect(got).toEqual(['x-0', 'x-1']);
    expect(c.reasons()).toEqual(['repeated-token']);
  });

  it('a repeated page ends the listing with a warning (a server ignoring the offset)', async () => {
    const c = captured();
    let requests = 0;
    const fetch = async (at: number) => (requests++, { items: ['a', 'b', 'c'], next: at + 3 });
    expect(await all(pagedList(listing({ first: 0, fetch }, c.log)))).toEqual(['a', 'b', 'c']);
    expect(requests).toBe(2);
    expect(c.reasons()).toEqual(['repeated-page']);
  });

  it('endless pages end at maxPages, and a large folder at maxEntriesPerFolder, each with one warning', async () => {
    const endless = async (at: number) => ({ items: [`e-${at}`], next: at + 1 });
    const c1 = captured();
    expect(await all(pagedList(listing({ first: 0, fetch: endless, limits: { maxEntriesPerFolder: 1e9, maxPages: 50 } }, c1.log)))).toHaveLength(50);
    expect(c1.reasons()).toEqual(['page-cap']);
    const c2 = captured();
    const s = offsetServer(10_000, 100);
    expect(await all(pagedList(listing({ first: 0, fetch: s.fetch, limits: { maxEntriesPerFolder: 250, maxPages: 1e6 } }, c2.log)))).toHaveLength(250);
    expect(s.requests()).toBe(3);
    expect(c2.reasons()).toEqual(['entry-cap']);
    const c3 = captured();
    expect(await all(pagedList(listing({ first: 0, fetch: offsetServer(250, 100).fetch, limits: { maxEntriesPerFolder: 250, maxPages: 1e6 } }, c3.log)))).toHaveLength(250);
    expect(c3.reasons()).toEqual([]); // exactly at the cap: nothing left out, nothing to say
  });

  it('rows an offset API repeats when its catalog shifts are yielded once', async () => {
    const pages: Record<number, Page<string, number>> = { 0: { items: ['a', 'b', 'c'], next: 3 }, 3: { items: ['c', 'd', 'e'], next: 6 }, 6: { items: [] } };
    expect(await all(pagedList(listing({ first: 0, fetch: async (at) => pages[at]! })))).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('a stated total no continuation reaches is said in a warning', async () => {
    const c = captured();
    const got = await all(pagedList(listing({ first: 0, fetch: async () => ({ items: ['a'], total: 5 }) }, c.log)));
    expect(got).toEqual(['a']);
    expect(c.reasons()).toEqual(['total-unreached']);
  });

  it('a one-answer listing takes the entry cap too', () => {
    const c = captured();
    expect(capListing(['a', 'b', 'c'], { what: 'x', limits: { maxEntriesPerFolder: 2, maxPages: 1 }, log: c.log })).toEqual(['a', 'b']);
    expect(c.reasons()).toEqual(['entry-cap']);
  });

  it('streams a listing of a million entries in bounded memory', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const rows = 1_000_000;
    const fetch = async (at: number): Promise<Page<string, number>> => {
      const items = Array.from({ length: Math.min(1000, rows - at) }, (_, i) => `asset-${String(at + i).padStart(8, '0')}-with-a-longer-name.mp4`);
      return { items, next: items.length ? at + items.length : undefined };
    };
    gc();
    const base = process.memoryUsage().heapUsed;
    let count = 0;
    let peak = 0;
    for await (const _ of pagedList(listing({ first: 0, fetch, limits: { maxEntriesPerFolder: 2_000_000, maxPages: 10_000 } }))) {
      if (++count % 100_000 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - base);
      }
    }
    expect(count).toBe(rows);
    // Live heap after GC while a million entries went by: what two pages and a hash per page take.
    // Holding the names alone would take over 60 MiB.
    expect(peak).toBeLessThan(8 * 1024 * 1024);
    console.log(`a million entries streamed; live heap at most ${(peak / 1024 / 1024).toFixed(1)} MiB above the start`);
  });
});

describe('pagedList with offsets: the pages after the first fetched in parallel', () => {
  const ids = { at: (o: number) => o, offsetOf: (o: number) => o };
  /** An offset server over `n` rows, capping pages at `cap`, stating `total` (the truth unless given), counting requests in flight. */
  function parallelServer(n: number, cap: number, stated?: number | 'none') {
    const total = stated === 'none' ? undefined : (stated ?? n);
    let inFlight = 0;
    let peak = 0;
    let requests = 0;
    const fetch = async (at: number): Promise<Page<string, number>> => {
      requests++;
      inFlight++;
      peak = Math.max(peak, inFlight);
      // Let every request the listing launches at once arrive before any answers.
      await new Promise<void>((r) => setImmediate(r));
      inFlight--;
      const items = Array.from({ length: Math.max(0, Math.min(cap, n - at)) }, (_, i) => `r-${String(at + i).padStart(5, '0')}`);
      return { items, next: items.length ? at + items.length : undefined, total };
    };
    return { fetch, peak: () => peak, requests: () => requests };
  }
  const inOrder = (n: number) => Array.from({ length: n }, (_, i) => `r-${String(i).padStart(5, '0')}`);

  it('every row once, in order, with up to PARALLEL_PAGES pages in flight, pages capped by the server included', async () => {
    const c = captured();
    const s = parallelServer(1000, 30);
    expect(await all(pagedList(listing({ first: 0, fetch: s.fetch, offsets: ids }, c.log)))).toEqual(inOrder(1000));
    expect(s.peak()).toBe(PARALLEL_PAGES);
    expect(s.requests()).toBe(Math.ceil(1000 / 30));
    expect(c.reasons()).toEqual([]);
  });

  it('no total: sequential (one page in flight)', async () => {
    const s = parallelServer(300, 30, 'none');
    expect(await all(pagedList(listing({ first: 0, fetch: s.fetch, offsets: ids })))).toEqual(inOrder(300));
    expect(s.peak()).toBe(1);
  });

  it('a total above the truth: the first empty page falls back to sequential; every row once, in order, and the same warning as a sequential listing', async () => {
    const c = captured();
    const s = parallelServer(300, 30, 600);
    expect(await all(pagedList(listing({ first: 0, fetch: s.fetch, offsets: ids }, c.log)))).toEqual(inOrder(300));
    expect(c.reasons()).toEqual(['parallel-fallback', 'total-unreached']);
  });

  it('a total below the truth: what a sequential listing shows (it trusts the total), with a warning', async () => {
    const c = captured();
    const s = parallelServer(300, 30, 100);
    const sequential = await all(pagedList(listing({ first: 0, fetch: parallelServer(300, 30, 100).fetch })));
    expect(await all(pagedList(listing({ first: 0, fetch: s.fetch, offsets: ids }, c.log)))).toEqual(sequential);
    expect(c.reasons()).toEqual(['parallel-fallback']);
  });

  it('a page size that changes mid-listing: falls back and still yields every row once, in order', async () => {
    const c = captured();
    const fetch = async (at: number): Promise<Page<string, number>> => {
      const cap = at === 0 ? 50 : 20; // the first page is larger than the rest
      const items = Array.from({ length: Math.max(0, Math.min(cap, 400 - at)) }, (_, i) => `r-${String(at + i).padStart(5, '0')}`);
      return { items, next: items.length ? at + items.length : undefined, total: 400 };
    };
    expect(await all(pagedList(listing({ first: 0, fetch, offsets: ids }, c.log)))).toEqual(inOrder(400));
    expect(c.reasons()).toEqual(['parallel-fallback']);
  });

  it('the caps hold: maxPages and maxEntriesPerFolder bound the pages asked for', async () => {
    const c1 = captured();
    const s1 = parallelServer(10_000, 100);
    expect(await all(pagedList(listing({ first: 0, fetch: s1.fetch, offsets: ids, limits: { maxEntriesPerFolder: 1e9, maxPages: 12 } }, c1.log)))).toHaveLength(1200);
    expect(s1.requests()).toBe(12);
    expect(c1.reasons()).toEqual(['page-cap']);
    const c2 = captured();
    const s2 = parallelServer(1_000_000, 100);
    expect(await all(pagedList(listing({ first: 0, fetch: s2.fetch, offsets: ids, limits: { maxEntriesPerFolder: 500, maxPages: 1e6 } }, c2.log)))).toEqual(inOrder(500));
    expect(s2.requests()).toBeLessThanOrEqual(6);
    expect(c2.reasons()).toEqual(['entry-cap']);
  });

  it('a repeated page among the parallel ones ends the listing as it does sequentially', async () => {
    const c = captured();
    const fetch = async (at: number): Promise<Page<string, number>> => {
      const from = at >= 60 ? 30 : at; // from the third page on, the server answers the second
      return { items: Array.from({ length: 30 }, (_, i) => `r-${from + i}`), next: at + 30, total: 300 };
    };
    expect(await all(pagedList(listing({ first: 0, fetch, offsets: ids }, c.log)))).toHaveLength(60);
    expect(c.reasons()).toEqual(['repeated-page']);
  });
});
