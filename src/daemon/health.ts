/**
 * The health of each source, for `assetfs status`: ok, login refused, unreachable or misconfigured,
 * with the last error's message and time. One board per daemon (built by buildCore), fed by every
 * provider call (watch()) and by the read path's final outcomes (NetworkBlockSource `health`).
 *
 * Invariants:
 *  - Only failures that say something about the source change its state (classifyFailure): a missing
 *    file, a stale version, an abort or a 429 do not.
 *  - A success makes the source ok again, the last error staying on record (message and time), with one
 *    exception: a success at the source's root ('' ref) does not clear a failure seen below it. Some
 *    roots are answered without a request (Wordbee's scopes come from the config, most roots' stat):
 *    such a success proves nothing, and `ls` of a refused Wordbee scope must not flip it to ok.
 *  - Messages are redacted when recorded.
 */
import type { ObjectVersion, Provider, Ref, RemoteEntry } from '../core/types.js';
import { AuthError, ExpiredError, FsError, MisconfiguredError, TransientError } from '../core/errors.js';
import { redactText } from '../util/redact.js';
import { describeError } from '../util/error-text.js';

export type FailureState = 'login refused' | 'unreachable' | 'misconfigured';
/** `unknown`: no call has reached the source yet. */
export type HealthState = 'unknown' | 'ok' | FailureState;

/**
 * Whether a source counts as up (`assetfs_source_up`): ok, or `unknown` (nothing has reached it yet,
 * so nothing says it is down; the start's checks settle it within seconds). Every failure state is down;
 * `assetfs status` counts the same sources as failing.
 */
export function isUp(state: HealthState): state is 'ok' | 'unknown' {
  return state === 'ok' || state === 'unknown';
}

export interface SourceHealthRecord {
  readonly state: HealthState;
  /** When the source entered this state (ISO time). */
  readonly since: string;
  /** The last failure that said something about the source, even when it is ok again since. */
  readonly lastError?: { readonly state: FailureState; readonly message: string; readonly time: string };
}

/**
 * What a failure says about its source. `fromProvider`: the error came from a provider call (listing,
 * stat, locating), where a plain EIO is the platform refusing what the config asks for (a 4xx such as
 * Wordbee's "Invalid scope").
 */
export function classifyFailure(e: unknown, fromProvider: boolean): FailureState | undefined {
  if (e instanceof AuthError || e instanceof ExpiredError) return 'login refused';
  if (e instanceof MisconfiguredError) return 'misconfigured';
  if (e instanceof TransientError) {
    if (e.status === 429) return undefined; // throttled: the source works
    // An answer that is not the API's (HTML, not JSON) at 2xx/3xx: the URL points elsewhere.
    return e.status !== undefined && e.status < 400 ? 'misconfigured' : 'unreachable';
  }
  if (fromProvider && e instanceof FsError && e.constructor === FsError && e.code === 'EIO') return 'misconfigured';
  return undefined;
}

export class SourceHealth {
  private readonly records = new Map<string, SourceHealthRecord>();
  /** Sources whose current failure was seen below the root. */
  private readonly failedBelowRoot = new Set<string>();

  constructor(names: Iterable<string>, private readonly now: () => number = Date.now) {
    for (const name of names) this.records.set(name, { state: 'unknown', since: this.iso() });
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }

  /** A call succeeded; `atRoot`: a call on the source's root, which may not have reached the platform. */
  ok(source: string, atRoot = false): void {
    const r = this.records.get(source);
    if (r?.state === 'ok' || (atRoot && this.failedBelowRoot.has(source))) return;
    this.failedBelowRoot.delete(source);
    this.records.set(source, { ...r, state: 'ok', since: this.iso() });
  }

  /** Record a failure; returns its state, or undefined when it says nothing about the source. */
  failed(source: string, e: unknown, fromProvider = false, atRoot = false): FailureState | undefined {
    const state = classifyFailure(e, fromProvider);
    if (!state) return undefined;
    if (atRoot) this.failedBelowRoot.delete(source);
    else this.failedBelowRoot.add(source);
    const r = this.records.get(source);
    const time = this.iso();
    this.records.set(source, {
      state,
      since: r?.state === state ? r.since : time,
      lastError: { state, message: redactText(describeError(e)), time },
    });
    return state;
  }

  get(source: string): SourceHealthRecord {
    return this.records.get(source) ?? { state: 'unknown', since: this.iso() };
  }

  /** A provider whose calls report here; everything else passes through unchanged. */
  watch(p: Provider): Provider {
    const board = this;
    const track = <T>(call: Promise<T>, atRoot: boolean): Promise<T> =>
      call.then(
        (v) => {
          board.ok(p.name, atRoot);
          return v;
        },
        (e: unknown) => {
          board.failed(p.name, e, true, atRoot);
          throw e;
        },
      );
    // Every other member (uploader, refused, the optional id methods, …) is the provider's own: a
    // Proxy forwards it, so a method added to Provider later cannot be dropped here.
    const tracked: Partial<Provider> = {
      // The first entry proves the source answers (a prober stops reading there).
      async *list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry> {
        let answered = false;
        try {
          for await (const e of p.list(dir, signal)) {
            if (!answered) board.ok(p.name, dir === '');
            answered = true;
            yield e;
          }
        } catch (e) {
          board.failed(p.name, e, true, dir === '');
          throw e;
        }
        if (!answered) board.ok(p.name, dir === '');
      },
      stat: (ref: Ref, signal?: AbortSignal) => track(p.stat(ref, signal), ref === ''),
      locate: (obj: ObjectVersion, signal?: AbortSignal) => track(p.locate(obj, signal), false),
      ...(p.byId ? { byId: (id: string, signal?: AbortSignal) => track(p.byId!(id, signal), false) } : {}),
    };
    return new Proxy(p, {
      get(target, prop, receiver) {
        if (Object.hasOwn(tracked, prop)) return tracked[prop as keyof Provider];
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }
}

/**
 * A source whose provider could not even be built (its config passed validation but the platform
 * client refused it): every call fails with that reason, and the other sources mount.
 */
export function brokenProvider(cfg: { name: string; type: string }, e: unknown): Provider {
  const prefix = `${cfg.type} source "${cfg.name}": `;
  const why = redactText(describeError(e));
  const fail = (): never => {
    throw new MisconfiguredError(`${prefix}cannot be set up: ${why.startsWith(prefix) ? why.slice(prefix.length) : why}`, { cause: e });
  };
  return {
    name: cfg.name,
    type: cfg.type,
    caps: { upload: false },
    // eslint-disable-next-line require-yield
    async *list() {
      fail();
    },
    stat: async () => fail(),
    locate: async () => fail(),
    close: async () => undefined,
  };
}
