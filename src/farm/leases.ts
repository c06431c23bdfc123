/**
 * Upload leases: hosts watching one shared folder (NFS, SMB) never upload the same file twice.
 *
 * Keys, per upload target (source, remote path), under `<prefix>up:<target hash>:`:
 *  - `lease`: the owner id of the host uploading it, expiring after `ttlMs` unless its heartbeat
 *    (every ttlMs / 3) renews it. Taken with SET NX PX: of hosts asking at once, one gets it.
 *  - `session`: the multipart session the holder uploads through (upload id, part size, and the file's
 *    size and mtime), and `parts`: the parts the platform confirmed to it (number → etag, size).
 *    A host that takes the lease over from a dead holder resumes that session when it is for the same
 *    file and part size, so confirmed parts are not sent again.
 *  - `done`: the file (size, mtime, SHA-256) the last holder completed and the version it made; a host
 *    whose job is for that same file finishes it without sending a byte (and with that version as its
 *    base, so its next upload is no conflict).
 *
 * Invariants:
 *  - A lease is renewed and dropped only while it holds this host's owner id (renewIf/deleteIf): a
 *    host never extends or drops another's lease. A renewal that finds another owner (or none) aborts
 *    `lost`: the engine stops sending and the job waits for the new holder.
 *  - The shared tier unavailable (down, slow, full): the upload goes ahead unleased, as on a host
 *    without the shared tier. A duplicate upload is possible then; a lost or held-back upload is not.
 *  - Session, parts and done records live `recordTtlMs` (a week by default: longer than a platform
 *    keeps an unfinished multipart upload), and are only hints: the engine checks inherited parts
 *    against the platform's own list before skipping them.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../util/logger.js';
import type { ConfirmedPart, Job, LeaseDecision, UploadLease, UploadLeases } from '../upload/types.js';
import { quiet, type GuardedStore } from './guarded-store.js';

export interface SharedLeasesOptions {
  store: GuardedStore;
  keyPrefix: string;
  /** This daemon's id: the value of its leases. */
  owner: string;
  ttlMs: number;
  log: Logger;
  recordTtlMs?: number;
}

const WEEK_MS = 7 * 24 * 3_600_000;

/** Owner ids are `<host>/<pid>/<random>` (index.ts); the host part is what a person wants to read. */
const hostOf = (owner: string) => owner.split('/')[0] ?? owner;

export class SharedLeases implements UploadLeases {
  constructor(private readonly opts: SharedLeasesOptions) {}

  private keys(job: Job) {
    const h = createHash('sha256').update(`${job.source}\0${job.remotePath}`).digest('hex').slice(0, 32);
    const base = `${this.opts.keyPrefix}up:${h}:`;
    return { lease: `${base}lease`, session: `${base}session`, parts: `${base}parts`, done: `${base}done` };
  }

  async acquire(job: Job): Promise<LeaseDecision> {
    const { store, owner, ttlMs, log } = this.opts;
    const keys = this.keys(job);
    if (!store.available) return { kind: 'held', lease: unleased() };
    try {
      const done = parseDone(await store.getText(keys.done));
      if (done && done.size === job.size && done.mtimeMs === Math.trunc(job.mtimeMs)) {
        return { kind: 'done', sha256: done.sha256, version: done.version };
      }
      const taken = (await store.setIfAbsent(keys.lease, owner, ttlMs)) || (await store.renewIf(keys.lease, owner, ttlMs));
      if (!taken) {
        const holder = (await store.getText(keys.lease)) ?? 'another host';
        const left = (await store.ttl(keys.lease)) ?? 0;
        return { kind: 'elsewhere', holder: hostOf(holder), retryInMs: Math.min(ttlMs, Math.max(200, left + 100)) };
      }
      const inherited = await this.inherited(job, keys);
      if (inherited) log.info({ job: job.id, path: job.remotePath, parts: inherited.parts.length }, 'upload lease taken over: resuming the previous holder\'s session');
      return { kind: 'held', lease: this.held(job, keys, inherited) };
    } catch (e) {
      log.warn({ job: job.id, path: job.remotePath, err: e instanceof Error ? e.message : String(e) }, 'shared tier unavailable: uploading without a lease');
      return { kind: 'held', lease: unleased() };
    }
  }

