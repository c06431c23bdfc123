import { describe, expect, it } from 'vitest';
import { retry, sleep } from '../../src/util/retry.js';
import { NotFoundError, TransientError } from '../../src/core/errors.js';

describe('retry (src/util/retry.ts)', () => {
  it('returns the first success and passes the attempt number', async () => {
    const seen: number[] = [];
    const v = await retry(
      async (attempt) => {
        seen.push(attempt);
        if (attempt < 3) throw new TransientError('flaky');
        return 'ok';
      },
      { maxTimeMs: 10_000, baseDelayMs: 1 },
    );
    expect(v).toBe('ok');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('by default retries only TransientError', async () => {
    let calls = 0;
    const err = new NotFoundError('gone');
    await expect(
      retry(
        async () => {
          calls++;
          throw err;
        },
        { maxTimeMs: 10_000, baseDelayMs: 1 },
      ),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
  });

  it('uses a custom retryable predicate', async () => {
    let calls = 0;
    const v = await retry(
      async () => {
        if (++calls < 2) throw new Error('custom');
        return calls;
      },
      { maxTimeMs: 10_000, baseDelayMs: 1, retryable: (e) => (e as Error).message === 'custom' },
    );
    expect(v).toBe(2);
  });

  it('rethrows the last error once the time budget is spent', async () => {
    let calls = 0;
    const errors: TransientError[] = [];
    const p = retry(
      async () => {
        const e = new TransientError(`fail ${++calls}`);
        errors.push(e);
        throw e;
      },
      { maxTimeMs: 200, baseDelayMs: 5, maxDelayMs: 10 },
    );
    const e = await p.catch((x: unknown) => x);
    expect(e).toBe(errors[errors.length - 1]);
    expect(calls).toBeGreaterThan(1);
  });

  it('delays are full-jitter: within [0, min(max, base·2^(n-1))]', async () => {
    const delays: Array<[number, number]> = [];
    await retry(
      async (attempt) => {
        if (attempt <= 6) throw new TransientError('x');
        return 0;
      },
      { maxTimeMs: 60_000, baseDelayMs: 2, maxDelayMs: 16, onRetry: (_e, attempt, d) => delays.push([attempt, d]) },
    );
    expect(delays.map(([a]) => a)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const [attempt, d] of delays) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(Math.min(16, 2 * 2 ** (attempt - 1)));
    }
  });

  it("honours a TransientError's retryAfterMs as the least delay", async () => {
    const delays: number[] = [];
    await retry(
      async (attempt) => {
        if (attempt === 1) throw new TransientError('429', { status: 429, retryAfterMs: 30 });
        return 0;
      },
      { maxTimeMs: 10_000, baseDelayMs: 1, onRetry: (_e, _a, d) => delays.push(d) },
    );
    expect(delays).toEqual([30]);
  });

  it('gives up at once when Retry-After points past the deadline', async () => {
    let calls = 0;
    const e = await retry(
      async () => {
        calls++;
        throw new TransientError('busy', { status: 503, retryAfterMs: 60_000 });
      },
      { maxTimeMs: 1_000, baseDelayMs: 1 },
    ).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TransientError);
    expect(calls).toBe(1);
  });

  it('stops with the abort reason, also in the middle of a delay', async () => {
    const ac = new AbortController();
    let calls = 0;
    const p = retry(
      async () => {
        calls++;
        throw new TransientError('x', { retryAfterMs: 5_000 });
      },
      {
        maxTimeMs: 60_000,
        signal: ac.signal,
        onRetry: () => queueMicrotask(() => ac.abort(new Error('stop'))),
      },
    );
    await expect(p).rejects.toThrow('stop');
    expect(calls).toBe(1);
  });

  it('does not call fn when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('early'));
    let calls = 0;
    await expect(retry(async () => ++calls, { maxTimeMs: 1000, signal: ac.signal })).rejects.toThrow('early');
    expect(calls).toBe(0);
  });

  it('sleep rejects on abort', async () => {
    const ac = new AbortController();
    const p = sleep(10_000, ac.signal);
    ac.abort(new Error('bye'));
    await expect(p).rejects.toThrow('bye');
  });
});
