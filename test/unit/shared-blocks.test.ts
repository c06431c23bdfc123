/**
 * The claim protocol of the shared block tier (src/farm/shared-blocks.ts) against a real Redis, two
 * "hosts" being two SharedBlocks with their own owner ids on one RedisStore each: a holder that
 * delivers wakes the waiter with the block; a holder that died (its claim lapses) is taken over; a
 * holder too slow is given up on after lockTtl; frames that do not check are misses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { RedisStore } from '../../src/farm/redis-store.js';
import { CircuitBreaker } from '../../src/farm/breaker.js';
import { GuardedStore } from '../../src/farm/guarded-store.js';
import { SharedBlocks } from '../../src/farm/shared-blocks.js';
import { decodeFrame, encodeFrame, identityOf, objectHash } from '../../src/farm/block-frame.js';
import { silentLogger } from '../../src/util/logger.js';
import type { ObjectVersion } from '../../src/core/types.js';

let redis: RedisServer;
const stores: RedisStore[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const s of stores) await s.close();
  await redis?.stop();
});

async function host(owner: string, lockTtlMs: number): Promise<{ blocks: SharedBlocks; store: GuardedStore }> {
  const engine = new RedisStore(redis.socket, silentLogger, 't:');
  stores.push(engine);
  expect(await engine.connect(5_000)).toBe(true);
  const store = new GuardedStore(engine, new CircuitBreaker({ timeoutMs: 5_000, probe: () => engine.probe(), log: silentLogger }));
  return { store, blocks: new SharedBlocks({ store, keyPrefix: 't:', owner, lockTtlMs, writeQueueBytes: 1 << 24, log: silentLogger, pollMs: { first: 5, max: 20 } }) };
}

let n = 0;
const object = (): ObjectVersion => ({ source: 's3', ref: `obj-${++n}`, version: 'v1', size: 3000 });
const DATA = Buffer.alloc(1000, 7);

describe('one fetch for the farm', () => {
  it('the first host to miss claims the block; the second waits and gets the block the first shares', async () => {
    const a = await host('A', 30_000);
    const b = await host('B', 30_000);
    const obj = object();
    expect(await a.blocks.lookup(obj, 1, DATA.length)).toBeUndefined(); // A claims: A fetches from the origin
    let onWait!: () => void;
    const isWaiting = new Promise<void>((r) => (onWait = r));
    const waiting = b.blocks.lookup(obj, 1, DATA.length, onWait);
    await isWaiting; // B found A's claim and waits (onWait comes before the wait)
    a.blocks.share(obj, 1, DATA);
    expect(await waiting).toEqual(DATA);
    expect(b.blocks.stats()).toMatchObject({ hits: 1, misses: 0, waits: 1, waitHits: 1 });
    await a.blocks.flushed();
    expect(await redis.cli(`exists 't:bl:${objectHash(obj)}:1'`)).toMatch(/^0/); // the claim is dropped once the block is stored
  });

  it('a holder that died: its claim lapses and a waiter takes it over (and fetches)', async () => {
    const b = await host('B', 30_000);
    const obj = object();
    const dead = await host('dead', 30_000);
    // The dead host's claim, as it would be left: it lapses after 300 ms.
    expect(await dead.store.setIfAbsent(`t:bl:${objectHash(obj)}:0`, 'dead', 300)).toBe(true);
    expect(await b.blocks.lookup(obj, 0, DATA.length)).toBeUndefined();
    expect(b.blocks.stats()).toMatchObject({ waits: 1, waitHits: 0, misses: 1 });
    // B now holds the claim: a third host waits for B rather than fetching too.
    const c = await host('C', 30_000);
    const third = c.blocks.lookup(obj, 0, DATA.length);
    b.blocks.share(obj, 0, DATA);
    expect(await third).toEqual(DATA);
  });

  it('a holder too slow: the waiter gives up after lockTtl and fetches itself', async () => {
    const a = await host('A', 30_000);
    const b = await host('B', 200);
    const obj = object();
    expect(await a.blocks.lookup(obj, 2, DATA.length)).toBeUndefined();
    expect(await b.blocks.lookup(obj, 2, DATA.length)).toBeUndefined();
    expect(b.blocks.stats()).toMatchObject({ waits: 1, waitHits: 0 });
  });
});

describe('framed blocks', () => {
  const obj: ObjectVersion = { source: 's3', ref: 'k', version: 'etag-1', size: 5000 };
  const frame = encodeFrame(identityOf(obj), 3, DATA);

  it('decodes only for the same object version, index and length, with both CRCs right', () => {
    expect(decodeFrame(frame, identityOf(obj), 3, DATA.length)).toEqual(DATA);
    expect(decodeFrame(frame, identityOf({ ...obj, version: 'etag-2' }), 3, DATA.length)).toBeUndefined();
    expect(decodeFrame(frame, identityOf(obj), 4, DATA.length)).toBeUndefined();
    expect(decodeFrame(frame, identityOf(obj), 3, DATA.length - 1)).toBeUndefined();
    expect(decodeFrame(frame.subarray(0, frame.length - 1), identityOf(obj), 3, DATA.length)).toBeUndefined();
    for (const at of [2, 13, 30, frame.length - 1]) {
      const bad = Buffer.from(frame);
      bad[at]! ^= 0x01;
      expect(decodeFrame(bad, identityOf(obj), 3, DATA.length)).toBeUndefined();
    }
  });

  it('a stored frame that does not check is deleted and is a miss', async () => {
    const a = await host('A', 30_000);
    const o = object();
    a.blocks.share(o, 0, DATA);
    await a.blocks.flushed();
    const key = `t:b:${objectHash(o)}:0`;
    await redis.cli(`setrange '${key}' 100 ZZ`);
    const b = await host('B', 30_000);
    expect(await b.blocks.lookup(o, 0, DATA.length)).toBeUndefined(); // a miss: B claims it and fetches
    expect(b.blocks.stats().corrupt).toBe(1);
    expect(await redis.cli(`exists '${key}'`)).toMatch(/^0/);
  });
});
