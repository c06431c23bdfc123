/**
 * Bounds on every network call (docs/semantics.md, "Bounded calls"): a connect/stall timeout, an overall
 * deadline, and a cap on API bodies read into memory. One value, built from `retry.*`, is handed to the
 * read transport, the platform API clients and the storage SDK clients.
 *
 * Invariants:
 *  - `stallMs` bounds connecting, waiting for headers, and every pause inside a body.
 *  - `deadlineMs` bounds one call from its start to the last byte of its answer. A call that moves more
 *    than DEADLINE_BYTES (an upload part, a whole-object download) gets `deadlineMs` per DEADLINE_BYTES:
 *    a transfer must move at least 16 MiB per deadline, so a trickle fails and an honest slow link does not.
 *  - A deadline is an AbortSignal timer (unreferenced: it never keeps the process alive); the caller's
 *    own signal still wins, and `deadlineError` tells the two apart.
 */
import { TransientError } from '../core/errors.js';

export interface NetBounds {
  /** Connect timeout, and the longest wait for headers or pause inside a body (retry.requestTimeout). */
  readonly stallMs: number;
  /** Overall deadline of one call (retry.maxTime). */
  readonly deadlineMs: number;
  /** Largest platform API answer read into memory (retry.maxApiBody). */
  readonly maxApiBodyBytes: number;
}

/** Bytes a call may move per `deadlineMs`. */
export const DEADLINE_BYTES = 16 * 1024 * 1024;

export const DEFAULT_BOUNDS: NetBounds = { stallMs: 20_000, deadlineMs: 30_000, maxApiBodyBytes: 64 * 1024 * 1024 };

/** The bounds a config asks for. */
export function boundsOf(retry: { requestTimeout: number; maxTime: number; maxApiBody: number }): NetBounds {
  return { stallMs: retry.requestTimeout, deadlineMs: Math.max(retry.maxTime, retry.requestTimeout), maxApiBodyBytes: retry.maxApiBody };
}

/** The deadline of a call that moves `bytes` (its body or its answer), in ms. */
export function deadlineFor(bounds: NetBounds, bytes = 0): number {
  return bounds.deadlineMs * Math.max(1, Math.ceil(bytes / DEADLINE_BYTES));
}

/**
 * One call's deadline: `signal` aborts when the caller's signal does, or when the deadline passes.
 * `renew()` starts the deadline anew (a transfer that moved another DEADLINE_BYTES); `clear()` when the
 * call is over. The timer is unreferenced: it never keeps the process alive.
 */
export class Deadline {
  readonly signal: AbortSignal;
  private readonly ctl = new AbortController();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly ms: number,
    private readonly caller?: AbortSignal,
  ) {
    this.signal = caller ? AbortSignal.any([caller, this.ctl.signal]) : this.ctl.signal;
    this.renew();
  }

  renew(): void {
    clearTimeout(this.timer);
    if (this.ctl.signal.aborted) return;
    this.timer = setTimeout(() => this.ctl.abort(new Error(`deadline of ${this.ms} ms passed`)), this.ms);
    this.timer.unref();
  }

  clear(): void {
    clearTimeout(this.timer);
  }

  /** The deadline, not the caller, ended the call. */
  get expired(): boolean {
    return this.ctl.signal.aborted && !this.caller?.aborted;
  }

  /** The error of a call this deadline cut short. */
  error(what: string): TransientError {
    return new TransientError(`${what}: no complete answer within ${this.ms} ms (retry.maxTime)`);
  }
}
