/**
 * AMS upload grants: a write AccessPolicy plus a SAS locator on one asset (docs/providers.md#ams, "Uploads and edits",
 * steps 1 and 3), shared by every upload session of this uploader into that asset.
 *
 * Invariants:
 *  - At most one grant of ours per asset at a time (AMS allows 5 locators per asset for all clients
 *    together, and the read side keeps up to 2): a grant being replaced is deleted before the new one is
 *    minted. A 400 "limit" answer is a TransientError carrying the platform's message.
 *  - Each grant has its own policy, created just before its locator and deleted with it (also when the
 *    locator cannot be created), so no policy outlives its grant.
 *  - A grant lives while a session uses it: `acquire` records the session's tag, `release` drops it,
 *    and the last release deletes locator and policy. close() deletes every grant.
 *  - Sessions journaled by an earlier run name their grant (the "hint"): the first acquire adopts it
 *    when it is alive and no grant of ours is current for the asset, and otherwise deletes it, so a
 *    crash leaks nothing once its sessions resume or end.
 *  - The policy carries Read and Write (Permissions 3): Azure storage needs Read for Get Block List
 *    (resume) and Get Blob Properties (size check after the commit); Write alone allows only Put Block
 *    and Put Block List.
 */
import { FsError, NotFoundError, TransientError } from '../../core/errors.js';
import type { Logger } from '../../util/logger.js';
import { errorMessage } from '../common/api-client.js';
import { useUntil } from '../common/expiring.js';
import { isLimitAnswer } from './locators.js';
import { keyed, parseDate, parseEntity, toLocator, type AmsRest } from './api.js';

/** StartTime is set this far back for clock skew (AMS docs), and the policy is that much longer. */
const START_SKEW_MS = 5 * 60_000;
/** AMS Permissions: 1 Read + 2 Write (see the header). */
export const WRITE_PERMISSIONS = 3;

export interface GrantRef {
  readonly locatorId: string;
  readonly policyId: string;
}

export interface WriteGrant extends GrantRef {
  /** The container URL, without a trailing slash. */
  readonly baseUri: string;
  /** `?sv=…&si=…&sig=…` */
  readonly sas: string;
  readonly expiresAt: number;
  /** When the locator was made (AMS locators take up to 40 s to start working). */
  readonly createdAt: number;
}

interface Entry {
  readonly grant: WriteGrant;
  readonly users: Set<string>;
  /** Storage refused its SAS before expiry (revoked, keys rolled): never hand it out again. */
  stale?: boolean;
}

