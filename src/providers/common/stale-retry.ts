/**
 * "Retry once when an id went stale" (docs/providers.md "Cached ids"): providers cache name → id
 * answers (folder ids, asset ids) to spare the platform's rate limits. Another client may delete or
 * rename behind our back, and then a call with a cached id answers 404. Such a call is run once more
 * after the cache is forgotten; a second 404 is the truth (the thing is gone), and anything that was
 * not answered from a cache (`cached()` false) is never repeated.
 */
import { NotFoundError } from '../../core/errors.js';

export interface IdCache {
  /** Whether any answer is cached now (with nothing cached, a 404 cannot be a stale id). */
  cached(): boolean;
  /** Forget every cached answer. */
  forget(): void;
}

export async function retryOnceIfStale<T>(cache: IdCache, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof NotFoundError) || !cache.cached()) throw e;
    cache.forget();
    return fn();
  }
}

/** An IdCache over a Map (or anything with size and clear()). */
export const mapCache = (m: { readonly size: number; clear(): void }): IdCache => ({ cached: () => m.size > 0, forget: () => m.clear() });
