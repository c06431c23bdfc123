/**
 * The upload engine: takes jobs from the journal and runs them as resumable multipart uploads.
 *
 * Invariants:
 *  - The file is read once, in order, part by part: each part's bytes feed the SHA-256 and, unless the
 *    platform already holds that part, its upload. Parts go up in parallel (≤ `partsPerFile` per file,
 *    ≤ `maxParts` in all), so memory is bounded by maxParts × partSize.
 *  - A part is journaled as soon as the platform confirmed it; after a crash the job resumes with the
 *    same session, sending only parts that are not both journaled and (where the platform can tell)
 *    confirmed.
 *  - A file that changed while it was read is never committed: the session is dropped and the job waits
 *    until the file is stable again.
 *  - A job whose remote target is not the version it started from (a sync: our last upload; a write
 *    into the mount: the version opened, or none) goes up beside it as a conflict copy.
 *  - The scheduler asks the journal for the next few due jobs only (never lists the whole queue), and a
 *    journal error in it is logged and retried at the next tick: it never escapes the event loop.
 *  - Transient failures are retried with growing delays (shown as failed meanwhile). A permanent one (a
 *    refusal the same upload meets again: errors.ts isPermanentFailure) is failed and left alone, shown
 *    as needing attention, until `retryNow()` (`assetfs retry`) or an fsync of the file asks again.
 *    `retryNow()` makes every failed job due.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import pLimit, { type LimitFunction } from 'p-limit';
import type { StagedUpload, UploadOutcome, UploadPort } from '../core/types.js';
import type { Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import type { Journal, NewJob } from './journal.js';
import { LeasedElsewhereError, SessionLostError, isPermanentFailure } from './errors.js';
import { conflictName, joinRemote, splitRemote } from './conflict.js';
import { NotRegularFileError, openForUpload } from './local-file.js';
import { sameContent } from './adopt.js';
import type { ConfirmedPart, Job, UploadLease, UploadLeases, UploadTarget, Uploader } from './types.js';
import type { SourceMeter } from '../metrics/metrics.js';

export interface UploadEngineOptions {
  journal: Journal;
  /** The uploader of a source, or undefined when the source cannot take uploads. */
  uploaderFor(source: string): Uploader | undefined;
  log: Logger;
  /** Files uploading at once. Default 2. */
  maxFiles?: number;
  /** Parts in flight over all files. Default 8. */
  maxParts?: number;
  /** Parts in flight per file. Default 4. */
  partsPerFile?: number;
  /** First retry delay; doubles per attempt up to retryMaxMs. Defaults 1 s and 5 min. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long a file must stay unchanged before an upload of a changed file starts again. Default 2 s. */
  stableMs?: number;
  /** Called after a job finished (the VFS drops its cached listing of the target's folder). */
  onDone?(job: Job): void;
  /** A farm's upload leases (src/farm/leases.ts): which host uploads a file of a shared watched folder. */
  leases?: UploadLeases;
  /** Counts parts, their bytes and failed attempts (assetfs_upload_*, assetfs_origin_*{kind="upload"}). */
  meterFor?(source: string): SourceMeter | undefined;
}

export interface JobProgress {
  readonly id: number;
  readonly bytesDone: number;
  /** Bytes per second over the last few seconds. */
  readonly rate: number;
}

interface Running {
  readonly abort: AbortController;
  bytes: number;
  samples: { t: number; bytes: number }[];
  readonly done: Promise<void>;
}

class ChangedError extends Error {}
export { conflictName, joinRemote, splitRemote } from './conflict.js';

export class UploadEngine {
  private readonly running = new Map<number, Running>();
  private readonly waiters = new Map<number, { resolve(): void; reject(e: Error): void }[]>();
  /** done(): settled when the job is done or cancelled, not at each failed attempt. */
  private readonly finishers = new Map<number, { resolve(o: UploadOutcome): void; reject(e: Error): void }[]>();
  private readonly doneListeners: ((job: Job) => void)[] = [];
  private readonly partLimit: LimitFunction;
  private timer: NodeJS.Timeout | undefined;
  /** Jobs run only between start() and stop(): what is queued before (staging's recovery) waits for start. */
  private started = false;
  private stopped = false;
  private leases: UploadLeases | undefined;