export class WriteGrants {
  private readonly byAsset = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<Entry>>();
  /** Deletions started, by locator id (each grant is deleted once). */
  private readonly dropped = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    private readonly rest: AmsRest,
    private readonly opts: { what: string; log: Logger; ttlMs: number },
  ) {}

  /** Grants of ours alive now (tests). */
  count(): number {
    return this.byAsset.size;
  }

  /** A live grant on the asset, held for session `tag` until release(). */
  async acquire(assetId: string, tag: string, hint?: GrantRef, signal?: AbortSignal): Promise<WriteGrant> {
    for (;;) {
      if (this.closed) throw new FsError('EIO', `${this.opts.what}: provider is closed`);
      signal?.throwIfAborted();
      let e = this.byAsset.get(assetId);
      if (!e || !this.usable(e)) {
        let p = this.pending.get(assetId);
        if (!p) {
          p = this.renew(assetId, hint).finally(() => this.pending.delete(assetId));
          this.pending.set(assetId, p);
        }
        e = await p;
        if (this.byAsset.get(assetId) !== e) continue; // released and deleted meanwhile
      }
      e.users.add(tag);
      if (hint && hint.locatorId !== e.grant.locatorId) void this.drop(hint); // an earlier run's grant, not adopted
      return e.grant;
    }
  }

  /** Storage refused `g`: unless another session already replaced it, replace it. */
  async replace(assetId: string, tag: string, g: WriteGrant, signal?: AbortSignal): Promise<WriteGrant> {
    const e = this.byAsset.get(assetId);
    if (e?.grant.locatorId === g.locatorId) e.stale = true;
    return this.acquire(assetId, tag, undefined, signal);
  }

  /** Whether the platform still knows the grant's locator (a refused SAS: propagation or revocation?). */
  async exists(g: GrantRef, signal?: AbortSignal): Promise<boolean> {
    return (await this.rest.call({ path: keyed('Locators', g.locatorId), accept: [404], signal })).status !== 404;
  }

  /** Session `tag` is over; the last session of a grant deletes it. A hint of an earlier run goes too. */
  async release(assetId: string, tag: string, hint?: GrantRef): Promise<void> {
    const e = this.byAsset.get(assetId);
    const work: Promise<void>[] = [];
    if (e) {
      e.users.delete(tag);
      if (e.users.size === 0 && !this.pending.has(assetId)) {
        this.byAsset.delete(assetId);
        work.push(this.drop(e.grant));
      }
    }
    if (hint && hint.locatorId !== e?.grant.locatorId) work.push(this.drop(hint));
    await Promise.all(work);
  }

  /** Drops our grant on an asset about to be deleted (whoever still uses it). */
  async forgetAsset(assetId: string): Promise<void> {
    const e = this.byAsset.get(assetId);
    if (!e) return;
    this.byAsset.delete(assetId);
    await this.drop(e.grant);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.pending.values()]);
    const all = [...this.byAsset.values()].map((e) => this.drop(e.grant));
    this.byAsset.clear();
    await Promise.all(all);
  }

  private usable(e: Entry): boolean {
    const g = e.grant;
    return !e.stale && Date.now() < useUntil(g.createdAt, g.expiresAt);
  }

  private async renew(assetId: string, hint?: GrantRef): Promise<Entry> {
    const old = this.byAsset.get(assetId);
    if (old) await this.drop(old.grant); // frees its slot before the new one takes one
    let e = !old && hint ? await this.adopt(assetId, hint) : undefined;
    e ??= { grant: await this.mint(assetId), users: new Set() };
    for (const u of old?.users ?? []) e.users.add(u);
    if (this.closed) {
      await this.drop(e.grant);
      throw new FsError('EIO', `${this.opts.what}: provider is closed`);
    }
    this.byAsset.set(assetId, e);
    return e;
  }

  /** The grant of an earlier run, when it is still alive and on this asset; otherwise deleted. */
  private async adopt(assetId: string, hint: GrantRef): Promise<Entry | undefined> {
    const r = await this.rest.call({ path: keyed('Locators', hint.locatorId), accept: [404] });
    if (r.status === 404) {
      await this.drop(hint);
      return undefined;
    }
    const j = parseEntity(JSON.parse(r.text));
    if (j.AssetId !== undefined && j.AssetId !== assetId) return undefined; // not ours to touch
    const loc = toLocator(j);
    const e: Entry = {
      grant: { locatorId: loc.Id, policyId: hint.policyId, baseUri: loc.BaseUri, sas: loc.ContentAccessComponent, expiresAt: loc.ExpirationDateTime, createdAt: parseDate(j.StartTime) + START_SKEW_MS },
      users: new Set(),
    };
    if (this.usable(e)) return e;
    await this.drop(hint);
    return undefined;
  }

  private async mint(assetId: string): Promise<WriteGrant> {
    const json = { Name: 'assetfs-upload', DurationInMinutes: (this.opts.ttlMs + START_SKEW_MS) / 60_000, Permissions: WRITE_PERMISSIONS };
    const policyId = parseEntity(await this.rest.json({ method: 'POST', path: 'AccessPolicies', json })).Id;
    if (typeof policyId !== 'string' || !policyId) throw new FsError('EIO', `${this.opts.what}: access policy answer without Id`);
    try {
      const body = { AccessPolicyId: policyId, AssetId: assetId, StartTime: new Date(Date.now() - START_SKEW_MS).toISOString(), Type: 1 };
      const r = await this.rest.call({ method: 'POST', path: 'Locators', json: body, accept: [400] });
      if (r.status === 400) {
        const msg = errorMessage(r.text);
        if (isLimitAnswer(msg)) throw new TransientError(`${this.opts.what}: no free locator slot on asset ${assetId} for an upload: ${msg}`, { status: 400, retryAfterMs: 5_000 });
        throw new FsError('EIO', `${this.opts.what}: creating an upload locator on asset ${assetId}: ${msg}`);
      }
      const loc = toLocator(parseEntity(JSON.parse(r.text)));
      return { locatorId: loc.Id, policyId, baseUri: loc.BaseUri, sas: loc.ContentAccessComponent, expiresAt: loc.ExpirationDateTime, createdAt: Date.now() };
    } catch (e) {
      await this.drop({ locatorId: `none:${policyId}`, policyId }, false);
      throw e;
    }
  }

  /** Deletes a grant's locator, then its policy (404s are fine); failures are logged, not thrown. */
  private drop(g: GrantRef, hasLocator = true): Promise<void> {
    let p = this.dropped.get(g.locatorId);
    if (!p) {
      p = (async () => {
        for (const [set, id] of [...(hasLocator ? [['Locators', g.locatorId]] : []), ['AccessPolicies', g.policyId]] as [string, string][]) {
          await this.rest.call({ method: 'DELETE', path: keyed(set, id), accept: [404] }).catch((e: unknown) => {
            if (!(e instanceof NotFoundError)) this.opts.log.warn({ err: e }, `${this.opts.what}: could not delete upload ${set} ${id}`);
          });
        }
      })();
      this.dropped.set(g.locatorId, p);
    }
    return p;
  }
}
