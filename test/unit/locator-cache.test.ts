import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocatorCache } from '../../src/read/locator-cache.js';
import { NotFoundError, TransientError } from '../../src/core/errors.js';
import type { ObjectVersion, Provider, RemoteEntry, SignedLocator } from '../../src/core/types.js';

/** A provider fixture whose locate() mints numbered URLs with a chosen lifetime, and can be held open. */
class MintingProvider implements Provider {
  readonly name = 'p';
  readonly type = 'fixture';
  readonly caps = { upload: false };
  mints = 0;
  lifetimeMs = 3_600_000;
  failNext: unknown;
  gate: Promise<void> | undefined;
  async *list(): AsyncIterable<RemoteEntry> {}
  async stat(ref: string): Promise<RemoteEntry> {
    throw new NotFoundError(ref);
  }
  async locate(obj: ObjectVersion): Promise<SignedLocator> {
    const n = ++this.mints;
    if (this.gate) await this.gate;
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = undefined;
      throw e;
    }
    return { url: `http://h/${obj.ref}?sig=${n}`, expiresAt: Date.now() + this.lifetimeMs };
  }
  async close(): Promise<void> {}
}

const obj: ObjectVersion = { source: 'p', ref: 'a', version: 'v1', size: 10 };

describe('LocatorCache', () => {
  it('reuses a locator while it is fresh, and mints once for concurrent callers', async () => {
    const p = new MintingProvider();
    const c = new LocatorCache();
    const all = await Promise.all(Array.from({ length: 5 }, () => c.get(p, obj)));
    expect(new Set(all.map((l) => l.url)).size).toBe(1);
    expect((await c.get(p, obj)).url).toBe(all[0]!.url);
    expect(p.mints).toBe(1);
  });

  it('keeps versions and refs apart', async () => {
    const p = new MintingProvider();
    const c = new LocatorCache();
    await c.get(p, obj);
    await c.get(p, { ...obj, version: 'v2' });
    await c.get(p, { ...obj, ref: 'b' });
    expect(p.mints).toBe(3);
  });

  describe('expiry (with a fake clock)', () => {
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    });
    afterEach(() => {
      vi.useRealTimers();
    });
    const at = (s: number) => vi.setSystemTime(new Date(Date.parse('2030-01-01T00:00:00Z') + s * 1000));

    it('skew is 25 % of a short lifetime (the margin rule of providers/common/expiring.ts)', async () => {
      const p = new MintingProvider();
      p.lifetimeMs = 100_000; // skew 25 s
      const c = new LocatorCache();
      await c.get(p, obj);
      at(74);
      expect((await c.get(p, obj)).url).toMatch(/sig=1$/);
      at(76);
      expect((await c.get(p, obj)).url).toMatch(/sig=2$/);
    });

    it('skew is at most 60 s for a long lifetime', async () => {
      const p = new MintingProvider();
      p.lifetimeMs = 1_000_000; // 25 % would be 250 s
      const c = new LocatorCache();
      await c.get(p, obj);
      at(939);
      expect((await c.get(p, obj)).url).toMatch(/sig=1$/);
      at(941);
      expect((await c.get(p, obj)).url).toMatch(/sig=2$/);
    });

    it('an explicit skew wins, and Infinity never expires', async () => {
      const p = new MintingProvider();
      p.lifetimeMs = 100_000;
      const c = new LocatorCache({ skewMs: 50_000 });
      await c.get(p, obj);
      at(49);
      expect((await c.get(p, obj)).url).toMatch(/sig=1$/);
      at(51);
      expect((await c.get(p, obj)).url).toMatch(/sig=2$/);
      p.lifetimeMs = Infinity;
      const other = { ...obj, ref: 'forever' };
      await c.get(p, other);
      at(10_000_000);
      expect((await c.get(p, other)).url).toMatch(/sig=3$/);
    });
  });

  it('invalidate(obj, stale) keeps a fresher locator minted meanwhile', async () => {
    const p = new MintingProvider();
    const c = new LocatorCache();
    const first = await c.get(p, obj);
    c.invalidate(obj, first);
    const second = await c.get(p, obj);
    expect(second.url).not.toBe(first.url);
    c.invalidate(obj, first); // a late reader reporting the old URL
    expect((await c.get(p, obj)).url).toBe(second.url);
    c.invalidate(obj);
    expect((await c.get(p, obj)).url).not.toBe(second.url);
  });

  it('a failed mint is not cached, and the error reaches every waiter', async () => {
    const p = new MintingProvider();
    p.failNext = new TransientError('503');
    const c = new LocatorCache();
    const results = await Promise.allSettled([c.get(p, obj), c.get(p, obj)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(p.mints).toBe(1);
    expect((await c.get(p, obj)).url).toMatch(/sig=2$/);
  });

  it('clear() during a mint: that result is not cached and later callers mint afresh', async () => {
    const p = new MintingProvider();
    let open!: () => void;
    p.gate = new Promise((r) => (open = r));
    const c = new LocatorCache();
    const during = c.get(p, obj);
    c.clear('p');
    p.gate = undefined;
    const after = c.get(p, obj);
    open();
    expect((await during).url).toMatch(/sig=1$/);
    expect((await after).url).toMatch(/sig=2$/);
    expect((await c.get(p, obj)).url).toMatch(/sig=2$/);
  });

  it('a caller signal abandons only that wait', async () => {
    const p = new MintingProvider();
    let open!: () => void;
    p.gate = new Promise((r) => (open = r));
    const c = new LocatorCache();
    const ac = new AbortController();
    const aborted = c.get(p, obj, ac.signal);
    const patient = c.get(p, obj);
    ac.abort(new Error('gone'));
    open();
    await expect(aborted).rejects.toThrow('gone');
    expect((await patient).url).toMatch(/sig=1$/);
    expect(p.mints).toBe(1);
  });

  it('clear(source) only forgets that source', async () => {
    const p = new MintingProvider();
    const c = new LocatorCache();
    await c.get(p, obj);
    await c.get(p, { ...obj, source: 'q' });
    c.clear('q');
    await c.get(p, obj);
    await c.get(p, { ...obj, source: 'q' });
    expect(p.mints).toBe(3);
  });
});
