/**
 * The upload journal: SQLite (better-sqlite3, WAL) under the cache dir.
 *
 * Invariants:
 *  - A part is recorded (INSERT in `parts`) as soon as the platform confirmed it and before the job's
 *    next state change, so a crash loses at most the parts in flight.
 *  - Commits are durable against a crash of the daemon (WAL, synchronous=NORMAL: the OS has them), and
 *    those that answer a program's close or fsync (durable()) against a power cut too (synchronous=FULL,
 *    one fsync). A power cut may lose the last few other commits: parts confirmed then are sent again,
 *    a finished job runs again. Per-call cost then does not depend on the disk's fsync latency.
 *  - At most one unfinished job per (source, remote path): enqueueing a target replaces the older
 *    unfinished job (which is returned so that its remote session can be aborted).
 *  - `synced` remembers, per watched local file, what we last uploaded and the remote version that
 *    produced: the initial scan compares against it, and a remote version that moved means a conflict.
 *  - Every statement is synchronous (better-sqlite3), prepared once, and touches a bounded number of
 *    rows through an index (the scheduler asks for the next few due jobs, never for all of them), so
 *    no call stalls the event loop however many jobs wait (bench/journal.ts measures it).
 *  - Every error is logged with its cause and kept in `health` (shown by `assetfs status`), then
 *    rethrown to the caller, which decides what the operation answers. A journal that cannot be opened
 *    is set aside (journal.ts `openJournal`) and a fresh one started.
 */
import { renameSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Logger } from '../util/logger.js';
import type { ConfirmedPart, Job, JobState, Producer } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  local_path TEXT NOT NULL,
  source TEXT NOT NULL,
  remote_path TEXT NOT NULL,
  producer TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ms INTEGER NOT NULL,
  sha256 TEXT,
  part_size INTEGER NOT NULL,
  upload_id TEXT,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  next_attempt_at INTEGER NOT NULL DEFAULT 0,
  base_version TEXT,
  bytes_done INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_target ON jobs(source, remote_path);
CREATE INDEX IF NOT EXISTS jobs_state_next ON jobs(state, next_attempt_at);
CREATE INDEX IF NOT EXISTS jobs_state_updated ON jobs(state, updated_at);
CREATE TABLE IF NOT EXISTS job_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS jobs_count_ins AFTER INSERT ON jobs BEGIN
  INSERT INTO job_counts (state, n) VALUES (NEW.state, 1) ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS jobs_count_del AFTER DELETE ON jobs BEGIN
  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
