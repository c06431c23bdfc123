import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { NetworkBlockSource } from '../../src/read/block-source.js';
import { LocatorCache } from '../../src/read/locator-cache.js';
import { readInto, readIntoCached } from '../../src/read/object-reader.js';
import { MemoryBlockCache } from '../../src/cache/memory-cache.js';
import { FastHttpTransport } from '../../src/transports/fast-http.js';
import { ExpiredError, NotFoundError, StaleError, TransientError } from '../../src/core/errors.js';
import type { ObjectVersion, Provider, RemoteEntry, SignedLocator } from '../../src/core/types.js';
import { startRangeServer, type RangeServer } from '../helpers/range-server.js';

const BS = 64 * 1024;
const SIZE = 20 * BS + 1234; // 21 blocks, the last one short
const PART = 4 * BS;

/** A fixture provider: its locate() signs a range-server URL with a fresh token and counts calls. */
class RangeServerProvider implements Provider {
  readonly name = 'src';
  readonly type = 'fixture';
  readonly caps = { upload: false };
  locates = 0;
  /** Locators say their server ignores Range (like Wordbee's API downloads). */
  rangeable: boolean | undefined;
  constructor(private readonly server: RangeServer) {}
  async *list(): AsyncIterable<RemoteEntry> {}
  async stat(ref: string): Promise<RemoteEntry> {
    throw new NotFoundError(ref);
  }
  async locate(obj: ObjectVersion): Promise<SignedLocator> {
    this.locates++;
    return { url: this.server.url(obj.ref, this.server.issueToken()), expiresAt: Date.now() + 3_600_000, rangeable: this.rangeable };
  }
  async close(): Promise<void> {}
}

let server: RangeServer;
let transport: FastHttpTransport;
let provider: RangeServerProvider;
let cache: MemoryBlockCache;
let source: NetworkBlockSource;
let data: Buffer;
let obj: ObjectVersion;

function makeSource(over: Partial<ConstructorParameters<typeof NetworkBlockSource>[0]> = {}) {
  cache = new MemoryBlockCache({ maxBytes: 64 * 1024 * 1024, blockSize: BS });
  return new NetworkBlockSource({
    cache,
    transport,
    locators: new LocatorCache(),
    providerFor: () => provider,
    partSize: PART,
    maxRetryTimeMs: 5_000,
    retryBaseDelayMs: 1,
    prefetchBudgetBytes: 64 * 1024 * 1024,
    ...over,
  });
}

const gets = (name = 'media.bin') => server.requestsFor(name);
const rangesOf = (name = 'media.bin') => gets(name).map((r) => r.range);
const blockBytes = (i: number) => data.subarray(i * BS, Math.min((i + 1) * BS, SIZE));
const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

/** Resolves once no block of the source is in flight (prefetches have landed in the cache). */
async function settled(s: NetworkBlockSource) {
  while (s.stats().inflightBlocks > 0) await new Promise((r) => setTimeout(r, 5));
}

beforeAll(async () => {
  server = await startRangeServer({ tokens: true });
  transport = new FastHttpTransport({ requestTimeoutMs: 400 }); // the daemon's transport
});
afterAll(async () => {
  await transport?.close();
  await server?.close();
});
beforeEach(() => {
  data = randomBytes(SIZE);
  const etag = server.put('media.bin', data);
  obj = { source: 'src', ref: 'media.bin', version: etag, size: SIZE };
  server.clearFaults();
  server.resetLog();
  provider = new RangeServerProvider(server);
  source = makeSource();
});

