import { describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { capListing, pagedList, type Page, type PagedListing } from '../../src/providers/common/paging.js';

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
