/** The shared helpers of src/providers/common: part size, block-list session ids, expiring credentials, retry-once-stale. */
import { describe, expect, it, vi } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { createProvider } from '../../src/providers/registry.js';
import { silentLogger } from '../../src/util/logger.js';
import { NotFoundError, TransientError } from '../../src/core/errors.js';
import { DEFAULT_PART_BYTES, MAX_PARTS, partSizeFor } from '../../src/providers/common/part-size.js';
import { BlockListSession, blockId, blockPart, newBlockTag } from '../../src/providers/common/azure-blocks.js';
import { ExpiringCredential, ExpiringCredentials, MAX_MARGIN_MS, useUntil } from '../../src/providers/common/expiring.js';
import { mapCache, retryOnceIfStale } from '../../src/providers/common/stale-retry.js';

const MiB = 1024 * 1024;

/** A promise with its resolve/reject handed out (an issue the test finishes when it wants). */
function gate<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('partSizeFor', () => {
  it('is the floor for small files and grows in whole MiB to stay within the part limit', () => {
    expect(partSizeFor(0, MAX_PARTS.s3)).toBe(DEFAULT_PART_BYTES);
    expect(partSizeFor(1_000 * MiB, MAX_PARTS.s3)).toBe(DEFAULT_PART_BYTES);
    const huge = 200 * 1024 * 1024 * MiB; // 200 TiB
    for (const max of [MAX_PARTS.s3, MAX_PARTS.azureBlocks]) {
      const p = partSizeFor(huge, max);
      expect(p % MiB).toBe(0);
      expect(Math.ceil(huge / p)).toBeLessThanOrEqual(max);
      expect(Math.ceil(huge / (p - MiB))).toBeGreaterThan(max); // the smallest such size
    }
  });

  it('takes another floor (tests) and never goes under it', () => {
    expect(partSizeFor(0, MAX_PARTS.s3, 64 * 1024)).toBe(64 * 1024);
    expect(partSizeFor(10, MAX_PARTS.s3, 5 * MiB)).toBe(5 * MiB);
    expect(partSizeFor(20_000 * MiB, MAX_PARTS.s3, 64 * 1024)).toBe(2 * MiB);
  });
});

describe('BlockListSession', () => {
  it('gives every block of one blob an id of the same length, and knows its own', () => {
    const tag = newBlockTag();
    const ids = [1, 99, 123_456].map((n) => blockId(tag, n));
    expect(new Set(ids.map((i) => i.length)).size).toBe(1);
    expect(ids.map((i) => blockPart(tag, i))).toEqual([1, 99, 123_456]);
    expect(blockPart(newBlockTag(), ids[0]!)).toBeUndefined(); // another session's block
  });

  it('lists exactly parts 1..n in order, or nothing', () => {
    const s = new BlockListSession(newBlockTag());
    const part = (n: number, tag = s.tag) => ({ number: n, etag: blockId(tag, n), size: 1 });
    expect(s.blockList([part(2), part(1), part(3)])).toEqual([1, 2, 3].map((n) => blockId(s.tag, n)));
    expect(s.blockList([part(1), part(3)])).toBeUndefined();
    expect(s.blockList([part(1), part(2, newBlockTag())])).toBeUndefined();
  });
});