  constructor(private readonly opts: UploadEngineOptions) {
    this.partLimit = pLimit(opts.maxParts ?? 8);
    if (opts.onDone) this.doneListeners.push(opts.onDone);
    this.leases = opts.leases;
  }

  /** The farm's leases, known once the shared tier started (before start()). */
  useLeases(leases: UploadLeases): void {
    this.leases = leases;
  }

  /** `fn` is called after each job that finished (the VFS forgets the target folder's listing). */
  onDone(fn: (job: Job) => void): void {
    this.doneListeners.push(fn);
  }

  /** The write path's port into this engine (core/types.ts UploadPort). */
  port(): UploadPort {
    return {
      enqueue: (u: StagedUpload) => this.enqueue({ ...u, producer: 'mount' }).id,
      cancel: (id, reason) => this.cancel(id, reason),
      wait: (id, timeoutMs) => this.waitBounded(id, timeoutMs),
      done: (id) => this.done(id),
    };
  }

  /** Resume what a previous run left (jobs that were uploading are due again) and start scheduling. */
  start(): void {
    for (const j of this.opts.journal.list(['uploading'])) this.opts.journal.setState(j.id, 'queued');
    this.started = true;
    this.timer = setInterval(() => this.tick(), 500);
    this.timer.unref();
    this.tick();
  }

  /** Queue a file (replacing any unfinished job for the same target) and start it when a slot is free. */
  enqueue(j: Omit<NewJob, 'partSize'> & { partSize?: number }): Job {
    const up = this.opts.uploaderFor(j.source);
    const partSize = j.partSize ?? up?.partSize(j.size) ?? 8 * 1024 * 1024;
    const { job, replaced } = this.opts.journal.enqueue({ ...j, partSize });
    if (replaced) {
      this.cancelRunning(replaced);
      this.settle(replaced.id, new Error('replaced by a newer version of the file'));
    }
    this.opts.log.info({ job: job.id, source: job.source, path: job.remotePath, size: job.size }, 'upload queued');
    queueMicrotask(() => this.tick());
    return job;
  }

