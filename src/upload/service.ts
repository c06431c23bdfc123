/**
 * The daemon's upload side: the journal, the one engine, and a FolderSync per `sync:` entry — all fed
 * into the same engine (writes into the mount feed it through the VFS). Also the status document.
 */
import { join, posix } from 'node:path';
import type { Provider } from '../core/types.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../util/logger.js';
import { openJournal, type Journal, type JournalHealth } from './journal.js';
import { UploadEngine } from './engine.js';
import type { Job, Uploader } from './types.js';
import type { SourceMeter } from '../metrics/metrics.js';
// Type only: the watcher (and chokidar under it) loads in start(), and only when a folder is synced.
import type { FolderSync, FolderSyncStatus } from '../sync/watcher.js';

export interface UploadJobStatus {
  id: number;
  state: Job['state'];
  producer: Job['producer'];
  local: string;
  remote: string;
  size: number;
  bytesDone: number;
  /** Bytes per second, while uploading. */
  rate: number;
  etaSec: number | null;
  attempts: number;
  lastError: string | null;
  nextAttemptInSec: number | null;
  /** A conflict copy: the remote path (source/…) it was meant for, which had changed. */
  conflictOf?: string;
}

export interface UploadsStatus {
  active: UploadJobStatus[];
  queued: UploadJobStatus[];
  failed: UploadJobStatus[];
  recent: UploadJobStatus[];
  /** Jobs per state; the lists above show at most STATUS_LIST_MAX of each. */
  counts: { uploading: number; queued: number; failed: number };
  /** Each watched folder; `paused` says why its remote deletions are held (src/sync/delete-guard.ts). */
  syncs: FolderSyncStatus[];
  journal: JournalHealth;
}

/** Jobs listed per state in the status document (counts are exact): 100,000 queued jobs stay cheap. */
const STATUS_LIST_MAX = 100;

export class UploadService {
  readonly journal: Journal;
  readonly engine: UploadEngine;
  private readonly syncs: FolderSync[] = [];
  private readonly uploaders = new Map<string, Uploader>();

  constructor(
    private readonly config: Config,
    private readonly providers: ReadonlyMap<string, Provider>,
    private readonly log: Logger,
    meterFor?: (source: string) => SourceMeter | undefined,
  ) {
    this.journal = openJournal(join(config.cacheDir, 'journal.db'), log.child({ c: 'journal' }));
    this.engine = new UploadEngine({
      journal: this.journal,
      uploaderFor: (s) => this.uploaderFor(s),
      log: log.child({ c: 'upload' }),
      maxFiles: config.uploads.parallelFiles,
      maxParts: config.uploads.parallelParts,
      partsPerFile: config.uploads.partsPerFile,
      meterFor,
    });
  }

  /** The uploader of a source; undefined when it is read-only or its platform cannot take uploads. */
  uploaderFor(source: string): Uploader | undefined {
    const p = this.providers.get(source);
    if (!p?.caps.upload || !p.uploader) return undefined;
    let u = this.uploaders.get(source);
    if (!u) this.uploaders.set(source, (u = p.uploader()));
    return u;
  }

  /** New credentials (SIGHUP): uploaders are rebuilt from the new providers on next use. */
  providersChanged(): void {
    this.uploaders.clear();
  }

  async start(): Promise<void> {
    this.engine.start();
    if (this.config.sync.length > 0) {
      const { FolderSync } = await import('../sync/watcher.js');
      for (const e of this.config.sync) {
        this.syncs.push(new FolderSync(e, { engine: this.engine, journal: this.journal, uploaderFor: (s) => this.uploaderFor(s), log: this.log.child({ c: 'sync' }) }));
      }
    }
    for (const s of this.syncs) {
      if (!this.uploaderFor(s.source)) this.log.warn({ source: s.source }, 'sync target cannot take uploads (read-only source, or a platform without uploads yet): files will fail until it can');
      await s.start();
    }
    this.journal.prune(7 * 24 * 3_600_000);
  }

  status(): UploadsStatus {
    const progress = new Map(this.engine.progress().map((p) => [p.id, p]));
    const now = Date.now();
    const view = (j: Job): UploadJobStatus => {
      const p = progress.get(j.id);
      const done = p?.bytesDone ?? (j.state === 'done' ? j.size : j.bytesDone);
      const rate = p?.rate ?? 0;
      return {
        id: j.id, state: p ? 'uploading' : j.state, producer: j.producer, local: j.localPath, remote: posix.join(j.source, j.remotePath),
        size: j.size, bytesDone: done, rate, etaSec: rate > 0 ? Math.round((j.size - done) / rate) : null, attempts: j.attempts,
        lastError: j.lastError, nextAttemptInSec: j.state === 'failed' ? Math.max(0, Math.round((j.nextAttemptAt - now) / 1000)) : null,
        ...(j.conflictOf ? { conflictOf: posix.join(j.source, j.conflictOf) } : {}),
      };
    };
    // The journal failing must not take the status down with it: its error is what status shows.
    const safe = <T>(f: () => T, fallback: T): T => {
      try {
        return f();
      } catch {
        return fallback;
      }
    };
    return {
      active: safe(() => this.journal.list(['uploading'], STATUS_LIST_MAX), []).map(view),
      queued: safe(() => this.journal.list(['queued'], STATUS_LIST_MAX), []).map(view),
      failed: safe(() => this.journal.list(['failed'], STATUS_LIST_MAX), []).map(view),
      recent: safe(() => this.journal.recent(10), []).map(view),
      counts: this.counts(),
      syncs: this.syncs.map((s) => s.status()),
      journal: this.journal.health,
    };
  }

  /** Jobs per state, exact (the journal keeps them by trigger): for status and assetfs_uploads; zeros while the journal fails. */
  counts(): { uploading: number; queued: number; failed: number } {
    try {
      const c = this.journal.counts();
      return { uploading: c.uploading, queued: c.queued, failed: c.failed };
    } catch {
      return { uploading: 0, queued: 0, failed: 0 };
    }
  }

  /**
   * `assetfs retry`: failed uploads are retried now, and held remote deletions of paused syncs are
   * confirmed (carried out for the files still missing locally).
   */
  async retryNow(): Promise<{ retried: number; deletions: number; stillPaused: number }> {
    const retried = this.engine.retryNow();
    let deletions = 0;
    for (const s of this.syncs) deletions += await s.confirmDeletes();
    return { retried, deletions, stillPaused: this.syncs.filter((s) => s.status().paused).length };
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.syncs.map((s) => s.stop()));
    await this.engine.stop();
    this.journal.close();
  }
}
