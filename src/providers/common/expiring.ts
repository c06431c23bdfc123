/**
 * Expiring credentials (docs/providers.md "Expiring credentials"): API tokens, MK.IO storage access,
 * AMS read locators and write grants, and the read path's signed-URL cache all follow one margin rule
 * and, where one value serves every caller, one single-flight holder.
 *
 * Invariants:
 *  - The margin rule: a credential issued at t0 that expires at t1 is handed out until
 *    t1 - min(60 s, 25 % of (t1 - t0)); a read or an upload part never starts on one about to die.
 *  - One issue at a time per holder, however many callers wait; a caller's signal stops only its own
 *    wait, never the shared issue (other callers still want it).
 *  - invalidate() forgets the held credential (it was refused before its time); invalidate(value)
 *    forgets it only when it is that value, so a newer one issued meanwhile is kept. An issue under
 *    way is kept either way: it began after whatever was refused was issued, so it is newer. Waiters
 *    on it are served by it.
 *  - A failed issue is not cached: the next get() tries again.
 */
import { abortable } from '../../util/abortable.js';

/** The margin is at most this long … */
export const MAX_MARGIN_MS = 60_000;
/** … and at most this share of the credential's lifetime. */
export const MARGIN_FRACTION = 0.25;

/** Until when a credential issued at `issuedAt` and expiring at `expiresAt` is handed out. */
export function useUntil(issuedAt: number, expiresAt: number): number {
  return expiresAt - Math.min(MAX_MARGIN_MS, MARGIN_FRACTION * Math.max(0, expiresAt - issuedAt));
}

export interface Issued<T> {
  readonly value: T;
  /** Epoch ms; Infinity for a credential that never expires. */
  readonly expiresAt: number;
}

export class ExpiringCredential<T> {
  private held: { value: T; useUntil: number } | undefined;
  private inflight: Promise<T> | undefined;

  constructor(private readonly issue: () => Promise<Issued<T>>) {}

  /** The held credential while the margin rule allows, else a fresh one (one issue for all callers). */
  get(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.held && Date.now() < this.held.useUntil) return Promise.resolve(this.held.value);
    if (!this.inflight) {
      const issuedAt = Date.now();
      const p: Promise<T> = this.issue()
        .then(({ value, expiresAt }) => {
          this.held = { value, useUntil: useUntil(issuedAt, expiresAt) };
          return value;
        })
        .finally(() => {
          if (this.inflight === p) this.inflight = undefined;
        });
      p.catch(() => undefined); // waiters see the failure; an abandoned issue is no unhandled rejection
      this.inflight = p;
    }
    return abortable(this.inflight, signal);
  }

  /** The credential held now, if any (no issue). */
  peek(): T | undefined {
    return this.held?.value;
  }

  /** Forget the held credential (with `value`: only when it is the one held): it was refused. */
  invalidate(value?: T): void {
    if (value === undefined || this.held?.value === value) this.held = undefined;
  }
}

/** One ExpiringCredential per key (an asset's access, …), created on first use. */
export class ExpiringCredentials<K, T> {
  private readonly holders = new Map<K, ExpiringCredential<T>>();

  constructor(private readonly issue: (key: K) => Promise<Issued<T>>) {}

  get(key: K, signal?: AbortSignal): Promise<T> {
    let h = this.holders.get(key);
    if (!h) {
      h = new ExpiringCredential(() => this.issue(key));
      this.holders.set(key, h);
    }
    return h.get(signal);
  }

  peek(key: K): T | undefined {
    return this.holders.get(key)?.peek();
  }

  invalidate(key: K, value?: T): void {
    this.holders.get(key)?.invalidate(value);
  }

  /** Drops every holder (a key's next get() issues anew). */
  clear(): void {
    this.holders.clear();
  }
}