END;
CREATE TRIGGER IF NOT EXISTS jobs_count_upd AFTER UPDATE OF state ON jobs WHEN OLD.state <> NEW.state BEGIN
  UPDATE job_counts SET n = n - 1 WHERE state = OLD.state;
  INSERT INTO job_counts (state, n) VALUES (NEW.state, 1) ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TABLE IF NOT EXISTS parts (
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  number INTEGER NOT NULL,
  size INTEGER NOT NULL,
  etag TEXT NOT NULL,
  PRIMARY KEY (job_id, number)
);
CREATE TABLE IF NOT EXISTS synced (
  local_path TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  remote_path TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ms INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  remote_version TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL
);
`;

interface JobRow {
  id: number; local_path: string; source: string; remote_path: string; producer: Producer; size: number; mtime_ms: number;
  sha256: string | null; part_size: number; upload_id: string | null; state: JobState; attempts: number; last_error: string | null;
  next_attempt_at: number; base_version: string | null; bytes_done: number; created_at: number; updated_at: number;
  conflict_of: string | null;
}

const toJob = (r: JobRow): Job => ({
  id: r.id, localPath: r.local_path, source: r.source, remotePath: r.remote_path, producer: r.producer, size: r.size,
  mtimeMs: r.mtime_ms, sha256: r.sha256, partSize: r.part_size, uploadId: r.upload_id, state: r.state, attempts: r.attempts,
  lastError: r.last_error, nextAttemptAt: r.next_attempt_at, baseVersion: r.base_version, bytesDone: r.bytes_done,
  createdAt: r.created_at, updatedAt: r.updated_at, conflictOf: r.conflict_of,
});

export interface SyncedFile {
  readonly localPath: string;
  readonly source: string;
  readonly remotePath: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly sha256: string;
  readonly remoteVersion: string;
}

export interface NewJob {
  localPath: string;
  source: string;
  remotePath: string;
  producer: Producer;
  size: number;
  mtimeMs: number;
  partSize: number;
  baseVersion: string | null;
}

/** What went wrong with the journal, for `assetfs status`. */
export interface JournalHealth {
  /** Where an unreadable journal was moved before a fresh one was started (this run). */
  setAside?: string;
  setAsideCause?: string;
  errors: number;
  lastError?: { at: string; op: string; code: string; message: string };
}

/** `next_attempt_at` of a job refused for good: never due on its own; `assetfs retry` (retryNow) makes it due. */
export const NOT_RETRIED = Number.MAX_SAFE_INTEGER;

/** SQLite's error code (SQLITE_FULL, SQLITE_BUSY, SQLITE_CORRUPT, …) or the system's (ENOSPC …). */
export const sqliteCode = (e: unknown): string => String((e as { code?: unknown })?.code ?? 'ERROR');

export class Journal {
  readonly db: Database.Database;
  readonly health: JournalHealth = { errors: 0 };
  private readonly statements = new Map<string, Database.Statement>();

  /**
   * Opens (or creates) the journal at `file`. Throws when the file is not a usable journal; the daemon
   * opens through `openJournal`, which sets such a file aside.
   */
  constructor(
    file: string,
    private readonly log?: Logger,
  ) {
    // A lock held by another process fails a statement after 250 ms (SQLITE_BUSY) instead of blocking
    // the event loop for better-sqlite3's default 5 s.
    this.db = new Database(file, { timeout: 250 });
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      // job_counts (kept by triggers: status counts 100,000 queued jobs without reading them) starts
      // from the jobs a journal of an earlier version already holds.
      const counted = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'job_counts'`).get() !== undefined;
      this.db.exec(SCHEMA);
      if (!counted) this.db.exec('INSERT OR REPLACE INTO job_counts (state, n) SELECT state, COUNT(*) FROM jobs GROUP BY state');
      const cols = (this.db.pragma('table_info(jobs)') as { name: string }[]).map((c) => c.name);
      if (!cols.includes('conflict_of')) this.db.exec('ALTER TABLE jobs ADD COLUMN conflict_of TEXT');
      const check = this.db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw Object.assign(new Error(`integrity check: ${String(check)}`), { code: 'SQLITE_CORRUPT' });
    } catch (e) {
      this.db.close();
      throw e;
    }
  }

  /**
   * Runs `fn` (statements on the journal); an error is logged with its cause, counted in `health`, and
   * rethrown. Public so that the staging area's records (same database) report the same way.
   */
  guard<T>(op: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      const code = sqliteCode(e);
      const message = e instanceof Error ? e.message : String(e);
      this.health.errors++;
      this.health.lastError = { at: new Date().toISOString(), op, code, message };
      this.log?.error({ op, code, cause: message }, `upload journal error (${code}): ${message}`);
      throw e;
    }
  }

  /** Runs `fn` (outside a transaction) with its commits on disk before it returns, power cut or not. */
  durable<T>(fn: () => T): T {
    this.db.pragma('synchronous = FULL');
    try {
      return fn();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  /** A statement prepared once and reused. */
  stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /** Adds a queued job; an unfinished job for the same target is cancelled and returned. */
  enqueue(j: NewJob): { job: Job; replaced: Job | undefined } {
    return this.guard('enqueue', () =>
      this.db.transaction(() => {
        const old = this.stmt(`SELECT * FROM jobs WHERE source = ? AND remote_path = ? AND state IN ('queued','uploading','failed') ORDER BY id DESC LIMIT 1`)
          .get(j.source, j.remotePath) as JobRow | undefined;
        if (old) this.setState(old.id, 'cancelled', 'replaced by a newer version of the file');
        const now = Date.now();
        const info = this.stmt(`INSERT INTO jobs (local_path, source, remote_path, producer, size, mtime_ms, part_size, state, base_version, created_at, updated_at)
                  VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)`)
          .run(j.localPath, j.source, j.remotePath, j.producer, j.size, j.mtimeMs, j.partSize, j.baseVersion, now, now);
        return { job: this.get(Number(info.lastInsertRowid))!, replaced: old ? toJob(old) : undefined };
      })(),
    );
  }

  get(id: number): Job | undefined {
    const r = this.guard('get', () => this.stmt('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined);
    return r && toJob(r);
  }

  /** Jobs in the given states, oldest first; at most `limit` of them. */
  list(states: readonly JobState[] = ['queued', 'uploading', 'failed'], limit = -1): Job[] {
    const q = `SELECT * FROM jobs WHERE state IN (${states.map(() => '?').join(',')}) ORDER BY id LIMIT ?`;
    return this.guard('list', () => (this.stmt(q).all(...states, limit) as JobRow[]).map(toJob));
  }

  /** Up to `limit` jobs due now: queued ones, then failed ones whose retry time has come; oldest first. */
  due(now: number, limit: number): Job[] {
    return this.guard('due', () => {
      const queued = this.stmt(`SELECT * FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?`).all(limit) as JobRow[];
      const failed = queued.length < limit
        ? (this.stmt(`SELECT * FROM jobs WHERE state = 'failed' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`).all(now, limit - queued.length) as JobRow[])
        : [];
      return [...queued, ...failed].map(toJob);
    });
  }

  /** How many jobs are in each state. */
  counts(): Record<JobState, number> {
    const out: Record<JobState, number> = { queued: 0, uploading: 0, failed: 0, done: 0, cancelled: 0 };
    const rows = this.guard('counts', () => this.stmt('SELECT state, n FROM job_counts').all() as { state: JobState; n: number }[]);
    for (const r of rows) out[r.state] = r.n;
    return out;
  }

  recent(limit = 20): Job[] {
    return this.guard('recent', () =>
      (this.stmt(`SELECT * FROM jobs WHERE state IN ('done','cancelled') ORDER BY updated_at DESC LIMIT ?`).all(limit) as JobRow[]).map(toJob),
    );
  }

  /** Unfinished job for a target, if any. */
  pendingFor(source: string, remotePath: string): Job | undefined {
    const r = this.guard('pendingFor', () =>
      this.stmt(`SELECT * FROM jobs WHERE source = ? AND remote_path = ? AND state IN ('queued','uploading','failed') ORDER BY id DESC LIMIT 1`)
        .get(source, remotePath) as JobRow | undefined,
    );
    return r && toJob(r);
  }

  setState(id: number, state: JobState, lastError: string | null = null, nextAttemptAt = 0): void {
    this.guard('setState', () =>
      this.stmt('UPDATE jobs SET state = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?').run(state, lastError, nextAttemptAt, Date.now(), id),
    );
  }

  /** A failed attempt: back to the queue after `delayMs`, shown as failed until then. */
  failed(id: number, error: string, delayMs: number): void {
    this.guard('failed', () =>
      this.stmt(`UPDATE jobs SET state = 'failed', attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?`)
        .run(error, Date.now() + delayMs, Date.now(), id),
    );
  }

  /** A refused attempt (errors.ts isPermanentFailure): failed, and not retried until `assetfs retry`. */
  refused(id: number, error: string): void {
    this.guard('refused', () =>
      this.stmt(`UPDATE jobs SET state = 'failed', attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?`)
        .run(error, NOT_RETRIED, Date.now(), id),
    );
  }

  /**
   * `assetfs retry PATH`: the failed job for one file becomes due now, named by its target (source and
   * remote path: a path in the mount) or by its local file (a watched folder's). Returns how many.
   */
  retryOne(target: { source: string; remotePath: string } | { localPath: string }): number {
    return this.guard('retryOne', () =>
      'localPath' in target
        ? this.stmt(`UPDATE jobs SET next_attempt_at = 0, updated_at = ? WHERE state = 'failed' AND local_path = ?`).run(Date.now(), target.localPath).changes
        : this.stmt(`UPDATE jobs SET next_attempt_at = 0, updated_at = ? WHERE state = 'failed' AND source = ? AND remote_path = ?`)
            .run(Date.now(), target.source, target.remotePath).changes,
    );
  }

  /** `assetfs retry`: failed jobs become due now. Returns how many. */
  retryNow(): number {
    return this.guard('retryNow', () => this.stmt(`UPDATE jobs SET next_attempt_at = 0, updated_at = ? WHERE state = 'failed'`).run(Date.now()).changes);
  }

  /** The local file changed: new size/mtime, and every recorded part and session forgotten. */
  restart(id: number, size: number, mtimeMs: number, partSize: number): void {
    this.guard('restart', () =>
      this.db.transaction(() => {
        this.stmt('DELETE FROM parts WHERE job_id = ?').run(id);
        this.stmt('UPDATE jobs SET size = ?, mtime_ms = ?, part_size = ?, upload_id = NULL, sha256 = NULL, bytes_done = 0, updated_at = ? WHERE id = ?')
          .run(size, mtimeMs, partSize, Date.now(), id);
      })(),
    );
  }

  /** Upload under another remote path: a conflict copy of `conflictOf`. */
  retarget(id: number, remotePath: string, conflictOf: string): void {
    this.guard('retarget', () =>
      this.stmt('UPDATE jobs SET remote_path = ?, conflict_of = ?, updated_at = ? WHERE id = ?').run(remotePath, conflictOf, Date.now(), id),
    );
  }

  setUploadId(id: number, uploadId: string | null): void {
    this.guard('setUploadId', () =>
      this.db.transaction(() => {
        this.stmt('DELETE FROM parts WHERE job_id = ?').run(id);
        this.stmt('UPDATE jobs SET upload_id = ?, bytes_done = 0, updated_at = ? WHERE id = ?').run(uploadId, Date.now(), id);
      })(),
    );
  }

  recordPart(id: number, p: ConfirmedPart): void {
    this.guard('recordPart', () =>
      this.db.transaction(() => {
        this.stmt('INSERT OR REPLACE INTO parts (job_id, number, size, etag) VALUES (?, ?, ?, ?)').run(id, p.number, p.size, p.etag);
        this.stmt('UPDATE jobs SET bytes_done = (SELECT COALESCE(SUM(size), 0) FROM parts WHERE job_id = ?), updated_at = ? WHERE id = ?').run(id, Date.now(), id);
      })(),
    );
  }

  forgetParts(id: number, numbers: readonly number[]): void {
    const del = this.stmt('DELETE FROM parts WHERE job_id = ? AND number = ?');
    this.guard('forgetParts', () => this.db.transaction(() => numbers.forEach((n) => del.run(id, n)))());
  }

  parts(id: number): ConfirmedPart[] {
    return this.guard('parts', () => this.stmt('SELECT number, size, etag FROM parts WHERE job_id = ? ORDER BY number').all(id) as ConfirmedPart[]);
  }

  /** The upload is complete: job done, and for synced files what we uploaded and the version it made. */
  finish(id: number, sha256: string, remoteVersion: string): void {
    this.guard('finish', () =>
      this.db.transaction(() => {
        const j = this.get(id)!;
        this.stmt(`UPDATE jobs SET state = 'done', sha256 = ?, last_error = NULL, bytes_done = size, updated_at = ? WHERE id = ?`).run(sha256, Date.now(), id);
        this.stmt('DELETE FROM parts WHERE job_id = ?').run(id);
        if (j.producer === 'sync') {
          this.stmt(`INSERT OR REPLACE INTO synced (local_path, source, remote_path, size, mtime_ms, sha256, remote_version, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
            .run(j.localPath, j.source, j.remotePath, j.size, j.mtimeMs, sha256, remoteVersion, Date.now());
        }
      })(),
    );
  }

  synced(localPath: string): SyncedFile | undefined {
    const r = this.guard('synced', () => this.stmt('SELECT * FROM synced WHERE local_path = ?').get(localPath)) as
      | { local_path: string; source: string; remote_path: string; size: number; mtime_ms: number; sha256: string; remote_version: string }
      | undefined;
    return r && { localPath: r.local_path, source: r.source, remotePath: r.remote_path, size: r.size, mtimeMs: r.mtime_ms, sha256: r.sha256, remoteVersion: r.remote_version };
  }

  forgetSynced(localPath: string): void {
    this.guard('forgetSynced', () => this.stmt('DELETE FROM synced WHERE local_path = ?').run(localPath));
  }

  /** Drops finished jobs older than `ageMs` (the status shows recent ones). */
  prune(ageMs: number): void {
    this.guard('prune', () => this.stmt(`DELETE FROM jobs WHERE state IN ('done','cancelled') AND updated_at < ?`).run(Date.now() - ageMs));
  }

  close(): void {
    this.db.close();
  }
}

/**
 * The daemon's journal at `file`. One that cannot be opened (not a database, corrupt, unreadable) is set
 * aside as `<file>.broken-<UTC time>` (with its -wal and -shm), one line says so, and a fresh journal
 * starts: the staging area and the watched folders are rescanned, so nothing pending is forgotten.
 */
export function openJournal(file: string, log: Logger, now = new Date()): Journal {
  try {
    return new Journal(file, log);
  } catch (e) {
    const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const aside = `${file}.broken-${stamp}`;
    for (const ext of ['', '-wal', '-shm']) {
      try {
        renameSync(`${file}${ext}`, `${aside}${ext}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    const cause = `${sqliteCode(e)}: ${e instanceof Error ? e.message : String(e)}`;
    log.warn({ file, setAside: aside, cause }, `upload journal unreadable (${cause}): set aside as ${aside}; starting a fresh one and rescanning staged files and watched folders`);
    const j = new Journal(file, log);
    j.health.setAside = aside;
    j.health.setAsideCause = cause;
    return j;
  }
}
