/**
 * AMS read locators, one per asset, shared by all its files (AMS allows only 5 locators per asset at
 * once, for every client together).
 *
 * Invariants:
 *  - One read AccessPolicy per provider (AMS advises reusing policies), created on first use and
 *    deleted on close(). Its DurationInMinutes is urlTtl plus the 5 minutes StartTime is set back for
 *    clock skew, so a locator lives urlTtl from its creation.
 *  - Per asset: the current locator is reused while the margin rule of common/expiring.ts allows; one
 *    creation at a time (single flight); a replaced locator stays alive for reads already holding its
 *    URL and is deleted at its expiry. Before a creation, every retired locator but the newest is
 *    deleted, so at most 2 of ours exist per asset.
 *  - A 400 "limit" answer deletes all our retired locators of that asset, then surfaces as a
 *    TransientError, so the caller's retry (util/retry.ts) retries once slots are free.
 *  - close() deletes every locator and the policy we created. Deletion failures are logged, not thrown.
 */
import { FsError, NotFoundError, TransientError } from '../../core/errors.js';
import type { Logger } from '../../util/logger.js';
import { errorMessage } from '../common/api-client.js';
import { useUntil } from '../common/expiring.js';
import { abortable } from '../../util/abortable.js';
import { keyed, parseEntity, toLocator, type AmsLocator, type AmsRest } from './api.js';

/** StartTime is set this far back (AMS docs), and the policy is that much longer. */
const START_SKEW_MS = 5 * 60_000;
/** Retry floor after a "too many locators" answer. */
const LIMIT_RETRY_MS = 1_000;
/** A retired locator is deleted this long after its expiry (reads that started before it may still finish). */
const DELETE_GRACE_MS = 1_000;

interface Held {
  readonly loc: AmsLocator;
  readonly createdAt: number;
  timer?: NodeJS.Timeout;
  deleting?: Promise<void>;
}

interface AssetState {
  current?: Held;
  /** Ours, replaced but not yet deleted, oldest first. */
  readonly retired: Held[];
  inflight?: Promise<Held>;
}

export const isLimitAnswer = (msg: string) => /limit|exceed|maximum|at most|too many/i.test(msg);

export class LocatorPool {
  private readonly assets = new Map<string, AssetState>();
  private policy: Promise<string> | undefined;
  private closed = false;

  constructor(
    private readonly rest: AmsRest,
    private readonly opts: { ttlMs: number; log: Logger; what: string },
  ) {}

  /** A read locator of the asset with enough life left; creates one when needed. */
  async get(assetId: string, signal?: AbortSignal): Promise<AmsLocator> {
    if (this.closed) throw new FsError('EIO', `${this.opts.what}: provider is closed`);
    const st = this.state(assetId);
    if (st.current && this.usable(st.current)) return st.current.loc;
    if (!st.inflight) {
      const p = this.mint(assetId, st).finally(() => {
        if (st.inflight === p) st.inflight = undefined;
      });
      st.inflight = p;
    }
    const held = await abortable(st.inflight, signal);
    return held.loc;
  }

  /** A URL of ours was refused before its expiry (revoked, keys rolled): never hand that locator out again. */
  refused(assetId: string, url: string): void {
    const st = this.assets.get(assetId);
    if (!st) return;
    const h = [st.current, ...st.retired].find((x) => x && x.loc.ContentAccessComponent && url.includes(x.loc.ContentAccessComponent));
    if (!h) return;
    if (st.current === h) st.current = undefined;
    else st.retired.splice(st.retired.indexOf(h), 1);
    void this.remove(h);
  }

  /** Ours alive on the server now (tests). */
  count(assetId: string): number {
    const st = this.assets.get(assetId);
    return st ? (st.current ? 1 : 0) + st.retired.length : 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all: Promise<void>[] = [];
    for (const st of this.assets.values()) {
      await st.inflight?.catch(() => undefined);
      for (const h of [st.current, ...st.retired]) if (h) all.push(this.remove(h));
      st.current = undefined;
      st.retired.splice(0);
    }
    await Promise.all(all);
    const policy = await this.policy?.catch(() => undefined);
    if (policy) {
      await this.rest.call({ method: 'DELETE', path: keyed('AccessPolicies', policy), accept: [404] }).catch((e: unknown) => {
        this.opts.log.warn({ err: e }, `${this.opts.what}: could not delete access policy ${policy}`);
      });
    }
  }

