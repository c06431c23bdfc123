/**
 * The hostile-server cases of paging and versions (issue 20, parts 1, 2, 3 and 7), run by every
 * provider's contract test against its emulator or storage server with the behaviour knobs of
 * lab/src/emulators/common/knobs.ts turned: pages capped below what was asked, totals left out, a
 * continuation with an empty page, a repeated continuation, endless pages, a listing of a million
 * generated entries; downloads whose ETag is the storage's, absent, foreign or changing. Reads go
 * through the real read path (block source, locator cache, HTTP transport). Each provider's run ends
 * with one line: cases tried, cases survived, bytes compared and bytes read wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino, type Logger } from 'pino';
import type { ObjectVersion, Provider, RemoteEntry } from '../../src/core/types.js';
import { StaleError } from '../../src/core/errors.js';
import type { EmulatorKnobs } from '@assetfs/lab/emulators/common/knobs.js';
import type { ListingLimits } from '../../src/providers/common/paging.js';
import { NetworkBlockSource } from '../../src/read/block-source.js';
import { LocatorCache } from '../../src/read/locator-cache.js';
import { MemoryBlockCache } from '../../src/cache/memory-cache.js';
import { HttpTransport } from '../../src/transports/http.js';
import { deterministicBytes } from '@assetfs/lab/demo/sample-media.js';
import { walk } from './provider-suite.js';

export interface PagingFixture {
  /** A provider over the seeded server with this page size and these listing bounds, logging to `log`. */
  provider(opts: { listPageSize: number; listing?: ListingLimits; log: Logger }): Provider;
  /** Page size the provider asks for; the capped cases cap pages at a third of it. */
  readonly pageSize: number;
  /** Knobs of the server that answers the paged listing. */
  readonly listingKnobs: EmulatorKnobs;
  /** A folder whose listing is paged: its path from the root ('' or ending in '/'), knob scope, every entry name. */
  readonly folder: { readonly path: string; readonly scope: string; readonly names: readonly string[] };
  /** Where generated listings (virtualRows, endless) appear, and the name of entry `i` there. */
  readonly virtual: { readonly path: string; readonly scope: string; name(i: number): string };
  /** The listing API pages by offset and states a total: pages after the first are fetched in parallel. */
  readonly parallelPages?: boolean;
  /** The listing API has continuation tokens (an empty page with a token is possible). */
  readonly tokens: boolean;
  /** A file to read, the knobs of the server its bytes come from, and whether its version is that server's ETag. */
  readonly download: { readonly path: string; readonly knobs: EmulatorKnobs; readonly versionIsStorageEtag: boolean };
  /** List requests the paged listing's server has answered so far. */
  listRequests(): number;
  teardown(): Promise<void>;
}

/** Bytes every fixture stores at `download.path`: four 64 KiB blocks and a bit. */
export const PAGING_DOWNLOAD = deterministicBytes('paging-suite-download', 4 * 64 * 1024 + 321);
/** Entries a fixture puts in its paged folder. */
export const PAGED_ENTRIES = 250;

interface Captured {
  readonly log: Logger;
  readonly warnings: () => { reason?: string; msg: string }[];
}

function capturingLogger(): Captured {
  const lines: { reason?: string; msg: string; level: number }[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, warnings: () => lines.filter((l) => l.level >= 40) };
}

async function list(p: Provider, path: string): Promise<RemoteEntry[]> {
  const dir = path ? await walk(p, path) : { ref: '' };
  const out: RemoteEntry[] = [];
  for await (const e of p.list(dir.ref)) out.push(e);
  return out;
}

