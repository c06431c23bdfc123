/**
 * The health board (src/daemon/health.ts): which failures change a source's state, that a success
 * makes it ok again with the last error kept, that a watched provider reports its calls, and that the
 * read path (NetworkBlockSource) reports its final outcomes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { SourceHealth, brokenProvider, classifyFailure } from '../../src/daemon/health.js';
import { AuthError, ExpiredError, FsError, MisconfiguredError, NotFoundError, StaleError, TransientError, UnreachableError } from '../../src/core/errors.js';
import { retry } from '../../src/util/retry.js';
import type { ObjectVersion, Provider, RemoteEntry, SignedLocator } from '../../src/core/types.js';
import { NetworkBlockSource } from '../../src/read/block-source.js';
import { LocatorCache } from '../../src/read/locator-cache.js';
import { MemoryBlockCache } from '../../src/cache/memory-cache.js';
import { HttpTransport } from '../../src/transports/http.js';
import { startRangeServer, type RangeServer } from '../helpers/range-server.js';

describe('classifyFailure', () => {
  it('maps refusals, broken configs and unreachable servers; ignores what says nothing about the source', () => {
    expect(classifyFailure(new AuthError('x'), false)).toBe('login refused');
    expect(classifyFailure(new ExpiredError('x'), false)).toBe('login refused');
    expect(classifyFailure(new MisconfiguredError('x'), false)).toBe('misconfigured');
    expect(classifyFailure(new TransientError('x'), false)).toBe('unreachable');
    expect(classifyFailure(new TransientError('x', { status: 503 }), false)).toBe('unreachable');
    expect(classifyFailure(new TransientError('answer is not JSON', { status: 200 }), false)).toBe('misconfigured');
    expect(classifyFailure(new FsError('EIO', 'HTTP 400: Invalid scope'), true)).toBe('misconfigured');
    for (const e of [new FsError('EIO', 'x'), new NotFoundError('x'), new StaleError('x'), new TransientError('x', { status: 429 }), new DOMException('aborted', 'AbortError'), new Error('bug')]) {
      expect(classifyFailure(e, false), String(e)).toBeUndefined();
    }
    expect(classifyFailure(new NotFoundError('x'), true)).toBeUndefined();
  });
});

describe('SourceHealth', () => {
  it('starts unknown; a failure sets state, message and time; a success makes it ok and keeps the last error', () => {
    let now = Date.parse('2026-01-02T03:04:05Z');
    const h = new SourceHealth(['a', 'b'], () => now);
    expect(h.get('a')).toEqual({ state: 'unknown', since: '2026-01-02T03:04:05.000Z' });
    expect(h.failed('a', new AuthError('wordbee source "a": login refused: HTTP 400: bad key (POST https://h/api/auth/token?apiKey=SECRET1)'))).toBe('login refused');
    now += 1000;
    h.failed('a', new NotFoundError('a/x not found')); // says nothing about the source
    expect(h.get('a')).toEqual({
      state: 'login refused',
      since: '2026-01-02T03:04:05.000Z',
      lastError: { state: 'login refused', message: 'wordbee source "a": login refused: HTTP 400: bad key (POST https://h/api/auth/token?…)', time: '2026-01-02T03:04:05.000Z' },
    });
    now += 1000;
    h.ok('a');
    expect(h.get('a')).toMatchObject({ state: 'ok', since: '2026-01-02T03:04:07.000Z', lastError: { state: 'login refused' } });
    expect(h.get('b').state).toBe('unknown');
  });

  it('a watched provider reports listings (at the first entry), stats and locates; uploader and refused pass through', async () => {
    const h = new SourceHealth(['p']);
    let fail: unknown;
    const uploader = {} as ReturnType<NonNullable<Provider['uploader']>>;
    const refusedSeen: SignedLocator[] = [];
    const inner: Provider = {
      name: 'p',
      type: 'fixture',
      caps: { upload: true },
      async *list(): AsyncIterable<RemoteEntry> {
        if (fail) throw fail;
        for (let i = 0; i < 3; i++) yield { name: `f${i}`, kind: 'file', ref: `f${i}`, size: 1, mtimeMs: 0, version: 'v' };
      },
      stat: async () => {
        if (fail) throw fail;
        return { name: 'f', kind: 'file', ref: 'f', size: 1, mtimeMs: 0, version: 'v' };
      },
      locate: async () => {
        if (fail) throw fail;
        return { url: 'http://x/f', expiresAt: 0 };
      },
      refused: (_o, loc) => void refusedSeen.push(loc),
      uploader: () => uploader,
      close: async () => undefined,
    };
    const p = h.watch(inner);
    fail = new FsError('EIO', 'fixture source "p": POST search: HTTP 400: Invalid scope');
    await expect(async () => {
      for await (const _ of p.list('')) break;
    }).rejects.toBe(fail);
    expect(h.get('p')).toMatchObject({ state: 'misconfigured', lastError: { message: 'fixture source "p": POST search: HTTP 400: Invalid scope' } });
    fail = undefined;
    for await (const _ of p.list('')) break; // the reader stops after one entry: still proof the source answers
    expect(h.get('p').state).toBe('ok');
    fail = new TransientError('connect ECONNREFUSED 10.0.0.1:443');
    await expect(p.stat('f')).rejects.toBe(fail);
    expect(h.get('p').state).toBe('unreachable');
    fail = undefined;
    await p.locate({ source: 'p', ref: 'f', version: 'v', size: 1 });
    expect(h.get('p').state).toBe('ok');
    expect(p.uploader!()).toBe(uploader);
    p.refused!({ source: 'p', ref: 'f', version: 'v', size: 1 }, { url: 'u', expiresAt: 0 });
    expect(refusedSeen).toHaveLength(1);
    expect(p.caps.upload).toBe(true);
  });

  it('a source never reached whose server refuses connections fails at once, naming host:port, and is not retried; once it has answered, a refusal is retried again', async () => {
    const h = new SourceHealth(['down']);
    let calls = 0;
    let refuseNext = Infinity;
    const refused = () => new TransientError('stat x: connect ECONNREFUSED 127.0.0.1:9', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }) });
    const inner: Provider = {
      name: 'down',
      type: 's3',
      caps: { upload: false },
      async *list(): AsyncIterable<RemoteEntry> {
        calls++;
        if (refuseNext-- > 0) throw refused();
      },
      stat: async () => {
        calls++;
        if (refuseNext-- > 0) throw refused();
        return { name: 'x', kind: 'file', ref: 'x', size: 1, mtimeMs: 0, version: 'v' };
      },
      locate: async () => ({ url: 'http://x/f', expiresAt: 0 }),
      close: async () => undefined,
    };
    const p = h.watch(inner);
    // The retry loops of the listing and read paths: two seconds of 1 ms backoff would be hundreds of calls.
    const retried = <T>(fn: () => Promise<T>) => retry(fn, { maxTimeMs: 2_000, baseDelayMs: 1, maxDelayMs: 1 });
    const e = await retried(() => p.stat('x')).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UnreachableError);
    expect((e as Error).message).toBe('s3 source "down": unreachable: stat x: connect ECONNREFUSED 127.0.0.1:9 (not answered since start: not retried until it does)');
    expect(calls).toBe(1);
    expect(h.get('down').state).toBe('unreachable');
    const listed = await retried(async () => {
      for await (const _ of p.list('')) void _;
    }).catch((err: unknown) => err);
    expect(listed).toBeInstanceOf(UnreachableError);
    expect(calls).toBe(2);
    // The server comes up: the next call gets through and the source is ok.
    refuseNext = 0;
    await p.stat('x');
    expect(h.get('down').state).toBe('ok');
    // Reached once, a refused connection is a server restarting: retried like any transient fault.
    calls = 0;
    refuseNext = 2;
    await expect(retried(() => p.stat('x'))).resolves.toMatchObject({ name: 'x' });
    expect(calls).toBe(3);
  });

  it('a success at the root (which may not reach the platform: Wordbee lists its scopes from the config) does not clear a failure below it', async () => {
    const h = new SourceHealth(['wb']);
    const refused = new AuthError('wordbee source "wb": login refused: HTTP 400: Invalid account id or API key.');
    const inner: Provider = {
      name: 'wb',
      type: 'wordbee',
      caps: { upload: false },
      async *list(dir: string): AsyncIterable<RemoteEntry> {
        if (dir !== '') throw refused;
        yield { name: 'pr1', kind: 'dir', ref: 'd:pr1', size: 0, mtimeMs: 0, version: '' };
      },
      stat: async (ref: string) => ({ name: ref, kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' }),
      locate: async () => ({ url: 'http://x/f', expiresAt: 0 }),
      close: async () => undefined,
    };
    const p = h.watch(inner);
    for await (const _ of p.list('')) break;
    expect(h.get('wb').state).toBe('ok');
    await expect(async () => {
      for await (const _ of p.list('d:pr1')) break;
    }).rejects.toBe(refused);
    for await (const _ of p.list('')) break;
    await p.stat('');
    expect(h.get('wb').state).toBe('login refused');
    await p.stat('d:pr1'); // below the root: the platform answered
    expect(h.get('wb').state).toBe('ok');
  });

  it('a provider that could not be built fails every call as misconfigured, naming why', async () => {
    const h = new SourceHealth(['ams']);
    const p = h.watch(brokenProvider({ name: 'ams', type: 'ams' }, new Error('needs either token, or tokenUrl with clientId and clientSecret')));
    await expect(p.stat('')).rejects.toThrow('ams source "ams": cannot be set up: needs either token, or tokenUrl with clientId and clientSecret');
    await expect(p.stat('')).rejects.toBeInstanceOf(MisconfiguredError);
    expect(h.get('ams').state).toBe('misconfigured');
  });
});

describe('the read path reports its final outcomes', () => {
  const BS = 64 * 1024;
  let server: RangeServer;
  let transport: HttpTransport;
  beforeAll(async () => {
    server = await startRangeServer({ tokens: true });
    transport = new HttpTransport({ requestTimeoutMs: 2_000 });
  });
  afterAll(async () => {
    await transport?.close();
    await server?.close();
  });

  it('a read refused after every re-mint is "login refused"; the next good read makes the source ok', async () => {
    const data = randomBytes(2 * BS);
    const obj: ObjectVersion = { source: 'src', ref: 'r.bin', version: server.put('r.bin', data), size: data.length };
    const provider: Provider = {
      name: 'src',
      type: 'fixture',
      caps: { upload: false },
      async *list() {},
      stat: async () => {
        throw new NotFoundError('x');
      },
      locate: async () => ({ url: server.url('r.bin', server.issueToken()), expiresAt: Date.now() + 3_600_000 }),
      close: async () => undefined,
    };
    const health = new SourceHealth(['src']);
    const blocks = new NetworkBlockSource({
      cache: new MemoryBlockCache({ maxBytes: 8 * BS, blockSize: BS }),
      transport,
      locators: new LocatorCache(),
      providerFor: () => provider,
      maxRetryTimeMs: 2_000,
      retryBaseDelayMs: 1,
      health,
    });
    server.inject('r.bin', { kind: 'status', status: 403 }, Infinity);
    await expect(blocks.readBlock(obj, 0)).rejects.toBeInstanceOf(ExpiredError);
    expect(health.get('src').state).toBe('login refused');
    server.clearFaults('r.bin');
    expect((await blocks.readBlock(obj, 1)).equals(data.subarray(BS))).toBe(true);
    // The reader is answered as its block arrives, before the GET has ended and reported.
    for (let i = 0; i < 500 && health.get('src').state !== 'ok'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(health.get('src')).toMatchObject({ state: 'ok', lastError: { state: 'login refused' } });
  });
});
