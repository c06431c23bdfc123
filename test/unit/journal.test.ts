/**
 * The upload journal on a real SQLite file: the scheduler's due() query (never the whole queue), a
 * journal that cannot be opened set aside and replaced, and SQLite's own errors (full, busy) logged,
 * kept for status and rethrown — the write path answers ENOSPC for a full one.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Journal, openJournal, type NewJob } from '../../src/upload/journal.js';
import { writeError } from '../../src/vfs/write/write-ops.js';
import { silentLogger } from '../../src/util/logger.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-journal-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const job = (n: number): NewJob => ({ localPath: `/l/${n}`, source: 's', remotePath: `r/${n}`, producer: 'mount', size: 1, mtimeMs: 1, partSize: 1, baseVersion: null });

describe('journal', () => {
  it('due() gives the oldest queued jobs, then failed ones whose time has come, at most `limit`', () => {
    const j = new Journal(join(dir, 'j.db'));
    const ids = [1, 2, 3, 4, 5].map((n) => j.enqueue(job(n)).job.id);
    j.failed(ids[0]!, 'boom', 60_000); // not due for a minute
    j.failed(ids[1]!, 'boom', -1); // due
    j.setState(ids[2]!, 'uploading');
    expect(j.due(Date.now(), 10).map((x) => x.id)).toEqual([ids[3], ids[4], ids[1]]);
    expect(j.due(Date.now(), 1).map((x) => x.id)).toEqual([ids[3]]);
    expect(j.counts()).toMatchObject({ queued: 2, uploading: 1, failed: 2 });
    j.close();
  });

  it('a journal that cannot be opened is set aside with a timestamp, and a fresh one starts', async () => {
    const file = join(dir, 'journal.db');
    await writeFile(file, Buffer.alloc(8192, 'not a database '));
    const j = openJournal(file, silentLogger, new Date('2026-01-02T03:04:05.678Z'));
    expect(j.health.setAside).toBe(`${file}.broken-20260102T030405Z`);
    expect(j.health.setAsideCause).toMatch(/SQLITE_NOTADB|not a database/);
    expect(readFileSync(j.health.setAside!).subarray(0, 15).toString()).toBe('not a database ');
    expect(j.enqueue(job(1)).job.id).toBe(1);
    j.close();
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(['journal.db', 'journal.db.broken-20260102T030405Z']));
  });

  it('a full database (SQLITE_FULL) is logged, kept in health and rethrown; the write path answers ENOSPC for it', () => {
    const j = new Journal(join(dir, 'j.db'));
    j.db.pragma(`max_page_count = ${(j.db.pragma('page_count', { simple: true }) as number) + 1}`);
    let err: unknown;
    try {
      for (let n = 0; n < 10_000; n++) j.enqueue({ ...job(n), localPath: `/l/${'x'.repeat(500)}${n}` });
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe('SQLITE_FULL');
    expect(j.health.lastError).toMatchObject({ op: 'enqueue', code: 'SQLITE_FULL' });
    expect(j.health.errors).toBe(1);
    expect(writeError(err, 'create /s/x').code).toBe('ENOSPC');
    j.close();
  });

  it('a journal locked by another process (SQLITE_BUSY) fails the call instead of blocking, and recovers once released', () => {
    const file = join(dir, 'j.db');
    const j = new Journal(file);
    const { job: a } = j.enqueue(job(1));
    const other = new Database(file);
    other.exec('BEGIN EXCLUSIVE');
    try {
      expect(() => j.setState(a.id, 'failed')).toThrow(/locked|busy/i);
      expect(j.health.lastError?.code).toBe('SQLITE_BUSY');
      expect(j.get(a.id)?.state).toBe('queued'); // reads go on (WAL)
    } finally {
      other.exec('COMMIT');
      other.close();
    }
    j.setState(a.id, 'failed');
    expect(j.get(a.id)?.state).toBe('failed');
    j.close();
  });
});