export function runPagingSuite(label: string, setup: () => Promise<PagingFixture>): void {
  describe(`Paging and versions against a hostile server: ${label}`, () => {
    let fx: PagingFixture;
    const tally = { tried: 0, survived: 0, bytes: 0, wrong: 0 };
    const transport = new HttpTransport({ requestTimeoutMs: 10_000 });
    const providers: Provider[] = [];
    const make = (listing?: ListingLimits) => {
      const c = capturingLogger();
      const p = fx.provider({ listPageSize: fx.pageSize, listing, log: c.log });
      providers.push(p);
      return { p, ...c };
    };
    /** Runs one hostile case with the knobs set, counting it (unless it does not apply); the knobs are reset afterwards. */
    const hostile = (name: string, fn: () => Promise<void>, applies?: (f: PagingFixture) => boolean) =>
      it(name, async (ctx) => {
        if (applies && !applies(fx)) return ctx.skip();
        tally.tried++;
        try {
          await fn();
          tally.survived++;
        } finally {
          fx.listingKnobs.paging = {};
          fx.download.knobs.download = {};
        }
      });

    beforeAll(async () => {
      fx = await setup();
    }, 120_000);
    afterAll(async () => {
      await Promise.allSettled(providers.map((p) => p.close()));
      await transport.close();
      await fx?.teardown();
      console.log(`paging suite, ${label}: ${tally.tried} hostile cases tried, ${tally.survived} survived; ${tally.bytes} bytes read, ${tally.wrong} wrong`);
    });

    /** The whole paged folder, each entry once, in at least as many pages as the cap makes (the knob took). */
    const expectWholeFolder = async (p: Provider) => {
      const before = fx.listRequests();
      const names = (await list(p, fx.folder.path)).map((e) => e.name);
      expect(names.length).toBe(fx.folder.names.length);
      expect(new Set(names)).toEqual(new Set(fx.folder.names));
      expect(fx.listRequests() - before).toBeGreaterThanOrEqual(Math.ceil(fx.folder.names.length / Math.ceil(fx.pageSize / 3)));
    };

    hostile('pages capped by the server below the size asked: every entry, each once', async () => {
      fx.listingKnobs.paging = { scope: fx.folder.scope, pageCap: Math.ceil(fx.pageSize / 3) };
      const { p, warnings } = make();
      await expectWholeFolder(p);
      expect(warnings()).toEqual([]);
    });

    hostile('capped pages and no total: every entry, each once', async () => {
      fx.listingKnobs.paging = { scope: fx.folder.scope, pageCap: Math.ceil(fx.pageSize / 3), omitTotal: true };
      const { p, warnings } = make();
      await expectWholeFolder(p);
      expect(warnings()).toEqual([]);
    });

    hostile('a continuation token with an empty page is followed', async () => {
      fx.listingKnobs.paging = { scope: fx.folder.scope, emptyFirstPage: true, pageCap: Math.ceil(fx.pageSize / 3) };
      const { p } = make();
      await expectWholeFolder(p);
    }, (f) => f.tokens);

    // ---- offset APIs that state a total: the pages after the first come in parallel ----

    const names = async (p: Provider) => (await list(p, fx.folder.path)).map((e) => e.name);
    const sequentialOrder = async () => {
      fx.listingKnobs.paging = { scope: fx.folder.scope, pageCap: Math.ceil(fx.pageSize / 3), omitTotal: true };
      const order = await names(make().p);
      expect(order.length).toBe(fx.folder.names.length);
      return order;
    };

    hostile('parallel pages under a server cap: every entry, each once, in the order of a sequential listing', async () => {
      const order = await sequentialOrder();
      fx.listingKnobs.paging = { scope: fx.folder.scope, pageCap: Math.ceil(fx.pageSize / 3) };
      const { p, warnings } = make();
      expect(await names(p)).toEqual(order);
      expect(warnings()).toEqual([]);
    }, (f) => !!f.parallelPages);

    hostile('parallel pages with a total above the truth: every entry, each once, in order; the fallback and the unreached total are said', async () => {
      const order = await sequentialOrder();
      fx.listingKnobs.paging = { scope: fx.folder.scope, pageCap: Math.ceil(fx.pageSize / 3), totalDelta: 2 * fx.pageSize };
      const { p, warnings } = make();
      const before = fx.listRequests();
      expect(await names(p)).toEqual(order);
      expect(warnings().map((w) => w.reason)).toEqual(['parallel-fallback', 'total-unreached']);
      // The pages the true listing has, the window of pages past its end, and the sequential page that ends it.
      expect(fx.listRequests() - before).toBeLessThanOrEqual(Math.ceil(fx.folder.names.length / Math.ceil(fx.pageSize / 3)) + 8 + 3);
    }, (f) => !!f.parallelPages);

    hostile('parallel pages with a total below the truth: what a sequential listing shows, each once, in order, and the fallback said', async () => {
      const order = await sequentialOrder();
      fx.listingKnobs.paging = { scope: fx.folder.scope, pageCap: Math.ceil(fx.pageSize / 3), totalDelta: -Math.floor(fx.folder.names.length / 2) };
      const { p, warnings } = make();
      const got = await names(p);
      expect(got.length).toBeGreaterThanOrEqual(fx.folder.names.length - Math.floor(fx.folder.names.length / 2));
      expect(got).toEqual(order.slice(0, got.length));
      expect(warnings().map((w) => w.reason)).toEqual(['parallel-fallback']);
    }, (f) => !!f.parallelPages);

    hostile('parallel pages stop at listing.maxPages', async () => {
      fx.listingKnobs.paging = { scope: fx.folder.scope, pageCap: Math.ceil(fx.pageSize / 3) };
      const { p, warnings } = make({ maxEntriesPerFolder: 100_000, maxPages: 3 });
      const before = fx.listRequests();
      const got = await names(p);
      expect(got.length).toBeGreaterThan(0); // a folder may be a filter over a wider paged listing (Wordbee's scope)
      expect(got.length).toBeLessThanOrEqual(3 * Math.ceil(fx.pageSize / 3));
      expect(new Set(got).size).toBe(got.length);
      expect(warnings().map((w) => w.reason)).toEqual(['page-cap']);
      expect(fx.listRequests() - before).toBeLessThanOrEqual(3 + 3);
    }, (f) => !!f.parallelPages);

    hostile('a repeated continuation (token or page) ends the listing with a warning', async () => {
      fx.listingKnobs.paging = { scope: fx.folder.scope, repeatPage: true, pageCap: Math.ceil(fx.pageSize / 3), omitTotal: true };
      const { p, warnings } = make();
      const before = fx.listRequests();
      const names = (await list(p, fx.folder.path)).map((e) => e.name);
      expect(names.length).toBeLessThan(fx.folder.names.length);
      expect(new Set(names).size).toBe(names.length);
      expect(warnings().map((w) => w.reason)).toContainEqual(expect.stringMatching(/^repeated-(token|page)$/));
      expect(fx.listRequests() - before).toBeLessThan(10);
    });

    hostile('endless pages end at listing.maxPages with a warning', async () => {
      fx.listingKnobs.paging = { scope: fx.virtual.scope, endless: true };
      const { p, warnings } = make({ maxEntriesPerFolder: 10_000_000, maxPages: 12 });
      const before = fx.listRequests();
      const entries = await list(p, fx.virtual.path);
      expect(entries.length).toBeGreaterThan(0);
      expect(warnings().map((w) => w.reason)).toContain('page-cap');
      expect(fx.listRequests() - before).toBeLessThanOrEqual(12 + 3); // the walk down to the folder may list too
    });

    hostile('endless pages end at listing.maxEntriesPerFolder with a warning', async () => {
      fx.listingKnobs.paging = { scope: fx.virtual.scope, endless: true };
      const { p, warnings } = make({ maxEntriesPerFolder: 3 * fx.pageSize + 7, maxPages: 10_000 });
      const entries = await list(p, fx.virtual.path);
      expect(entries.length).toBe(3 * fx.pageSize + 7);
      expect(warnings().map((w) => w.reason)).toContain('entry-cap');
    });

    hostile('a listing of a million entries stops at the entry cap, asking only for the pages it shows', async () => {
      fx.listingKnobs.paging = { scope: fx.virtual.scope, virtualRows: 1_000_000 };
      const cap = 5 * fx.pageSize;
      const { p, warnings } = make({ maxEntriesPerFolder: cap, maxPages: 10_000 });
      const before = fx.listRequests();
      const entries = await list(p, fx.virtual.path);
      expect(entries.length).toBe(cap);
      expect(entries.map((e) => e.name).sort()).toEqual(Array.from({ length: cap }, (_, i) => fx.virtual.name(i)).sort());
      expect(warnings().map((w) => w.reason)).toEqual(['entry-cap']);
      expect(fx.listRequests() - before).toBeLessThanOrEqual(6 + 3);
    });

    // ---- versions: a download with an ETag, without one, with a foreign one, with a changing one ----

    const readAll = async (p: Provider) => {
      const cache = new MemoryBlockCache({ maxBytes: 16 * 1024 * 1024, blockSize: 64 * 1024 });
      const blocks = new NetworkBlockSource({ cache, transport, locators: new LocatorCache(), providerFor: () => p, partSize: 64 * 1024, maxRetryTimeMs: 3_000, retryBaseDelayMs: 1 });
      const e = await walk(p, fx.download.path);
      const obj: ObjectVersion = { source: p.name, ref: e.ref, version: e.version, size: e.size };
      expect(obj.size).toBe(PAGING_DOWNLOAD.length);
      const read = async (index: number) => {
        const got = await blocks.readBlock(obj, index);
        const want = PAGING_DOWNLOAD.subarray(index * 64 * 1024, (index + 1) * 64 * 1024);
        tally.bytes += got.length;
        for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) tally.wrong++;
        expect(got.equals(want)).toBe(true);
      };
      return { read, evict: () => cache.dropObject(obj.source, obj.ref) };
    };
    const readsWhole = async (etag: 'as-is' | 'absent' | 'foreign') => {
      fx.download.knobs.download = { etag };
      const { p } = make();
      const r = await readAll(p);
      for (let i = 0; i < 5; i++) await r.read(i);
    };

    hostile("a download carrying the server's own ETag reads byte-exact", () => readsWhole('as-is'));
    hostile('a download carrying no ETag reads byte-exact', () => readsWhole('absent'));

    hostile('a download carrying an ETag the listing never showed', async () => {
      if (!fx.download.versionIsStorageEtag) return readsWhole('foreign'); // a platform version is not an ETag: not "changed"
      fx.download.knobs.download = { etag: 'foreign' }; // the version is that server's ETag: another one is a changed object
      const { p } = make();
      await expect((await readAll(p)).read(0)).rejects.toBeInstanceOf(StaleError);
    });

    hostile('a download whose ETag changes between two downloads of one version is a StaleError', async () => {
      fx.download.knobs.download = { etag: 'changing' };
      const { p } = make();
      const r = await readAll(p);
      if (fx.download.versionIsStorageEtag) {
        await expect(r.read(0)).rejects.toBeInstanceOf(StaleError);
        return;
      }
      // The first download pins its ETag; the next download (the next ranged GET, or, for a server that
      // sends whole bodies, the one after the cached blocks were evicted) carries another one.
      await r.read(0);
      const rest = (async () => {
        for (let i = 1; i < 5; i++) await r.read(i);
        await r.evict();
        await r.read(2);
      })();
      await expect(rest).rejects.toBeInstanceOf(StaleError);
    });
  });
}