describe('NetworkBlockSource', () => {
  it('a server trickling a block fails its readers within the deadline, and the block is fetched anew after', async () => {
    // Bytes every 50 ms never trip the 400 ms stall timeout: only the deadline (retry.maxTime) ends it.
    const bounded = new FastHttpTransport({ requestTimeoutMs: 400, deadlineMs: 600 });
    try {
      const s = makeSource({ transport: bounded, maxRetryTimeMs: 300 });
      server.inject('media.bin', { kind: 'trickle', intervalMs: 50 }, Infinity);
      const first = errorOf(s.readBlock(obj, 2));
      const joined = errorOf(s.readBlock(obj, 2)); // joins the same fetch
      expect(await first).toBeInstanceOf(TransientError);
      expect(((await first) as Error).message).toMatch(/retry\.maxTime/);
      expect(await joined).toBeInstanceOf(TransientError);
      expect(s.stats().inflightBlocks).toBe(0); // released: later readers are not stuck behind it
      server.clearFaults();
      expect((await s.readBlock(obj, 2)).equals(blockBytes(2))).toBe(true);
    } finally {
      await bounded.close();
    }
  });

  it('N concurrent readers of one block cost one GET', async () => {
    const got = await Promise.all(Array.from({ length: 10 }, () => source.readBlock(obj, 3)));
    for (const b of got) expect(b.equals(blockBytes(3))).toBe(true);
    expect(rangesOf()).toEqual([{ start: 3 * BS, end: 4 * BS }]);
    // Now cached: no further GET.
    expect((await source.readBlock(obj, 3)).equals(blockBytes(3))).toBe(true);
    expect(gets()).toHaveLength(1);
    expect(provider.locates).toBe(1);
  });

  it('prefetch merges consecutive blocks into few large GETs, and readers join them', async () => {
    source.prefetch(obj, 0, 20);
    const joined = source.readBlock(obj, 5); // in flight: must not cost a GET of its own
    expect((await joined).equals(blockBytes(5))).toBe(true);
    await settled(source);
    expect(rangesOf().sort((a, b) => a!.start - b!.start)).toEqual([
      { start: 0, end: 4 * BS },
      { start: 4 * BS, end: 8 * BS },
      { start: 8 * BS, end: 12 * BS },
      { start: 12 * BS, end: 16 * BS },
      { start: 16 * BS, end: 20 * BS },
      { start: 20 * BS, end: SIZE },
    ]);
    for (let i = 0; i <= 20; i++) expect((await source.readBlock(obj, i)).equals(blockBytes(i))).toBe(true);
    expect(gets()).toHaveLength(6);
    expect(source.stats()).toMatchObject({ requests: 6, bytesFetched: SIZE });
  });

  it('blocks land in buffers the cache recycles, and a fetch cut midway re-asks only for the blocks not yet answered', async () => {
    // A tiny memory tier (6 blocks) whose recycled buffers are reused by every later fetch: a retry
    // that wrote into an answered block's buffer would corrupt whatever block it holds by then.
    cache = new MemoryBlockCache({ maxBytes: 6 * BS, blockSize: BS });
    source = new NetworkBlockSource({ cache, transport, locators: new LocatorCache(), providerFor: () => provider, partSize: PART, maxRetryTimeMs: 5_000, retryBaseDelayMs: 1 });
    server.inject('media.bin', { kind: 'reset' }); // half a 4-block part, then the connection ends
    source.prefetch(obj, 0, 3);
    await settled(source);
    expect(rangesOf()).toEqual([{ start: 0, end: 4 * BS }, { start: 2 * BS, end: 4 * BS }]);
    for (let i = 0; i < 4; i++) expect((await source.readBlock(obj, i)).equals(blockBytes(i))).toBe(true);
    // Read the whole object twice through the small tier: buffers are recycled over and over.
    for (let pass = 0; pass < 2; pass++) {
      source.prefetch(obj, 0, 20);
      for (let i = 0; i <= 20; i++) expect((await source.readBlock(obj, i)).equals(blockBytes(i))).toBe(true);
      await settled(source);
    }
    expect(cache.stats().bytes).toBeLessThanOrEqual(6 * BS);
  });

  it('prefetch skips cached and in-flight blocks and splits around them', async () => {
    await source.readBlock(obj, 2);
    source.prefetch(obj, 0, 5);
    await settled(source);
    expect(rangesOf().slice(1).sort((a, b) => a!.start - b!.start)).toEqual([
      { start: 0, end: 2 * BS },
      { start: 3 * BS, end: 6 * BS },
    ]);
  });

  it('random reads fetch only the blocks they touch', async () => {
    const into = Buffer.alloc(BS);
    const reads: Array<[number, number]> = [[17 * BS + 10, 100], [2 * BS - 50, 100], [9 * BS, BS], [20 * BS + 1000, 500]];
    for (const [pos, len] of reads) {
      const n = await readInto(source, obj, into, len, pos);
      expect(n).toBe(Math.min(len, SIZE - pos));
      expect(into.subarray(0, n).equals(data.subarray(pos, pos + n))).toBe(true);
    }
    const fetched = rangesOf().map((r) => r!.start / BS).sort((a, b) => a - b);
    expect(fetched).toEqual([1, 2, 9, 17, 20]);
  });

  it('readIntoCached answers at once, byte-exact, only when every block is in memory, and copies nothing otherwise', async () => {
    const into = Buffer.alloc(2 * BS + 10, 0xee);
    expect(readIntoCached(source, obj, into, 100, BS - 50)).toBeUndefined(); // nothing cached yet
    await source.readBlock(obj, 0);
    expect(readIntoCached(source, obj, into, 100, BS - 50)).toBeUndefined(); // block 1 still missing
    expect(into.every((b) => b === 0xee)).toBe(true);
    source.prefetch(obj, 0, 20);
    await settled(source);
    const cases: Array<[number, number]> = [[BS - 50, 100], [0, into.length], [5 * BS + 3, 2 * BS], [SIZE - 10, 100], [SIZE, 10]];
    for (const [pos, len] of cases) {
      const n = readIntoCached(source, obj, into, len, pos);
      const want = data.subarray(pos, Math.min(pos + Math.min(len, into.length), SIZE));
      expect(n).toBe(want.length);
      expect(into.subarray(0, n).equals(want)).toBe(true);
    }
  });

  it('readInto is byte-exact across block boundaries and returns 0 at EOF', async () => {
    source.prefetch(obj, 0, 20);
    const into = Buffer.alloc(3 * BS + 7);
    const cases: Array<[number, number]> = [[0, SIZE], [BS - 1, 2], [BS - 1, 2 * BS + 2], [5, 3 * BS + 7], [SIZE - 10, 100], [SIZE - 1, 1]];
    for (let i = 0; i < 30; i++) cases.push([Math.floor(Math.random() * SIZE), 1 + Math.floor(Math.random() * into.length)]);
    for (const [pos, len] of cases) {
      const n = await readInto(source, obj, into, len, pos);
      const want = data.subarray(pos, Math.min(pos + Math.min(len, into.length), SIZE));
      expect(n).toBe(want.length);
      expect(into.subarray(0, n).equals(want)).toBe(true);
    }
    expect(await readInto(source, obj, into, 10, SIZE)).toBe(0);
    expect(await readInto(source, obj, into, 10, SIZE + 5)).toBe(0);
    expect(await readInto(source, obj, into, 0, 0)).toBe(0);
  });

  it('a refused (expired) URL is re-located and the read succeeds', async () => {
    await source.readBlock(obj, 0);
    expect(provider.locates).toBe(1);
    server.revokeTokens(); // every URL signed so far now gets 403
    expect((await source.readBlock(obj, 1)).equals(blockBytes(1))).toBe(true);
    expect(provider.locates).toBe(2);
    expect(gets().map((r) => r.status)).toEqual([206, 403, 206]);
  });

  it('gives up with ExpiredError after 3 re-mints', async () => {
    server.inject('media.bin', { kind: 'status', status: 403 }, Infinity);
    const e = await errorOf(source.readBlock(obj, 0));
    expect(e).toBeInstanceOf(ExpiredError);
    expect(provider.locates).toBe(4);
  });

  it('retries 500s, 429s, resets, short and stalled bodies, then succeeds', async () => {
    server.inject('media.bin', { kind: 'status', status: 500 }, 2);
    server.inject('media.bin', { kind: 'status', status: 429, retryAfter: '0' });
    server.inject('media.bin', { kind: 'reset' });
    server.inject('media.bin', { kind: 'short' });
    server.inject('media.bin', { kind: 'stall' });
    expect((await source.readBlock(obj, 7)).equals(blockBytes(7))).toBe(true);
    expect(gets().map((r) => r.fault ?? r.status)).toEqual(['status', 'status', 'status', 'reset', 'short', 'stall', 206]);
    expect(source.stats().retries).toBe(6);
  });

  it('a persistent 500 fails with TransientError once maxRetryTime has passed', async () => {
    source = makeSource({ maxRetryTimeMs: 500 });
    server.inject('media.bin', { kind: 'status', status: 500 }, Infinity);
    const e = await errorOf(source.readBlock(obj, 0));
    expect(e).toBeInstanceOf(TransientError);
    expect(gets().length).toBeGreaterThan(1);
    // Nothing stuck: once the server recovers, the same block reads fine.
    server.clearFaults();
    expect((await source.readBlock(obj, 0)).equals(blockBytes(0))).toBe(true);
  });

  it('a failed prefetch does not poison later demand reads', async () => {
    server.inject('media.bin', { kind: 'status', status: 400 }); // not retryable: the prefetch fails at once
    source.prefetch(obj, 0, 3);
    await settled(source);
    expect(gets()).toHaveLength(1);
    expect((await source.readBlock(obj, 1)).equals(blockBytes(1))).toBe(true);
  });

  it('a demand reader that joined a failing prefetch retries with its own fetch', async () => {
    server.inject('media.bin', { kind: 'status', status: 400 });
    source.prefetch(obj, 0, 3);
    expect((await source.readBlock(obj, 2)).equals(blockBytes(2))).toBe(true);
    expect(gets().map((r) => r.range)).toEqual([{ start: 0, end: 4 * BS }, { start: 2 * BS, end: 3 * BS }]);
  });

  it('prefetch stays within its byte budget, and demand reads are not held back by it', async () => {
    source = makeSource({ prefetchBudgetBytes: 2 * BS });
    source.prefetch(obj, 0, 9);
    expect(source.stats().prefetchBytesInFlight).toBeLessThanOrEqual(2 * BS);
    expect(source.stats().prefetchSkippedBlocks).toBe(8);
    expect((await source.readBlock(obj, 6)).equals(blockBytes(6))).toBe(true);
    await settled(source);
    expect(source.stats().prefetchBytesInFlight).toBe(0);
    expect(rangesOf().sort((a, b) => a!.start - b!.start)).toEqual([{ start: 0, end: 2 * BS }, { start: 6 * BS, end: 7 * BS }]);
  });

  it('a changed ETag is a StaleError: the old version keeps its cached blocks, the new version is located and fetched afresh', async () => {
    expect((await source.readBlock(obj, 0)).equals(blockBytes(0))).toBe(true);
    const fresh = randomBytes(SIZE);
    const etag = server.put('media.bin', fresh);
    const e = await errorOf(source.readBlock(obj, 1));
    expect(e).toBeInstanceOf(StaleError);
    expect(gets()).toHaveLength(2); // not retried
    // A handle still on the old version reads what was cached of it, without a request.
    expect((await source.readBlock(obj, 0)).equals(blockBytes(0))).toBe(true);
    expect(gets()).toHaveLength(2);
    const next: ObjectVersion = { ...obj, version: etag };
    expect((await source.readBlock(next, 0)).equals(fresh.subarray(0, BS))).toBe(true);
    expect(gets()).toHaveLength(3);
    expect(provider.locates).toBe(2); // the old locator was dropped
  });

  it('a locator that cannot do ranges costs one whole download, and caches every block', async () => {
    provider.rangeable = false;
    server.inject('media.bin', { kind: 'ignore-range' }, Infinity);
    source.prefetch(obj, 0, 20); // six runs …
    expect((await source.readBlock(obj, 9)).equals(blockBytes(9))).toBe(true);
    await settled(source);
    expect(gets()).toHaveLength(1); // … one GET
    expect(gets()[0]!.status).toBe(200);
    const into = Buffer.alloc(SIZE);
    expect(await readInto(source, obj, into, SIZE, 0)).toBe(SIZE);
    expect(into.equals(data)).toBe(true);
    expect(gets()).toHaveLength(1);
  });

  it('a demand read through a non-rangeable locator caches the other blocks too', async () => {
    provider.rangeable = false;
    server.inject('media.bin', { kind: 'ignore-range' }, Infinity);
    expect((await source.readBlock(obj, 4)).equals(blockBytes(4))).toBe(true);
    for (let i = 0; i <= 20; i++) expect((await source.readBlock(obj, i)).equals(blockBytes(i))).toBe(true);
    expect(gets()).toHaveLength(1);
  });

  it('streams a whole-body download into blocks: an early block is answered before the body ends, one GET in all', async () => {
    provider.rangeable = false;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    server.inject('media.bin', { kind: 'hold', after: 3 * BS, release: held }, 1);
    let lateDone = false;
    const late = source.readBlock(obj, 15).then((b) => ((lateDone = true), b));
    const early = await source.readBlock(obj, 1); // the body is held after block 2: only streaming can answer this
    expect(early.equals(blockBytes(1))).toBe(true);
    expect(lateDone).toBe(false);
    const middle = source.readBlock(obj, 10); // joins the running download
    release();
    expect((await late).equals(blockBytes(15))).toBe(true);
    expect((await middle).equals(blockBytes(10))).toBe(true);
    for (let i = 0; i <= 20; i++) expect((await source.readBlock(obj, i)).equals(blockBytes(i))).toBe(true);
    expect(gets()).toHaveLength(1);
  });

  it('a whole-body download that fails midway is retried from a fresh download', async () => {
    provider.rangeable = false;
    server.inject('media.bin', { kind: 'reset' }, 1);
    expect((await source.readBlock(obj, 18)).equals(blockBytes(18))).toBe(true);
    expect(gets().map((g) => g.status)).toEqual([200, 200]);
  });

  it('invalidate() forgets the locators of the object and keeps its blocks (keyed by version)', async () => {
    await source.readBlock(obj, 0);
    await source.invalidate('src', 'media.bin');
    await source.readBlock(obj, 0);
    expect(gets()).toHaveLength(1);
    await source.readBlock(obj, 5);
    expect(gets()).toHaveLength(2);
    expect(provider.locates).toBe(2);
  });

  it('rejects block indices outside the object', async () => {
    expect(await errorOf(source.readBlock(obj, 21))).toMatchObject({ code: 'EINVAL', message: 'block 21 is outside src:media.bin (1311954 bytes)' });
    expect(await errorOf(source.readBlock(obj, -1))).toMatchObject({ code: 'EINVAL', message: 'block -1 is outside src:media.bin (1311954 bytes)' });
    expect(gets()).toHaveLength(0);
  });
});