  private state(assetId: string): AssetState {
    let st = this.assets.get(assetId);
    if (!st) this.assets.set(assetId, (st = { retired: [] }));
    return st;
  }

  private usable(h: Held): boolean {
    return Date.now() < useUntil(h.createdAt, h.loc.ExpirationDateTime);
  }

  private async mint(assetId: string, st: AssetState): Promise<Held> {
    if (st.current) {
      this.retire(st, st.current);
      st.current = undefined;
    }
    await this.prune(st, 1);
    let policyId = await this.policyId();
    let r;
    try {
      r = await this.post(assetId, policyId);
    } catch (e) {
      // Our shared policy was deleted behind our back: make a new one, once.
      if (!(e instanceof NotFoundError) || !/AccessPolicy/i.test(e.message)) throw e;
      this.policy = undefined;
      policyId = await this.policyId();
      r = await this.post(assetId, policyId);
    }
    if (r.status === 400) {
      const msg = errorMessage(r.text);
      if (!isLimitAnswer(msg)) throw new FsError('EIO', `${this.opts.what}: creating a locator for asset ${assetId}: ${msg}`);
      await this.prune(st, 0);
      throw new TransientError(`${this.opts.what}: asset ${assetId} has no free locator slot: ${msg}`, { status: 400, retryAfterMs: LIMIT_RETRY_MS });
    }
    const held: Held = { loc: toLocator(parseEntity(JSON.parse(r.text))), createdAt: Date.now() };
    if (this.closed) {
      await this.remove(held);
      throw new FsError('EIO', `${this.opts.what}: provider is closed`);
    }
    st.current = held;
    return held;
  }

  private post(assetId: string, policyId: string) {
    const json = { AccessPolicyId: policyId, AssetId: assetId, StartTime: new Date(Date.now() - START_SKEW_MS).toISOString(), Type: 1 };
    return this.rest.call({ method: 'POST', path: 'Locators', json, accept: [400] });
  }

  private policyId(): Promise<string> {
    if (!this.policy) {
      const p = (async () => {
        const json = { Name: 'assetfs-read', DurationInMinutes: (this.opts.ttlMs + START_SKEW_MS) / 60_000, Permissions: 1 };
        const id = parseEntity(await this.rest.json({ method: 'POST', path: 'AccessPolicies', json })).Id;
        if (typeof id !== 'string' || !id) throw new FsError('EIO', `${this.opts.what}: access policy answer without Id`);
        return id;
      })();
      p.catch(() => {
        if (this.policy === p) this.policy = undefined;
      });
      this.policy = p;
    }
    return this.policy;
  }

  /** Keeps a replaced locator for reads that hold its URL, and deletes it shortly after it expires. */
  private retire(st: AssetState, h: Held): void {
    st.retired.push(h);
    const wait = Math.max(0, h.loc.ExpirationDateTime - Date.now()) + DELETE_GRACE_MS;
    h.timer = setTimeout(() => {
      const i = st.retired.indexOf(h);
      if (i >= 0) st.retired.splice(i, 1);
      void this.remove(h);
    }, Math.min(wait, 2 ** 31 - 1));
    h.timer.unref();
  }

  /** Deletes retired locators until at most `keep` remain (the expired and oldest go first). */
  private async prune(st: AssetState, keep: number): Promise<void> {
    const now = Date.now();
    const doomed = st.retired.filter((h, i) => h.loc.ExpirationDateTime <= now || i < st.retired.length - keep);
    for (const h of doomed) st.retired.splice(st.retired.indexOf(h), 1);
    await Promise.all(doomed.map((h) => this.remove(h)));
  }

  private remove(h: Held): Promise<void> {
    clearTimeout(h.timer);
    h.deleting ??= this.rest
      .call({ method: 'DELETE', path: keyed('Locators', h.loc.Id), accept: [404] })
      .then(() => undefined)
      .catch((e: unknown) => this.opts.log.warn({ err: e }, `${this.opts.what}: could not delete locator ${h.loc.Id}`));
    return h.deleting;
  }
}