describe('expiring credentials: the margin rule', () => {
  it('is min(60 s, 25 % of the lifetime) before expiry', () => {
    expect(useUntil(0, 4_000)).toBe(3_000);
    expect(useUntil(0, 3_600_000)).toBe(3_600_000 - MAX_MARGIN_MS);
    expect(useUntil(1_000, 500)).toBe(500); // already expired when issued: no margin to take
    expect(useUntil(0, Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
  });

  it('reuses a credential inside its life and issues a new one inside the margin', async () => {
    let n = 0;
    let life = 400_000;
    const c = new ExpiringCredential(async () => ({ value: `t${++n}`, expiresAt: Date.now() + life }));
    expect(await c.get()).toBe('t1');
    expect(await c.get()).toBe('t1');
    life = 0; // expires as it is issued: never reused
    c.invalidate();
    expect(await c.get()).toBe('t2');
    expect(await c.get()).toBe('t3');
  });
});

describe('ExpiringCredential: single flight', () => {
  it('one issue serves every concurrent caller', async () => {
    const g = gate<{ value: string; expiresAt: number }>();
    let issues = 0;
    const c = new ExpiringCredential(() => (issues++, g.promise));
    const waiting = Array.from({ length: 20 }, () => c.get());
    g.resolve({ value: 'tok', expiresAt: Date.now() + 3_600_000 });
    expect(await Promise.all(waiting)).toEqual(Array(20).fill('tok'));
    expect(issues).toBe(1);
    expect(await c.get()).toBe('tok');
    expect(issues).toBe(1);
  });

  it("a caller's abort stops its own wait only; the others get the shared issue", async () => {
    const g = gate<{ value: string; expiresAt: number }>();
    const c = new ExpiringCredential(() => g.promise);
    const ac = new AbortController();
    const mine = c.get(ac.signal);
    const theirs = c.get();
    ac.abort(new Error('caller gave up'));
    await expect(mine).rejects.toThrow('caller gave up');
    g.resolve({ value: 'tok', expiresAt: Date.now() + 3_600_000 });
    expect(await theirs).toBe('tok');
    expect(c.peek()).toBe('tok');
  });

  it('a failed issue is not kept: the next caller issues again', async () => {
    let n = 0;
    const c = new ExpiringCredential(async () => {
      if (++n === 1) throw new TransientError('login: 503');
      return { value: 'ok', expiresAt: Date.now() + 3_600_000 };
    });
    const both = await Promise.allSettled([c.get(), c.get()]);
    expect(both.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(await c.get()).toBe('ok');
    expect(n).toBe(2);
  });

  it('invalidate(value) forgets only that value: a newer one stays', async () => {
    let n = 0;
    const c = new ExpiringCredential(async () => ({ value: `t${++n}`, expiresAt: Date.now() + 3_600_000 }));
    const old = await c.get();
    c.invalidate(old);
    const fresh = await c.get();
    expect(fresh).toBe('t2');
    c.invalidate(old); // a late refusal of the old one
    expect(await c.get()).toBe('t2');
    c.invalidate();
    expect(await c.get()).toBe('t3');
  });

  it('keyed holders issue once per key', async () => {
    const issued: string[] = [];
    const c = new ExpiringCredentials<string, string>(async (k) => (issued.push(k), { value: `${k}!`, expiresAt: Date.now() + 3_600_000 }));
    expect(await Promise.all([c.get('a'), c.get('a'), c.get('b')])).toEqual(['a!', 'a!', 'b!']);
    expect(issued.sort()).toEqual(['a', 'b']);
    c.invalidate('a', 'a!');
    expect(await c.get('a')).toBe('a!');
    expect(issued.length).toBe(3);
  });
});

describe('retryOnceIfStale', () => {
  it('a 404 with ids cached forgets them and runs once more', async () => {
    const ids = new Map([['folder', 'old-id']]);
    let calls = 0;
    const r = await retryOnceIfStale(mapCache(ids), async () => {
      if (++calls === 1) throw new NotFoundError('folder old-id: 404');
      return ids.size;
    });
    expect(r).toBe(0);
    expect(calls).toBe(2);
  });

  it('a second 404 is the answer, and nothing is repeated without a cache or for other errors', async () => {
    const ids = new Map([['folder', 'old-id']]);
    let calls = 0;
    await expect(retryOnceIfStale(mapCache(ids), async () => { calls++; throw new NotFoundError('gone'); })).rejects.toThrow('gone');
    expect(calls).toBe(2);
    calls = 0;
    await expect(retryOnceIfStale(mapCache(new Map()), async () => { calls++; throw new NotFoundError('gone'); })).rejects.toThrow('gone');
    expect(calls).toBe(1);
    calls = 0;
    await expect(retryOnceIfStale(mapCache(new Map([['x', 'y']])), async () => { calls++; throw new TransientError('503'); })).rejects.toThrow('503');
    expect(calls).toBe(1);
  });
});

describe('one uploader lifetime', () => {
  const sources = [
    { name: 's3', type: 's3', bucket: 'b', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', accessKeyId: 'k', secretAccessKey: 's' },
    { name: 'az', type: 'azure-blob', accountUrl: 'http://127.0.0.1:9/devstoreaccount1', container: 'c', accountName: 'devstoreaccount1', accountKey: Buffer.from('k').toString('base64') },
    { name: 'wb', type: 'wordbee', baseUrl: 'http://127.0.0.1:9', accountId: 'a', apiKey: 'k', scopes: ['pr1'] },
    { name: 'nm', type: 'nomad', baseUrl: 'http://127.0.0.1:9', username: 'u', password: 'p', applicationId: '00000000-0000-0000-0000-000000000000' },
    { name: 'mh', type: 'mediahub', baseUrl: 'http://127.0.0.1:9', clientId: 'c', clientSecret: 's' },
    { name: 'ams', type: 'ams', restUrl: 'http://127.0.0.1:9/api/', token: 't' },
    { name: 'mk', type: 'mkio', baseUrl: 'http://127.0.0.1:9', project: 'p', token: 't', storage: { type: 'azure', url: 'http://127.0.0.1:9/acct', sasToken: 'sv=1' } },
  ];

  it.each(sources.map((s) => [s.type, s] as const))('%s: uploader() is the one made with the provider, and close() closes it', async (_type, src) => {
    const cfg = ConfigSchema.parse({ sources: [src] }).sources[0]!;
    const p = await createProvider(cfg, { log: silentLogger });
    const up = p.uploader!();
    expect(p.uploader!()).toBe(up);
    const close = vi.spyOn(up, 'close' as never);
    await p.close?.();
    expect(close).toHaveBeenCalledTimes(1);
  });
});
