/**
 * What the staging area writes down about each staged file, twice:
 *  - a row in the upload journal's `staged` table (the truth while the journal is readable);
 *  - a sidecar `<id>.json` beside the staged copy `<id>`, so that a journal set aside as unreadable
 *    (upload/journal.ts openJournal) loses no staged file: the rescan at start rebuilds rows from them.
 *
 * States (see staging.ts for the transitions):
 *   open       written since it was last closed or fsynced: possibly incomplete, never uploaded as it is
 *   sealed     every writer closed (or fsynced) it: complete, waiting for the write-back delay
 *   queued     handed to the upload engine as job `jobId`
 *   attention  kept for the operator (`reason` says why): not in the mount, never uploaded by itself
 *
 * Invariant: a transition to `open` is on disk in both places before the write that caused it is
 * acknowledged, so that neither record can ever call an incomplete file complete.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Journal } from '../../upload/journal.js';

export type RecordState = 'open' | 'sealed' | 'queued' | 'attention';

export interface StagedRecord {
  /** The staged copy's file name under the staging folder. */
  readonly id: string;
  /** Mount path '/<source>/<local names…>'. */
  readonly path: string;
  readonly source: string;
  /** '/'-joined remote names below the source. */
  readonly remotePath: string;
  /** The remote version the writer started from; null when there was none. */
  readonly baseVersion: string | null;
  readonly state: RecordState;
  readonly jobId: number | null;
  readonly reason: string | null;
  readonly updatedAt: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS staged (
  id TEXT PRIMARY KEY,
  path TEXT NOT NULL,
  source TEXT NOT NULL,
  remote_path TEXT NOT NULL,
  base_version TEXT,
  state TEXT NOT NULL,
  job_id INTEGER,
  reason TEXT,
  updated_at INTEGER NOT NULL
);`;

interface Row {
  id: string; path: string; source: string; remote_path: string; base_version: string | null; state: RecordState;
  job_id: number | null; reason: string | null; updated_at: number;
}

const toRecord = (r: Row): StagedRecord => ({
  id: r.id, path: r.path, source: r.source, remotePath: r.remote_path, baseVersion: r.base_version, state: r.state,
  jobId: r.job_id, reason: r.reason, updatedAt: r.updated_at,
});

export const sidecarOf = (dir: string, id: string) => join(dir, `${id}.json`);
export const isSidecar = (name: string) => name.endsWith('.json');

export class StagedRecords {
  constructor(
    private readonly journal: Journal,
    private readonly dir: string,
  ) {
    journal.guard('staged schema', () => journal.db.exec(SCHEMA));
  }

  all(): StagedRecord[] {
    return this.journal.guard('staged all', () => (this.journal.stmt('SELECT * FROM staged ORDER BY updated_at').all() as Row[]).map(toRecord));
  }

  /** Writes `r` (row, then sidecar); `durable`: the row survives a power cut once this returns (close, fsync, rename). */
  async put(r: Omit<StagedRecord, 'updatedAt'>, durable = false): Promise<void> {
    const now = Date.now();
    const write = () =>
      this.journal
        .stmt('INSERT OR REPLACE INTO staged (id, path, source, remote_path, base_version, state, job_id, reason, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(r.id, r.path, r.source, r.remotePath, r.baseVersion, r.state, r.jobId, r.reason, now);
    this.journal.guard('staged put', () => (durable ? this.journal.durable(write) : write()));
    await writeFile(sidecarOf(this.dir, r.id), JSON.stringify({ ...r, updatedAt: now }), { mode: 0o600 });
  }

  /**
   * Removes the sidecar, then the row (the staging area deletes the staged copy after): a crash in
   * between leaves a row that the next start settles, never a sidecar that would bring the file back.
   */
  async removeRecord(id: string): Promise<void> {
    await rm(sidecarOf(this.dir, id), { force: true });
    this.journal.guard('staged remove', () => this.journal.stmt('DELETE FROM staged WHERE id = ?').run(id));
  }

  /** The sidecar of `id`, when it is readable (the rescan after a journal was set aside). */
  async sidecar(id: string): Promise<StagedRecord | undefined> {
    try {
      const r = JSON.parse(await readFile(sidecarOf(this.dir, id), 'utf8')) as StagedRecord;
      return typeof r.path === 'string' && typeof r.source === 'string' && typeof r.remotePath === 'string' ? { ...r, id } : undefined;
    } catch {
      return undefined;
    }
  }
}
