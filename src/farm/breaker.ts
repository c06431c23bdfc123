/**
 * The shared tier degrades, never fails: every call to the engine goes through one circuit breaker.
 *
 * Invariants:
 *  - A call is bounded by `timeoutMs`; a slower one (Redis stopped, a saturated link) is a failure and
 *    its caller gets its fallback at once, while the call itself runs on unobserved.
 *  - `failuresToOpen` failures in a row open the breaker: calls then fail at once (no waiting on a dead
 *    engine), and readers go to the origin.
 *  - While open, a probe (a small write: a full Redis fails it too) runs after a cool-down that doubles
 *    up to `maxCooldownMs` (half-open); one success closes the breaker: Redis coming back is picked up
 *    without a restart, and `onRecovered` listeners drop what may have gone stale meanwhile.
 *  - The state, its cause and the counters are plain data for `assetfs status` and metrics.
 */
import type { Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';

export type BreakerState = 'closed' | 'open' | 'half-open';
/** What the last failure says about the engine. */
export type SharedCondition = 'ok' | 'down' | 'slow' | 'full';

/** Thrown to callers when the breaker is open or a call failed; they answer their fallback. */
export class SharedUnavailableError extends Error {}

export interface BreakerOptions {
  timeoutMs: number;
  failuresToOpen?: number;
  cooldownMs?: number;
  maxCooldownMs?: number;
  /** The half-open probe: resolves when the engine takes writes again. */
  probe(): Promise<void>;
  log: Logger;
}

export interface BreakerStatus {
  readonly state: BreakerState;
  readonly condition: SharedCondition;
  /** ISO time of the last state change. */
  readonly since: string;
  readonly lastError?: { readonly message: string; readonly time: string };
  readonly calls: number;
  readonly failures: number;
  readonly timeouts: number;
  /** Calls answered with the fallback at once because the breaker was open. */
  readonly shortCircuited: number;
  readonly opened: number;
  readonly probes: number;
}

class TimeoutError extends Error {}

export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private condition: SharedCondition = 'ok';
  private since = new Date().toISOString();
  private lastError: { message: string; time: string } | undefined;
  private inARow = 0;
  private cooldown: number;
  private timer: NodeJS.Timeout | undefined;
  private closedForGood = false;
  private readonly recovered: Array<() => void> = [];
  private counters = { calls: 0, failures: 0, timeouts: 0, shortCircuited: 0, opened: 0, probes: 0 };

  constructor(private readonly opts: BreakerOptions) {
    this.cooldown = opts.cooldownMs ?? 1_000;
  }

  /** True while calls are let through. */
  get available(): boolean {
    return this.state === 'closed';
  }

  onRecovered(fn: () => void): void {
    this.recovered.push(fn);
  }

  /** `op` within the time bound; throws SharedUnavailableError when open, failed or too slow. */
  async run<T>(op: () => Promise<T>): Promise<T> {
    if (this.state !== 'closed') {
      this.counters.shortCircuited++;
      throw new SharedUnavailableError(`shared tier ${this.condition}`);
    }
    this.counters.calls++;
    try {
      const v = await this.bounded(op);
      this.inARow = 0;
      return v;
    } catch (e) {
      this.failed(e);
      throw e instanceof SharedUnavailableError ? e : new SharedUnavailableError(describe(e), { cause: e });
    }
  }

  /** Start probing at once (the engine was never reached at start, say). */
  trip(e: unknown): void {
    this.failed(e, true);
  }

  status(): BreakerStatus {
    return { state: this.state, condition: this.condition, since: this.since, ...(this.lastError ? { lastError: this.lastError } : {}), ...this.counters };
  }

  close(): void {
    this.closedForGood = true;
    clearTimeout(this.timer);
  }

  private bounded<T>(op: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new TimeoutError(`no answer within ${this.opts.timeoutMs} ms (shared.timeout)`)), this.opts.timeoutMs);
      op().then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  private failed(e: unknown, openNow = false): void {
    this.counters.failures++;
    if (e instanceof TimeoutError) this.counters.timeouts++;
    this.condition = e instanceof TimeoutError ? 'slow' : /\bOOM\b/.test(describe(e)) ? 'full' : 'down';
    this.lastError = { message: describe(e), time: new Date().toISOString() };
    this.inARow++;
    if (this.state === 'closed' && (openNow || this.inARow >= (this.opts.failuresToOpen ?? 3))) this.open();
  }

  private open(): void {
    this.counters.opened++;
    this.setState('open');
    this.opts.log.warn({ condition: this.condition, err: this.lastError?.message, retryInMs: this.cooldown }, 'shared tier unavailable: reading from the origin until it answers again');
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.closedForGood) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.probe(), this.cooldown);
    this.timer.unref();
  }

  private async probe(): Promise<void> {
    if (this.closedForGood) return;
    this.setState('half-open');
    this.counters.probes++;
    try {
      await this.bounded(() => this.opts.probe());
      this.inARow = 0;
      this.condition = 'ok';
      this.cooldown = this.opts.cooldownMs ?? 1_000;
      this.setState('closed');
      this.opts.log.info('shared tier answers again');
      for (const fn of this.recovered) fn();
    } catch (e) {
      this.failed(e);
      this.cooldown = Math.min(this.cooldown * 2, this.opts.maxCooldownMs ?? 30_000);
      this.setState('open');
      this.scheduleProbe();
    }
  }

  private setState(s: BreakerState): void {
    if (s === this.state) return;
    this.state = s;
    this.since = new Date().toISOString();
  }
}

function describe(e: unknown): string {
  return redactText(e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
}
