/**
 * Files written into the mount, staged in `<cacheDir>/staging` until the upload engine has them up.
 *
 * Invariants:
 *  - A staged file shadows the remote entry of the same path: listings show it with its local size,
 *    reads are served from the staged copy, until its upload is done and it has no open handles.
 *  - A file is queued only after its last writer closed and `writeBackMs` passed without a new open or
 *    a rename (rsync writes `.name.XXXXXX`, closes, then renames: the upload goes under the final name,
 *    once). fsync queues at once and waits for the upload's outcome.
 *  - Staged files live under the cache dir (0700) with opaque names; a crash leaves them referenced by
 *    the journal, which resumes their uploads.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../util/logger.js';
import { joinRemote, type UploadEngine } from '../upload/engine.js';

export interface StagedFile {
  /** Mount path: '/<source>/<local names…>'. */
  path: string;
  readonly source: string;
  /** Remote path segments below the source (remote names). */
  remote: string[];
  readonly file: string;
  size: number;
  mtimeMs: number;
  writers: number;
  /** Changed since it was last queued. */
  dirty: boolean;
  jobId: number | undefined;
  timer: NodeJS.Timeout | undefined;
}

export class Staging {
  private readonly files = new Map<string, StagedFile>();
  /** Folders made with mkdir that have no remote existence yet (object stores have no empty folders). */
  private readonly dirs = new Set<string>();

  constructor(
    private readonly o: { dir: string; engine: UploadEngine; writeBackMs: number; log: Logger; onUploaded(f: StagedFile): void },
  ) {}

  async init(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
  }

  get(path: string): StagedFile | undefined {
    return this.files.get(path);
  }

  isDir(path: string): boolean {
    return this.dirs.has(path);
  }

  addDir(path: string): void {
    this.dirs.add(path);
  }

  removeDir(path: string): boolean {
    return this.dirs.delete(path);
  }

  /** Staged files and made folders directly inside `dir` (a mount path). */
  children(dir: string): { files: StagedFile[]; dirs: string[] } {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    const direct = (p: string) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/');
    return {
      files: [...this.files.values()].filter((f) => direct(f.path)),
      dirs: [...this.dirs].filter(direct).map((p) => p.slice(prefix.length)),
    };
  }

  /** A new empty staged file at `path` (replacing any staged one). */
  async create(path: string, source: string, remote: string[]): Promise<StagedFile> {
    const old = this.files.get(path);
    if (old) this.drop(old, 'replaced by a new file of the same name');
    const file = join(this.o.dir, `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`);
    const fh = await open(file, 'w', 0o600);
    await fh.close();
    const f: StagedFile = { path, source, remote, file, size: 0, mtimeMs: Date.now(), writers: 0, dirty: true, jobId: undefined, timer: undefined };
    this.files.set(path, f);
    return f;
  }

  /** Opens the staged copy for a writer (or a reader, when `write` is false). */
  async openFile(f: StagedFile, write: boolean): Promise<FileHandle> {
    const fh = await open(f.file, write ? 'r+' : 'r');
    if (write) {
      f.writers++;
      clearTimeout(f.timer);
      f.timer = undefined;
    }
    return fh;
  }

  async wrote(f: StagedFile, fh: FileHandle): Promise<void> {
    const st = await fh.stat();
    f.size = st.size;
    f.mtimeMs = st.mtimeMs;
    f.dirty = true;
  }

  /** A writer closed: once none is left, the file is queued after the write-back delay. */
  closedWriter(f: StagedFile): void {
    f.writers = Math.max(0, f.writers - 1);
    if (f.writers === 0 && f.dirty && this.holds(f)) this.schedule(f);
  }

  private schedule(f: StagedFile): void {
    clearTimeout(f.timer);
    f.timer = setTimeout(() => void this.queue(f).catch((e: unknown) => this.o.log.warn({ err: e, path: f.path }, 'could not queue an upload')), this.o.writeBackMs);
    f.timer.unref();
  }

  /** Queue the file now (fsync, or the write-back delay passed). */
  async queue(f: StagedFile): Promise<number> {
    clearTimeout(f.timer);
    f.timer = undefined;
    if (!f.dirty && f.jobId !== undefined) return f.jobId;
    const st = await stat(f.file);
    f.size = st.size;
    f.mtimeMs = st.mtimeMs;
    f.dirty = false;
    const job = this.o.engine.enqueue({ localPath: f.file, source: f.source, remotePath: joinRemote(f.remote), producer: 'mount', size: st.size, mtimeMs: st.mtimeMs, baseVersion: null });
    f.jobId = job.id;
    return job.id;
  }

  /** fsync: queue at once and wait for the upload; its failure is the fsync's error. */
  async flush(f: StagedFile): Promise<void> {
    if (!this.holds(f)) return; // fsync of a file removed while open: nothing to upload
    const id = await this.queue(f);
    await this.o.engine.waitFor(id);
  }

  rename(f: StagedFile, to: string, remote: string[]): void {
    const existing = this.files.get(to);
    if (existing && existing !== f) this.drop(existing, 'replaced by a rename');
    this.files.delete(f.path);
    if (f.jobId !== undefined) {
      this.o.engine.cancel(f.jobId, 'renamed before its upload finished');
      f.jobId = undefined;
    }
    f.path = to;
    f.remote = remote;
    f.dirty = true;
    this.files.set(to, f);
    if (f.writers === 0) this.schedule(f);
  }

  /** unlink of a file not uploaded yet: its upload is cancelled and the staged copy deleted. */
  remove(f: StagedFile): void {
    this.drop(f, 'deleted before its upload finished');
  }

  /** True when `file` is the staged copy of a file still in the staging area. */
  owns(file: string): boolean {
    return [...this.files.values()].some((f) => f.file === file);
  }

  /** The engine finished job `id`: the staged copy is no longer needed unless it changed again. */
  uploaded(jobId: number): void {
    for (const f of this.files.values()) {
      if (f.jobId !== jobId) continue;
      if (f.writers > 0 || f.dirty) return;
      this.files.delete(f.path);
      void rm(f.file, { force: true });
      this.o.onUploaded(f);
    }
  }

  /**
   * Whether `f` is still in the staging area. A file removed (rm, or replaced) while a writer had it
   * open is not: that writer's data goes nowhere, and its close queues nothing.
   */
  private holds(f: StagedFile): boolean {
    return this.files.get(f.path) === f;
  }

  private drop(f: StagedFile, reason: string): void {
    clearTimeout(f.timer);
    if (f.jobId !== undefined) this.o.engine.cancel(f.jobId, reason);
    this.files.delete(f.path);
    void rm(f.file, { force: true });
  }


  stop(): void {
    for (const f of this.files.values()) clearTimeout(f.timer);
  }
}
