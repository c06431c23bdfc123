/**
 * Remote deletions of one watched folder (`deleteRemote: true`), held back when they look like an
 * accident rather than a decision: the folder itself gone (an unmounted disk, a renamed or deleted
 * folder), or a burst of deletions larger than `maxDelete`.
 *
 * Invariants:
 *  - Local deletions are gathered into bursts: a burst ends after `quietMs` without another deletion.
 *    A file that reappears meanwhile (an editor's delete-and-rename save) leaves the burst.
 *  - A burst is carried out only while the folder exists and when it is no larger than
 *    deleteThreshold(); otherwise the sync pauses: this burst and every later deletion are held, and
 *    nothing is deleted remotely until `confirm()` (`assetfs retry`). Uploads go on meanwhile.
 *  - `confirm()` deletes only what is still missing locally, and does nothing while the folder is
 *    still gone (a retry meant for failed uploads must not wipe the remote copies of an unmounted disk).
 *  - Held deletions live in memory only: a restart drops them and the remote copies stay. A restart is
 *    never taken as consent (the disk may still be unmounted after a reboot).
 */
import type { Logger } from '../util/logger.js';

export interface MaxDelete {
  /** Most deletions in one burst. */
  files: number;
  /** Most deletions in one burst as a share of the folder's files before it. */
  percent: number;
}

/**
 * The largest burst carried out without confirmation: `files`, or `percent` % of the files the folder
 * had before the burst, whichever is smaller, and never less than one (deleting one file is never
 * a mass delete). Defaults: 12 files → 1, 200 → 20, 10,000 → 50.
 */
export function deleteThreshold(max: MaxDelete, filesBefore: number): number {
  return Math.max(1, Math.min(max.files, Math.floor((filesBefore * max.percent) / 100)));
}

export interface DeletePause {
  reason: 'gone' | 'mass';
  /** Deletions held (not done remotely). */
  held: number;
  /** One line for `assetfs status`. */
  message: string;
}

export interface DeleteGuardDeps {
  max: MaxDelete;
  quietMs: number;
  /** Whether the watched folder is still there (a directory). */
  folderExists(): Promise<boolean>;
  /** Files the watcher knows in the folder now (the burst's files excluded). */
  filesKnown(): number;
  /** Deletes the remote copy of a local file that is gone; false when the file is back (nothing done). */
  removeRemote(localPath: string): Promise<boolean>;
  log: Logger;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export class DeleteGuard {
  private readonly burst = new Set<string>();
  private readonly held = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private pause: { reason: 'gone' | 'mass'; detail: string } | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly deps: DeleteGuardDeps) {}

  /** A local file with a remote copy was deleted. */
  deleted(path: string): void {
    if (this.pause) {
      this.held.add(path);
      return;
    }
    this.burst.add(path);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => (this.running = this.running.then(() => this.endBurst())), this.deps.quietMs);
  }

  /** The file is there again: nothing to delete for it. */
  reappeared(path: string): void {
    this.burst.delete(path);
    this.held.delete(path);
  }

  get paused(): DeletePause | undefined {
    if (!this.pause) return undefined;
    const n = this.held.size;
    const tail = `${plural(n, 'remote deletion')} held, nothing deleted remotely; \`assetfs retry\` deletes what is still missing locally, a restart drops them (the remote copies stay)`;
    const message = this.pause.reason === 'gone' ? `paused: the watched folder is gone (an unmounted disk? a renamed folder?): ${tail}; restore the folder first` : `paused: ${this.pause.detail}: ${tail}`;
    return { reason: this.pause.reason, held: n, message };
  }

  /** Resolves once every burst that ended so far has been handled. */
  settled(): Promise<void> {
    return this.running;
  }

  /**
   * `assetfs retry`: carries out the held deletions of files still missing and resumes. Returns how
   * many remote copies were deleted; 0 and still paused while the folder is gone.
   */
  async confirm(): Promise<number> {
    await this.running;
    if (!this.pause) return 0;
    if (!(await this.deps.folderExists())) return 0;
    const held = [...this.held];
    this.held.clear();
    this.pause = undefined;
    this.deps.log.info({ held: held.length }, 'held remote deletions confirmed (assetfs retry)');
    let deleted = 0;
    for (const p of held) if (await this.deps.removeRemote(p)) deleted++;
    return deleted;
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private async endBurst(): Promise<void> {
    const burst = [...this.burst];
    this.burst.clear();
    if (burst.length === 0) return;
    if (this.pause) return this.hold(burst);
    if (!(await this.deps.folderExists())) return this.pauseFor('gone', burst, '');
    const before = this.deps.filesKnown() + burst.length;
    const limit = deleteThreshold(this.deps.max, before);
    if (burst.length > limit) {
      const detail = `${plural(burst.length, 'file')} deleted at once, more than maxDelete allows (${limit} of ${before}: ${this.deps.max.files} files or ${this.deps.max.percent} %)`;
      return this.pauseFor('mass', burst, detail);
    }
    for (const p of burst) await this.deps.removeRemote(p);
  }

  private hold(paths: string[]): void {
    for (const p of paths) this.held.add(p);
  }

  private pauseFor(reason: 'gone' | 'mass', burst: string[], detail: string): void {
    this.pause = { reason, detail };
    this.hold(burst);
    this.deps.log.warn({ held: burst.length, reason }, this.paused!.message);
  }
}