  /** Resolves when the job is done; rejects with its error when an attempt fails (fsync semantics). */
  waitFor(id: number): Promise<void> {
    const j = this.opts.journal.get(id);
    if (!j) return Promise.reject(new Error(`no upload job ${id}`));
    if (j.state === 'done') return Promise.resolve();
    if (j.state === 'cancelled') return Promise.reject(new Error(j.lastError ?? 'upload cancelled'));
    if (j.state === 'failed' && j.nextAttemptAt > Date.now()) {
      // Try again now rather than let fsync wait out the backoff.
      this.opts.journal.setState(id, 'queued');
      queueMicrotask(() => this.tick());
    }
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(id) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(id, list);
    });
  }

  /** waitFor, bounded: after `timeoutMs` it rejects while the upload carries on. */
  private waitBounded(id: number, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the upload did not finish within ${Math.round(timeoutMs / 1000)} s (uploads.fsyncTimeout); it carries on`)), timeoutMs);
    });
    return Promise.race([this.waitFor(id), timeout]).finally(() => clearTimeout(timer));
  }

  /** Resolves once job `id` is done (after any number of attempts); rejects when it is cancelled or unknown. */
  done(id: number): Promise<UploadOutcome> {
    const j = this.opts.journal.get(id);
    if (!j) return Promise.reject(new Error(`no upload job ${id}`));
    if (j.state === 'done') return Promise.resolve({ remotePath: j.remotePath, version: null, conflictOf: j.conflictOf });
    if (j.state === 'cancelled') return Promise.reject(new Error(j.lastError ?? 'upload cancelled'));
    return new Promise((resolve, reject) => {
      const list = this.finishers.get(id) ?? [];
      list.push({ resolve, reject });
      this.finishers.set(id, list);
    });
  }

  cancel(id: number, reason: string): void {
    const j = this.opts.journal.get(id);
    if (!j || j.state === 'done' || j.state === 'cancelled') return;
    this.opts.journal.setState(id, 'cancelled', reason);
    this.cancelRunning(j);
    this.notify(id, new Error(reason));
    this.settle(id, new Error(reason));
  }

  retryNow(): number {
    const n = this.opts.journal.retryNow();
    this.tick();
    return n;
  }

  /** `assetfs retry PATH`: only the failed job of that file (journal.ts retryOne) is due now. */
  retryOne(target: Parameters<Journal['retryOne']>[0]): number {
    const n = this.opts.journal.retryOne(target);
    if (n) this.tick();
    return n;
  }

  progress(): JobProgress[] {
    const now = Date.now();
    return [...this.running.entries()].map(([id, r]) => {
      const window = r.samples.filter((s) => now - s.t <= 5_000);
      const first = window[0];
      const rate = first && now > first.t ? ((r.bytes - first.bytes) * 1000) / (now - first.t) : 0;
      return { id, bytesDone: r.bytes, rate };
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const r of this.running.values()) r.abort.abort(new Error('daemon stopping'));
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  private tick(): void {
    if (!this.started || this.stopped) return;
    const free = (this.opts.maxFiles ?? 2) - this.running.size;
    if (free <= 0) return;
    let due: Job[];
    try {
      due = this.opts.journal.due(Date.now(), free + this.running.size).filter((j) => !this.running.has(j.id)).slice(0, free);
    } catch {
      return; // logged and shown in status by the journal; the next tick tries again
    }
    for (const j of due) this.launch(j);
  }

  private launch(job: Job): void {
    const abort = new AbortController();
    const r: Running = { abort, bytes: job.bytesDone, samples: [{ t: Date.now(), bytes: job.bytesDone }], done: Promise.resolve() };
    this.running.set(job.id, r);
    (r as { done: Promise<void> }).done = this.run(job, r)
      .then(
        () => this.notify(job.id),
        (e: unknown) => this.onFailure(job, e, abort.signal),
      )
      // A journal error while recording the outcome: logged by the journal; the job is tried again.
      .catch((e: unknown) => this.opts.log.error({ err: e, job: job.id }, 'could not record the outcome of an upload'))
      .finally(() => {
        this.running.delete(job.id);
        queueMicrotask(() => this.tick());
      });
  }

  private onFailure(job: Job, e: unknown, signal: AbortSignal): void {
    const current = this.opts.journal.get(job.id);
    if (!current || current.state === 'cancelled') return;
    if (signal.aborted && this.stopped) return; // stays 'uploading': resumed at the next start
    if (e instanceof LeasedElsewhereError) {
      this.opts.journal.setState(job.id, 'failed', e.message, Date.now() + e.retryInMs);
      return;
    }
    if (e instanceof ChangedError) {
      this.opts.log.info({ job: job.id, path: job.localPath }, 'file changed during upload: restarting once it is stable');
      this.opts.journal.setState(job.id, 'failed', e.message, Date.now() + (this.opts.stableMs ?? 2_000));
      return;
    }
    if (e instanceof SessionLostError) this.opts.journal.setUploadId(job.id, null); // the next attempt begins anew
    this.opts.meterFor?.(job.source)?.uploadFailed();
    const msg = redactText(e instanceof Error ? e.message : String(e));
    if (isPermanentFailure(e)) {
      this.opts.journal.refused(job.id, msg);
      this.opts.log.warn({ job: job.id, path: job.remotePath, attempt: current.attempts + 1, err: msg }, 'upload refused: not retried until `assetfs retry`');
      this.notify(job.id, new Error(msg));
      return;
    }
    const base = this.opts.retryBaseMs ?? 1_000;
    const delay = Math.min(this.opts.retryMaxMs ?? 300_000, base * 2 ** Math.min(current.attempts, 20)) * (0.75 + Math.random() * 0.5);
    this.opts.journal.failed(job.id, msg, Math.round(delay));
    this.opts.log.warn({ job: job.id, path: job.remotePath, attempt: current.attempts + 1, retryInMs: Math.round(delay), err: msg }, 'upload failed');
    this.notify(job.id, new Error(msg));
  }

  private notify(id: number, error?: Error): void {
    const list = this.waiters.get(id) ?? [];
    this.waiters.delete(id);
    for (const w of list) (error ? w.reject(error) : w.resolve());
  }

  private cancelRunning(j: Job): void {
    const r = this.running.get(j.id);
    if (r) r.abort.abort(new Error('cancelled'));
    const up = this.opts.uploaderFor(j.source);
    if (j.uploadId && up) {
      up.abort({ source: j.source, path: splitRemote(j.remotePath) }, j.uploadId).catch((e: unknown) =>
        this.opts.log.debug({ err: e, job: j.id }, 'abort of a replaced upload failed'),
      );
    }
  }

  private async run(initial: Job, r: Running): Promise<void> {
    const { journal, log } = this.opts;
    const up = this.opts.uploaderFor(initial.source);
    if (!up) throw new Error(`source "${initial.source}" does not take uploads`);
    journal.setState(initial.id, 'uploading');
    let job = journal.get(initial.id)!;

    const st = await this.localStat(job);
    if (st.size !== job.size || Math.trunc(st.mtimeMs) !== Math.trunc(job.mtimeMs)) {
      if (job.uploadId) await up.abort(this.target(job), job.uploadId).catch(() => undefined);
      journal.restart(job.id, st.size, st.mtimeMs, up.partSize(st.size));
      job = journal.get(job.id)!;
    }

    // The lease is taken where the job starts sending: a sync job of a shared folder goes up from one host.
    const decision = job.producer === 'sync' && this.leases ? await this.leases.acquire(job) : undefined;
    if (decision?.kind === 'elsewhere') throw new LeasedElsewhereError(decision.holder, decision.retryInMs);
    if (decision?.kind === 'done') {
      log.info({ job: job.id, path: job.remotePath }, 'upload done by another host');
      return this.finishJob(job, decision.sha256, decision.version);
    }
    const lease = decision?.lease;
    try {
      await this.upload(job, up, r, lease);
    } finally {
      await lease?.release();
    }
  }

  private async upload(initial: Job, up: Uploader, r: Running, lease: UploadLease | undefined): Promise<void> {
    const { journal, log } = this.opts;
    const signal = lease ? AbortSignal.any([r.abort.signal, lease.lost]) : r.abort.signal;
    let job = initial;
    if (lease?.inherited && !job.uploadId) {
      journal.setUploadId(job.id, lease.inherited.uploadId);
      for (const p of lease.inherited.parts) journal.recordPart(job.id, p);
      job = journal.get(job.id)!;
    }

    if (!job.uploadId && (await this.adopted(job, up, signal))) return;
    if (!job.uploadId) job = await this.resolveConflict(job, up, signal);
    const target = this.target(job);
    let parts: ConfirmedPart[] = journal.parts(job.id);
    if (job.uploadId) {
      const held = await up.confirmed(target, job.uploadId, signal);
      if (held === undefined) {
        log.info({ job: job.id }, 'the remote upload session is gone: starting a new one');
        journal.setUploadId(job.id, null);
        job = journal.get(job.id)!;
        parts = [];
      } else if (held !== 'unknown') {
        const ok = new Set(held.map((p) => `${p.number}\0${p.etag}`));
        const lost = parts.filter((p) => !ok.has(`${p.number}\0${p.etag}`)).map((p) => p.number);
        if (lost.length) journal.forgetParts(job.id, lost);
        parts = parts.filter((p) => ok.has(`${p.number}\0${p.etag}`));
      }
    }
    if (!job.uploadId) {
      const id = await up.begin(target, job.size, signal);
      journal.setUploadId(job.id, id);
      job = journal.get(job.id)!;
      parts = [];
      await lease?.session(job);
    }
    log.info({ job: job.id, path: job.remotePath, resumeParts: parts.length }, parts.length ? 'upload resuming' : 'upload started');

    const have = new Map(parts.map((p) => [p.number, p]));
    const sha256 = await this.sendParts(job, up, have, r, signal, lease);
    const all = journal.parts(job.id);
    const done = await up.complete(target, job.uploadId!, all, { size: job.size, sha256 }, signal);
    if (done.size !== job.size) throw new Error(`the remote object has ${done.size} bytes, expected ${job.size}`);
    await lease?.finished(job, sha256, done.version);
    log.info({ job: job.id, path: job.remotePath, size: job.size }, 'upload complete');
    this.finishJob(job, sha256, done.version);
  }

  private finishJob(job: Job, sha256: string, version: string): void {
    this.opts.journal.finish(job.id, sha256, version);
    const finished = this.opts.journal.get(job.id)!;
    for (const fn of this.doneListeners) fn(finished);
    this.settle(job.id, { remotePath: finished.remotePath, version, conflictOf: finished.conflictOf });
  }

  private settle(id: number, outcome: UploadOutcome | Error): void {
    const list = this.finishers.get(id) ?? [];
    this.finishers.delete(id);
    for (const f of list) (outcome instanceof Error ? f.reject(outcome) : f.resolve(outcome));
  }

  /**
   * A watched file the journal has no record of (baseVersion null: a journal set aside, a first sync
   * of a folder uploaded before) whose remote copy already has its bytes (adopt.ts) is recorded as
   * synced to that version, and nothing is uploaded. True when it was.
   */
  private async adopted(job: Job, up: Uploader, signal: AbortSignal): Promise<boolean> {
    if (job.producer !== 'sync' || job.baseVersion !== null || !up.remoteContent) return false;
    const remote = await up.remoteContent(this.target(job), signal);
    if (!remote || !(await sameContent(job.localPath, job.size, remote, up.partSize(job.size), true))) return false;
    const { fh } = await this.openLocal(job);
    const hash = createHash('sha256');
    try {
      for await (const c of fh.createReadStream({ autoClose: false })) hash.update(c as Buffer);
    } finally {
      await fh.close();
    }
    this.opts.journal.finish(job.id, hash.digest('hex'), remote.version);
    this.opts.log.info({ job: job.id, path: job.remotePath, version: remote.version }, 'the remote copy already has these bytes: adopted, nothing uploaded');
    const finished = this.opts.journal.get(job.id)!;
    for (const fn of this.doneListeners) fn(finished);
    this.settle(job.id, { remotePath: finished.remotePath, version: remote.version, conflictOf: null });
    return true;
  }

  private async resolveConflict(job: Job, up: Uploader, signal: AbortSignal): Promise<Job> {
    const remote = await up.remoteVersion(this.target(job), signal);
    if (remote === undefined || remote === job.baseVersion) return job;
    const parts = splitRemote(job.remotePath);
    const renamed = joinRemote([...parts.slice(0, -1), conflictName(parts.at(-1) ?? 'file', undefined, undefined, up.conflictMark)]);
    const why = job.producer === 'sync' ? 'changed since our last upload' : job.baseVersion === null ? 'appeared since the file was created in the mount' : 'changed since the file was opened for writing';
    this.opts.log.warn({ job: job.id, path: job.remotePath, conflictCopy: renamed }, `conflict: the remote file ${why}: ours goes up beside it as ${renamed}`);
    this.opts.journal.retarget(job.id, renamed, job.remotePath);
    return this.opts.journal.get(job.id)!;
  }

  /** Reads the file in order, hashing all of it and uploading the parts not yet held. Returns the SHA-256. */
  private async sendParts(job: Job, up: Uploader, have: Map<number, ConfirmedPart>, r: Running, signal: AbortSignal, lease: UploadLease | undefined): Promise<string> {
    const hash = createHash('sha256');
    const count = Math.max(1, Math.ceil(job.size / job.partSize));
    const perFile = this.opts.partsPerFile ?? 4;
    const inflight = new Set<Promise<void>>();
    // Part buffers are reused: memory stays at (parts in flight + 1) × partSize per file, without
    // waiting for the garbage collector to notice dropped buffers.
    const pool: Buffer[] = [];
    let firstError: unknown;
    const meter = this.opts.meterFor?.(job.source);
    const { fh } = await this.openLocal(job);
    try {
      for (let n = 1; n <= count; n++) {
        if (firstError) break;
        signal.throwIfAborted();
        const start = (n - 1) * job.partSize;
        const len = Math.min(job.partSize, job.size - start);
        while (inflight.size >= perFile) await Promise.race(inflight);
        const whole = pool.pop() ?? Buffer.allocUnsafe(job.partSize);
        const buf = whole.subarray(0, len);
        const { bytesRead } = await fh.read(buf, 0, len, start);
        if (bytesRead !== len) throw new ChangedError('the file became shorter while it was read');
        hash.update(buf);
        if (have.has(n)) {
          pool.push(whole);
          continue;
        }
        const p: Promise<void> = this.partLimit(async () => {
          signal.throwIfAborted();
          const send = () => up.part(this.target(job), job.uploadId!, n, buf, signal);
          const etag = await (meter ? meter.uploadPart(len, send) : send());
          this.opts.journal.recordPart(job.id, { number: n, etag, size: len });
          await lease?.part({ number: n, etag, size: len });
          r.bytes += len;
          r.samples.push({ t: Date.now(), bytes: r.bytes });
          if (r.samples.length > 64) r.samples.splice(0, 32);
        })
          .catch((e: unknown) => {
            firstError ??= e;
          })
          .finally(() => {
            inflight.delete(p);
            pool.push(whole);
          });
        inflight.add(p);
      }
      await Promise.all(inflight);
      if (firstError) throw firstError;
      const after = await fh.stat();
      if (after.size !== job.size || Math.trunc(after.mtimeMs) !== Math.trunc(job.mtimeMs)) {
        throw new ChangedError('the file changed while it was uploaded');
      }
    } finally {
      await fh.close();
    }
    return hash.digest('hex');
  }

  /**
   * The queued file, opened without following a symlink (local-file.ts). A file that is gone, or is no
   * longer a regular file at its path, cancels the job: nothing else is read in its place.
   */
  private async openLocal(job: Job): Promise<Awaited<ReturnType<typeof openForUpload>>> {
    try {
      return await openForUpload(job.localPath, { exactPath: job.producer === 'sync' });
    } catch (e) {
      const gone = (e as NodeJS.ErrnoException).code === 'ENOENT';
      if (!gone && !(e instanceof NotRegularFileError)) throw e;
      const why = gone ? 'the local file is gone' : (e as Error).message;
      this.opts.journal.setState(job.id, 'cancelled', why);
      if (!gone) this.opts.log.warn({ job: job.id, path: job.localPath }, why);
      this.notify(job.id, new Error(why));
      this.settle(job.id, new Error(why));
      throw new Error(why);
    }
  }

  private async localStat(job: Job): Promise<Stats> {
    const { fh, st } = await this.openLocal(job);
    await fh.close();
    return st;
  }

  private target(job: Job): UploadTarget {
    return { source: job.source, path: splitRemote(job.remotePath) };
  }
}
