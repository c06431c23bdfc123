/**
 * The upload journal: SQLite (better-sqlite3, WAL) under the cache dir.
 *
 * Invariants:
 *  - A part is recorded (INSERT in `parts`) as soon as the platform confirmed it and before the job's
 *    next state change, so a crash loses at most the parts in flight.
 *  - At most one unfinished job per (source, remote path): enqueueing a target replaces the older
 *    unfinished job (which is returned so that its remote session can be aborted).
 *  - `synced` remembers, per watched local file, what we last uploaded and the remote version that
 *    produced: the initial scan compares against it, and a remote version that moved means a conflict.
 *  - Every statement is synchronous (better-sqlite3) and small: microseconds, fine on the event loop.
 */
import Database from 'better-sqlite3';
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
}

const toJob = (r: JobRow): Job => ({
  id: r.id, localPath: r.local_path, source: r.source, remotePath: r.remote_path, producer: r.producer, size: r.size,
  mtimeMs: r.mtime_ms, sha256: r.sha256, partSize: r.part_size, uploadId: r.upload_id, state: r.state, attempts: r.attempts,
  lastError: r.last_error, nextAttemptAt: r.next_attempt_at, baseVersion: r.base_version, bytesDone: r.bytes_done,
  createdAt: r.created_at, updatedAt: r.updated_at,
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

export class Journal {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // FULL: a confirmed part must be on disk before we go on; the cost is one fsync per part (≥ 5 MiB).
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
  }

  /** Adds a queued job; an unfinished job for the same target is cancelled and returned. */
  enqueue(j: NewJob): { job: Job; replaced: Job | undefined } {
    return this.db.transaction(() => {
      const old = this.db
        .prepare(`SELECT * FROM jobs WHERE source = ? AND remote_path = ? AND state IN ('queued','uploading','failed') ORDER BY id DESC LIMIT 1`)
        .get(j.source, j.remotePath) as JobRow | undefined;
      if (old) this.setState(old.id, 'cancelled', 'replaced by a newer version of the file');
      const now = Date.now();
      const info = this.db
        .prepare(`INSERT INTO jobs (local_path, source, remote_path, producer, size, mtime_ms, part_size, state, base_version, created_at, updated_at)
                  VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)`)
        .run(j.localPath, j.source, j.remotePath, j.producer, j.size, j.mtimeMs, j.partSize, j.baseVersion, now, now);
      return { job: this.get(Number(info.lastInsertRowid))!, replaced: old ? toJob(old) : undefined };
    })();
  }

  get(id: number): Job | undefined {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as JobRow | undefined;
    return r && toJob(r);
  }

  /** Jobs in the given states, oldest first. */
  list(states: readonly JobState[] = ['queued', 'uploading', 'failed']): Job[] {
    const q = `SELECT * FROM jobs WHERE state IN (${states.map(() => '?').join(',')}) ORDER BY id`;
    return (this.db.prepare(q).all(...states) as JobRow[]).map(toJob);
  }

  recent(limit = 20): Job[] {
    return (this.db.prepare(`SELECT * FROM jobs WHERE state IN ('done','cancelled') ORDER BY updated_at DESC LIMIT ?`).all(limit) as JobRow[]).map(toJob);
  }

  /** Unfinished job for a target, if any. */
  pendingFor(source: string, remotePath: string): Job | undefined {
    const r = this.db
      .prepare(`SELECT * FROM jobs WHERE source = ? AND remote_path = ? AND state IN ('queued','uploading','failed') ORDER BY id DESC LIMIT 1`)
      .get(source, remotePath) as JobRow | undefined;
    return r && toJob(r);
  }

  setState(id: number, state: JobState, lastError: string | null = null, nextAttemptAt = 0): void {
    this.db
      .prepare('UPDATE jobs SET state = ?, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?')
      .run(state, lastError, nextAttemptAt, Date.now(), id);
  }

  /** A failed attempt: back to the queue after `delayMs`, shown as failed until then. */
  failed(id: number, error: string, delayMs: number): void {
    this.db
      .prepare(`UPDATE jobs SET state = 'failed', attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?`)
      .run(error, Date.now() + delayMs, Date.now(), id);
  }

  /** `assetfs retry`: failed jobs become due now. Returns how many. */
  retryNow(): number {
    return this.db.prepare(`UPDATE jobs SET next_attempt_at = 0, updated_at = ? WHERE state = 'failed'`).run(Date.now()).changes;
  }

  /** The local file changed: new size/mtime, and every recorded part and session forgotten. */
  restart(id: number, size: number, mtimeMs: number, partSize: number): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM parts WHERE job_id = ?').run(id);
      this.db
        .prepare('UPDATE jobs SET size = ?, mtime_ms = ?, part_size = ?, upload_id = NULL, sha256 = NULL, bytes_done = 0, updated_at = ? WHERE id = ?')
        .run(size, mtimeMs, partSize, Date.now(), id);
    })();
  }

  /** Upload under another remote path (a conflict copy). */
  retarget(id: number, remotePath: string): void {
    this.db.prepare('UPDATE jobs SET remote_path = ?, updated_at = ? WHERE id = ?').run(remotePath, Date.now(), id);
  }

  setUploadId(id: number, uploadId: string | null): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM parts WHERE job_id = ?').run(id);
      this.db.prepare('UPDATE jobs SET upload_id = ?, bytes_done = 0, updated_at = ? WHERE id = ?').run(uploadId, Date.now(), id);
    })();
  }

  recordPart(id: number, p: ConfirmedPart): void {
    this.db.transaction(() => {
      this.db.prepare('INSERT OR REPLACE INTO parts (job_id, number, size, etag) VALUES (?, ?, ?, ?)').run(id, p.number, p.size, p.etag);
      this.db.prepare('UPDATE jobs SET bytes_done = (SELECT COALESCE(SUM(size), 0) FROM parts WHERE job_id = ?), updated_at = ? WHERE id = ?').run(id, Date.now(), id);
    })();
  }

  forgetParts(id: number, numbers: readonly number[]): void {
    const del = this.db.prepare('DELETE FROM parts WHERE job_id = ? AND number = ?');
    this.db.transaction(() => numbers.forEach((n) => del.run(id, n)))();
  }

  parts(id: number): ConfirmedPart[] {
    return this.db.prepare('SELECT number, size, etag FROM parts WHERE job_id = ? ORDER BY number').all(id) as ConfirmedPart[];
  }

  /** The upload is complete: job done, and for synced files what we uploaded and the version it made. */
  finish(id: number, sha256: string, remoteVersion: string): void {
    this.db.transaction(() => {
      const j = this.get(id)!;
      this.db.prepare(`UPDATE jobs SET state = 'done', sha256 = ?, last_error = NULL, bytes_done = size, updated_at = ? WHERE id = ?`).run(sha256, Date.now(), id);
      this.db.prepare('DELETE FROM parts WHERE job_id = ?').run(id);
      if (j.producer === 'sync') {
        this.db
          .prepare(`INSERT OR REPLACE INTO synced (local_path, source, remote_path, size, mtime_ms, sha256, remote_version, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
          .run(j.localPath, j.source, j.remotePath, j.size, j.mtimeMs, sha256, remoteVersion, Date.now());
      }
    })();
  }

  synced(localPath: string): SyncedFile | undefined {
    const r = this.db.prepare('SELECT * FROM synced WHERE local_path = ?').get(localPath) as
      | { local_path: string; source: string; remote_path: string; size: number; mtime_ms: number; sha256: string; remote_version: string }
      | undefined;
    return r && { localPath: r.local_path, source: r.source, remotePath: r.remote_path, size: r.size, mtimeMs: r.mtime_ms, sha256: r.sha256, remoteVersion: r.remote_version };
  }

  forgetSynced(localPath: string): void {
    this.db.prepare('DELETE FROM synced WHERE local_path = ?').run(localPath);
  }

  /** Drops finished jobs older than `ageMs` (the status shows recent ones). */
  prune(ageMs: number): void {
    this.db.prepare(`DELETE FROM jobs WHERE state IN ('done','cancelled') AND updated_at < ?`).run(Date.now() - ageMs);
  }

  close(): void {
    this.db.close();
  }
}
