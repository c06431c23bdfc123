/**
 * The daemon's upload side: the journal, the one engine, and a FolderSync per `sync:` entry — all fed
 * into the same engine (writes into the mount feed it through the VFS). Also the status document.
 */
import { join, posix } from 'node:path';
import type { Provider } from '../core/types.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../util/logger.js';
import { Journal } from './journal.js';
import { UploadEngine } from './engine.js';
import type { Job, Uploader } from './types.js';
import type { SourceMeter } from '../metrics/metrics.js';
// Type only: the watcher (and chokidar under it) loads in start(), and only when a folder is synced.
import type { FolderSync } from '../sync/watcher.js';

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
}

export interface UploadsStatus {
  active: UploadJobStatus[];
  queued: UploadJobStatus[];
  failed: UploadJobStatus[];
  recent: UploadJobStatus[];
  syncs: { local: string; remote: string }[];
}

export class UploadService {
  readonly journal: Journal;
  readonly engine: UploadEngine;
  private readonly syncs: FolderSync[] = [];
  private readonly uploaders = new Map<string, Uploader>();

  constructor(
    private readonly config: Config,
    private readonly providers: ReadonlyMap<string, Provider>,
    private readonly log: Logger,
    onDone: (job: Job) => void,
    meterFor?: (source: string) => SourceMeter | undefined,
  ) {
    this.journal = new Journal(join(config.cacheDir, 'journal.db'));
    this.engine = new UploadEngine({
      journal: this.journal,
      uploaderFor: (s) => this.uploaderFor(s),
      log: log.child({ c: 'upload' }),
      maxFiles: config.uploads.parallelFiles,
      maxParts: config.uploads.parallelParts,
      partsPerFile: config.uploads.partsPerFile,
      onDone,
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
      };
    };
    const open = this.journal.list(['queued', 'uploading', 'failed']).map(view);
    return {
      active: open.filter((j) => j.state === 'uploading'),
      queued: open.filter((j) => j.state === 'queued'),
      failed: open.filter((j) => j.state === 'failed'),
      recent: this.journal.recent(10).map(view),
      syncs: this.config.sync.map((s) => ({ local: s.local, remote: s.remote })),
    };
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.syncs.map((s) => s.stop()));
    await this.engine.stop();
    this.journal.close();
  }
}
