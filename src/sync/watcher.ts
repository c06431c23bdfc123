/**
 * One watched folder (a `sync:` entry): local files go up to `<source>/<remote path>/<relative path>`
 * through the upload engine.
 *
 * Invariants:
 *  - A file is queued only once it is stable: size and mtime unchanged for `stableFor`.
 *  - The initial scan compares every file with the journal (size and mtime, then the SHA-256 when only
 *    the mtime moved), so what changed while the daemon was down goes up, and nothing else does.
 *  - Nothing is deleted remotely unless the entry says `deleteRemote: true`, and then only a remote
 *    object that is still the version we uploaded, of a file still missing locally, and only when the
 *    deletion passes the guard (delete-guard.ts: the folder still there, no burst beyond maxDelete).
 *  - Ignored names (ignore.ts) are never queued.
 *  - Nothing outside the folder is read: symlinks are never followed (skipped with a warning), and a
 *    file is queued only when its real path is its path, so no folder on the way is a symlink either.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, realpath, stat } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../util/logger.js';
import type { Journal } from '../upload/journal.js';
import type { UploadEngine } from '../upload/engine.js';
import type { Uploader } from '../upload/types.js';
import { openForUpload } from '../upload/local-file.js';
import { ignoreMatcher } from './ignore.js';
import { DeleteGuard, type DeletePause, type MaxDelete } from './delete-guard.js';

export interface SyncEntryOptions {
  local: string;
  /** `<source>/<path…>` in the mount. */
  remote: string;
  deleteRemote: boolean;
  maxDelete: MaxDelete;
  ignore: readonly string[];
  stableFor: number;
}

export interface FolderSyncStatus {
  local: string;
  remote: string;
  deleteRemote: boolean;
  /** Remote deletions held until `assetfs retry` (delete-guard.ts); null while deletions flow. */
  paused: DeletePause | null;
}