  private async inherited(job: Job, keys: ReturnType<SharedLeases['keys']>): Promise<UploadLease['inherited']> {
    const s = await this.opts.store.hgetall(keys.session);
    if (!s['uploadId'] || s['remotePath'] !== job.remotePath) return undefined;
    if (Number(s['size']) !== job.size || Number(s['mtimeMs']) !== Math.trunc(job.mtimeMs) || Number(s['partSize']) !== job.partSize) return undefined;
    const raw = await this.opts.store.hgetall(keys.parts);
    const parts: ConfirmedPart[] = [];
    for (const [n, v] of Object.entries(raw)) {
      const sp = v.lastIndexOf(' ');
      const number = Number(n);
      const size = Number(v.slice(sp + 1));
      if (sp <= 0 || !Number.isInteger(number) || number < 1 || !Number.isInteger(size)) continue;
      parts.push({ number, etag: v.slice(0, sp), size });
    }
    return { uploadId: s['uploadId'], parts: parts.sort((a, b) => a.number - b.number) };
  }

  private held(job: Job, keys: ReturnType<SharedLeases['keys']>, inherited: UploadLease['inherited']): UploadLease {
    const { store, owner, ttlMs, log } = this.opts;
    const recordTtl = this.opts.recordTtlMs ?? WEEK_MS;
    const lost = new AbortController();
    const heartbeat = setInterval(() => {
      store.renewIf(keys.lease, owner, ttlMs).then(
        (ok) => {
          if (ok || lost.signal.aborted) return;
          log.warn({ job: job.id, path: job.remotePath }, 'upload lease lost to another host: this host stops sending');
          lost.abort(new Error('the upload lease passed to another host'));
        },
        () => undefined, // unavailable: carry on unleased (see the invariants above)
      );
    }, Math.max(50, Math.floor(ttlMs / 3)));
    heartbeat.unref();
    let released = false;
    return {
      inherited,
      lost: lost.signal,
      session: async (j) => {
        await quiet(store.del(keys.parts), undefined);
        await quiet(
          store.hset(keys.session, { uploadId: j.uploadId ?? '', remotePath: j.remotePath, size: String(j.size), mtimeMs: String(Math.trunc(j.mtimeMs)), partSize: String(j.partSize), owner }, recordTtl),
          undefined,
        );
      },
      part: (p) => quiet(store.hset(keys.parts, { [String(p.number)]: `${p.etag} ${p.size}` }, recordTtl), undefined),
      finished: async (j, sha256, version) => {
        const done = JSON.stringify({ size: j.size, mtimeMs: Math.trunc(j.mtimeMs), sha256, version });
        await quiet(store.set(keys.done, done, recordTtl), undefined);
        await quiet(store.del(keys.session), undefined);
        await quiet(store.del(keys.parts), undefined);
      },
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(heartbeat);
        await quiet(store.deleteIf(keys.lease, owner), false);
      },
    };
  }
}

/** The lease of a host that could not reach the shared tier: nothing is published, nothing is lost. */
function unleased(): UploadLease {
  return {
    inherited: undefined,
    lost: new AbortController().signal,
    session: async () => undefined,
    part: async () => undefined,
    finished: async () => undefined,
    release: async () => undefined,
  };
}

function parseDone(text: string | undefined): { size: number; mtimeMs: number; sha256: string; version: string } | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v['size'] === 'number' && typeof v['mtimeMs'] === 'number' && typeof v['sha256'] === 'string' && typeof v['version'] === 'string') {
      return { size: v['size'], mtimeMs: v['mtimeMs'], sha256: v['sha256'], version: v['version'] };
    }
  } catch {
    // a record we cannot read is no record
  }
  return undefined;
}
