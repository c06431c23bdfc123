/**
 * One watched folder (a `sync:` entry): local files go up to `<source>/<remote path>/<relative path>`
 * through the upload engine.
 *
 * Invariants:
 *  - A file is queued only once it is stable: size and mtime unchanged for `stableFor`.
 *  - The initial scan compares every file with the journal (size and mtime, then the SHA-256 when only
 *    the mtime moved), so what changed while the daemon was down goes up, and nothing else does.
 *  - Nothing is deleted remotely unless the entry says `deleteRemote: true`, and then only a remote
 *    object that is still the version we uploaded.
 *  - Ignored names (ignore.ts) are never queued.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from '../util/logger.js';
import type { Journal } from '../upload/journal.js';
import type { UploadEngine } from '../upload/engine.js';
import type { Uploader } from '../upload/types.js';
import { ignoreMatcher } from './ignore.js';

export interface SyncEntryOptions {
  local: string;
  /** `<source>/<path…>` in the mount. */
  remote: string;
  deleteRemote: boolean;
  ignore: readonly string[];
  stableFor: number;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

export class FolderSync {
  private watcher: FSWatcher | undefined;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly ignored: (rel: string) => boolean;
  readonly source: string;
  private readonly base: string[];
  private readonly root: string;
  private ready = false;

  constructor(
    private readonly e: SyncEntryOptions,
    private readonly deps: { engine: UploadEngine; journal: Journal; uploaderFor(source: string): Uploader | undefined; log: Logger },
  ) {
    const parts = e.remote.split('/').filter(Boolean);
    this.source = parts[0]!;
    this.base = parts.slice(1);
    this.root = resolve(e.local);
    this.ignored = ignoreMatcher(e.ignore);
  }

  /** Starts watching; resolves after the initial scan has been compared with the journal. */
  async start(): Promise<void> {
    const w = watch(this.root, {
      ignoreInitial: false,
      persistent: true,
      ignored: (path: string) => {
        const rel = this.rel(path);
        return rel !== '' && this.ignored(rel);
      },
    });
    this.watcher = w;
    w.on('add', (p) => this.touched(String(p), !this.ready));
    w.on('change', (p) => this.touched(String(p), false));
    w.on('unlink', (p) => void this.removed(String(p)));
    w.on('error', (err: unknown) => this.deps.log.warn({ err, local: this.root }, 'watcher error'));
    await new Promise<void>((r) => w.once('ready', () => r()));
    this.ready = true;
    this.deps.log.info({ local: this.root, remote: this.e.remote }, 'watching folder');
  }

  async stop(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.watcher?.close();
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
    void stat(path).then(
      (first) => {
        this.timers.set(path, setTimeout(() => void this.settle(path, first.size, first.mtimeMs, initial), this.e.stableFor));
      },
      () => undefined,
    );
  }

  private async settle(path: string, size: number, mtimeMs: number, initial: boolean): Promise<void> {
    this.timers.delete(path);
    const now = await stat(path).catch(() => undefined);
    if (!now || !now.isFile()) return;
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
    const synced = this.deps.journal.synced(path);
    if (!synced) return;
    if (!this.e.deleteRemote) {
      this.deps.journal.forgetSynced(path);
      return;
    }
    const up = this.deps.uploaderFor(this.source);
    const target = { source: this.source, path: synced.remotePath.split('/') };
    try {
      const current = await up?.remoteVersion(target);
      if (!up?.remove || current !== synced.remoteVersion) {
        this.deps.log.warn({ path, remote: synced.remotePath }, 'not deleting the remote file: it changed since our upload, or the platform cannot delete');
      } else {
        await up.remove(target);
        this.deps.log.info({ remote: synced.remotePath }, 'deleted remotely (deleteRemote: true)');
      }
      this.deps.journal.forgetSynced(path);
    } catch (err) {
      this.deps.log.warn({ err, path }, 'remote delete failed');
    }
  }
}