/** The file's sha256, read without following a symlink (a file swapped for one since its check). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  const { fh } = await openForUpload(path, { exactPath: false });
  try {
    for await (const c of fh.createReadStream({ autoClose: false })) h.update(c as Buffer);
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

export class FolderSync {
  private watcher: FSWatcher | undefined;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly ignored: (rel: string) => boolean;
  readonly source: string;
  private readonly base: string[];
  /** The folder's real path (symlinks in the configured path resolved once, at start). */
  private root: string;
  private ready = false;
  /** Files seen in the folder now: the base of maxDelete's percentage. */
  private readonly files = new Set<string>();
  private readonly skipped = new Set<string>();
  private readonly guard: DeleteGuard;

  constructor(
    private readonly entry: SyncEntryOptions,
    private readonly deps: { engine: UploadEngine; journal: Journal; uploaderFor(source: string): Uploader | undefined; log: Logger },
  ) {
    const parts = entry.remote.split('/').filter(Boolean);
    this.source = parts[0]!;
    this.base = parts.slice(1);
    this.root = resolve(entry.local);
    this.ignored = ignoreMatcher(entry.ignore);
    this.guard = new DeleteGuard({
      max: entry.maxDelete,
      quietMs: entry.stableFor,
      folderExists: () => stat(this.root).then((s) => s.isDirectory(), () => false),
      filesKnown: () => this.files.size,
      removeRemote: (path) => this.removeRemote(path),
      log: deps.log.child({ local: this.root }),
    });
  }

  /** Starts watching; resolves after the initial scan has been compared with the journal. */
  async start(): Promise<void> {
    this.root = await realpath(resolve(this.entry.local)).catch(() => resolve(this.entry.local));
    const w = watch(this.root, {
      ignoreInitial: false,
      persistent: true,
      followSymlinks: false,
      ignored: (path: string, stats?: Stats) => {
        const rel = this.rel(path);
        if (rel === '') return false;
        if (stats?.isSymbolicLink()) {
          this.skipSymlink(path);
          return true;
        }
        return this.ignored(rel);
      },
    });
    this.watcher = w;
    w.on('add', (p) => {
      this.files.add(String(p));
      this.guard.reappeared(String(p));
      this.touched(String(p), !this.ready);
    });
    w.on('change', (p) => this.touched(String(p), false));
    w.on('unlink', (p) => {
      this.files.delete(String(p));
      void this.removed(String(p));
    });
    w.on('error', (err: unknown) => this.deps.log.warn({ err, local: this.root }, 'watcher error'));
    await new Promise<void>((r) => w.once('ready', () => r()));
    this.ready = true;
    this.deps.log.info({ local: this.root, remote: this.entry.remote }, 'watching folder');
  }

  async stop(): Promise<void> {
    this.guard.stop();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.watcher?.close();
  }

  status(): FolderSyncStatus {
    return { local: this.entry.local, remote: this.entry.remote, deleteRemote: this.entry.deleteRemote, paused: this.guard.paused ?? null };
  }

  /**
   * `assetfs retry`: held remote deletions of files still missing are carried out (delete-guard.ts),
   * and the folder is watched afresh: what made the burst (a folder gone and back, a disk unmounted
   * and mounted again) also ended the old watches, and the new scan finds what came back.
   */
  async confirmDeletes(): Promise<number> {
    const wasPaused = this.guard.paused !== undefined;
    const deleted = await this.guard.confirm();
    if (wasPaused && !this.guard.paused) {
      await this.watcher?.close();
      this.ready = false;
      this.files.clear();
      await this.start();
    }
    return deleted;
  }

  private skipSymlink(path: string, real?: string): void {
    if (this.skipped.has(path)) return;
    this.skipped.add(path);
    this.deps.log.warn({ path, ...(real ? { real } : {}), local: this.root }, 'symlink in a watched folder not followed: skipped (nothing outside the folder is uploaded)');
  }

  /** The file's stats when it is a regular file inside the folder, reached without any symlink. */
  private async regularFileInside(path: string): Promise<Stats | undefined> {
    const st = await lstat(path).catch(() => undefined);
    if (!st) return undefined;
    if (st.isSymbolicLink()) {
      this.skipSymlink(path);
      return undefined;
    }
    if (!st.isFile()) return undefined;
    // A folder on the way that became a symlink after it was listed: the real path leads elsewhere.
    const real = await realpath(path).catch(() => undefined);
    if (real !== path) {
      if (real) this.skipSymlink(path, real);
      return undefined;
    }
    return st;
  }

  private rel(path: string): string {
    return relative(this.root, path).split(sep).join('/');
  }

  remotePathOf(localPath: string): string {
    return [...this.base, ...this.rel(localPath).split('/')].join('/');
  }

  /** (Re)starts the stability window of a file. */
  private touched(path: string, initial: boolean): void {
    clearTimeout(this.timers.get(path));
    void lstat(path).then(
      (first) => {
        this.timers.set(path, setTimeout(() => void this.settle(path, first.size, first.mtimeMs, initial), this.entry.stableFor));
      },
      () => undefined,
    );
  }

  private async settle(path: string, size: number, mtimeMs: number, initial: boolean): Promise<void> {
    this.timers.delete(path);
    const now = await this.regularFileInside(path);
    if (!now) return;
    if (now.size !== size || now.mtimeMs !== mtimeMs) return this.touched(path, initial);
    try {
      if (!(await this.needsUpload(path, now.size, now.mtimeMs))) return;
      const synced = this.deps.journal.synced(path);
      this.deps.engine.enqueue({
        localPath: path, source: this.source, remotePath: this.remotePathOf(path), producer: 'sync',
        size: now.size, mtimeMs: now.mtimeMs, baseVersion: synced?.remoteVersion ?? null,
      });
    } catch (err) {
      this.deps.log.warn({ err, path }, 'could not queue a changed file');
    }
  }

  /** Compared with what the journal knows: a pending job for this state, or a finished upload of it. */
  private async needsUpload(path: string, size: number, mtimeMs: number): Promise<boolean> {
    const pending = this.deps.journal.pendingFor(this.source, this.remotePathOf(path));
    if (pending && pending.localPath === path && pending.size === size && Math.trunc(pending.mtimeMs) === Math.trunc(mtimeMs)) return false;
    const synced = this.deps.journal.synced(path);
    if (!synced || synced.size !== size) return true;
    if (Math.trunc(synced.mtimeMs) === Math.trunc(mtimeMs)) return false;
    return (await sha256File(path)) !== synced.sha256; // touched but not changed: nothing to send
  }

  private async removed(path: string): Promise<void> {
    clearTimeout(this.timers.get(path));
    this.timers.delete(path);
    const pending = this.deps.journal.pendingFor(this.source, this.remotePathOf(path));
    if (pending && pending.localPath === path) this.deps.engine.cancel(pending.id, 'the local file was deleted');
    if (!this.deps.journal.synced(path)) return;
    if (!this.entry.deleteRemote) {
      this.deps.journal.forgetSynced(path);
      return;
    }
    this.guard.deleted(path);
  }

  /** Deletes the remote copy of a deleted local file; false when nothing was deleted. */
  private async removeRemote(path: string): Promise<boolean> {
    if (await lstat(path).then(() => true, () => false)) return false; // it is back
    const synced = this.deps.journal.synced(path);
    if (!synced) return false;
    const up = this.deps.uploaderFor(this.source);
    const target = { source: this.source, path: synced.remotePath.split('/') };
    try {
      const current = await up?.remoteVersion(target);
      let deleted = false;
      if (!up?.remove || current !== synced.remoteVersion) {
        this.deps.log.warn({ path, remote: synced.remotePath }, 'not deleting the remote file: it changed since our upload, or the platform cannot delete');
      } else {
        await up.remove(target);
        deleted = true;
        this.deps.log.info({ remote: synced.remotePath }, 'deleted remotely (deleteRemote: true)');
      }
      this.deps.journal.forgetSynced(path);
      return deleted;
    } catch (err) {
      this.deps.log.warn({ err, path }, 'remote delete failed');
      return false;
    }
  }
}
