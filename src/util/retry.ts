/**
 * Retry with full-jitter exponential backoff (rclone lib/pacer, AWS "full jitter").
 *
 * Invariants:
 *  - Only errors that `retryable` accepts are retried (default: TransientError); others pass through at once.
 *  - A TransientError's `retryAfterMs` (429/503 Retry-After) is a floor for the next delay.
 *  - The whole call never outlasts `maxTimeMs` by more than one attempt: once the deadline is reached, or
 *    the server asks us to wait past it, the last error is rethrown unchanged.
 *  - An aborted signal stops everything with the signal's reason, also in the middle of a delay.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { TransientError } from '../core/errors.js';

export interface RetryOptions {
  /** Total time budget across all attempts and delays. */
  maxTimeMs: number;
  /** First backoff ceiling; the ceiling doubles per attempt. Default 100 ms. */
  baseDelayMs?: number;
  /** Largest backoff ceiling. Default 10 s. */
  maxDelayMs?: number;
  signal?: AbortSignal;
  /** Which errors are worth another attempt. Default: TransientError only. */
  retryable?: (e: unknown) => boolean;
  /** Called before each delay (for logging and metrics). */
  onRetry?: (e: unknown, attempt: number, delayMs: number) => void;
}

const isTransient = (e: unknown) => e instanceof TransientError;

/**
 * Run `fn` until it succeeds, fails with a non-retryable error, or `maxTimeMs` has passed.
 * `attempt` is 1 for the first call.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const base = Math.max(0, opts.baseDelayMs ?? 100);
  const cap = Math.max(base, opts.maxDelayMs ?? 10_000);
  const retryable = opts.retryable ?? isTransient;
  const deadline = Date.now() + Math.max(0, opts.maxTimeMs);
  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (e) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (!retryable(e)) throw e;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw e;
      const ceiling = Math.min(cap, base * 2 ** Math.min(attempt - 1, 30));
      let delay = Math.random() * ceiling;
      const retryAfter = e instanceof TransientError ? e.retryAfterMs : undefined;
      if (retryAfter !== undefined) {
        // The server told us when it will take requests again; asking earlier only adds load.
        if (retryAfter > remaining) throw e;
        delay = Math.max(delay, retryAfter);
      }
      delay = Math.min(Math.round(delay), remaining);
      opts.onRetry?.(e, attempt, delay);
      await sleep(delay, opts.signal);
    }
  }
}

/** node:timers/promises' setTimeout, rejecting with the signal's own reason (not an AbortError wrapping it) when aborted. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch (e) {
    throw signal?.aborted ? signal.reason : e;
  }
}
