/**
 * The staging area: files written into the mount, kept in `<cacheDir>/staging` (0700, opaque names)
 * until the upload engine has them up. It owns those files: nothing else creates or deletes them.
 *
 * A staged file's life (records.ts names the journaled states):
 *
 *   clean ──write──▶ open ──last close / fsync──▶ sealed ──write-back delay / fsync──▶ queued ──done──▶ gone
 *     ▲ copy-on-open   ▲                                                                  │
 *     └─ (no record) ──┴──────────────────────── written again (the upload is cancelled) ─┘
 *
 * Invariants:
 *  - A file is journaled `open` before the first write into it is acknowledged, and `sealed` only
 *    when every write so far is in the staged copy and on disk (close, fsync): a crash leaves each file
 *    either complete and uploaded after the restart, or `attention` (kept, listed by status, never
 *    uploaded as if complete; a later write of the same path supersedes it).
 *  - A staged file shadows the remote entry of the same path: listings show its local size, reads come
 *    from the staged copy, until its upload is done and it has no open handles. `attention` files and
 *    files whose write failed do not: nothing partial ever looks complete in the mount.
 *  - Staged bytes stay under `maxBytes` (uploads.stagingMax; 0 = only the disk): growth past it is ENOSPC.
 *  - A rename moves the record: a crash right after `mv .x.XXXXXX x` uploads under `x`.
 *  - Every file under the folder has an entry here after recover(): nothing is orphaned.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { FsError } from '../../core/errors.js';
import type { UploadOutcome, UploadPort } from '../../core/types.js';
import type { Logger } from '../../util/logger.js';
import type { RecordState, StagedRecord, StagedRecords } from './records.js';
import type { AttentionEntry, StagedFile, StagedState } from './staged-file.js';
import { scanStaging } from './recover.js';
import { joinRemote, splitRemote } from '../../upload/conflict.js';

export interface StagingOptions {
  dir: string;
  records: StagedRecords;
  port: UploadPort;
  writeBackMs: number;
  /** Cap on staged bytes; 0 = none (the disk's own ENOSPC). */
  maxBytes: number;
  log: Logger;
}

const newId = () => `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;

export class Staging {
  private readonly files = new Map<string, StagedFile>();
  private readonly kept = new Map<string, AttentionEntry & { id: string; baseVersion: string | null }>();
  /** Folders made with mkdir that have no remote existence yet (object stores have no empty folders). */
  private readonly dirs = new Set<string>();
  /**
   * Paths whose file left the mount because a write failed. The kernel still holds their entry (it
   * sends the next `> path` as an open, not a create): an open for writing there starts a new file.
   */
  private readonly failedPaths = new Set<string>();
  private bytes = 0;

  constructor(private readonly opts: StagingOptions) {}

  /**
   * Before the mount serves: every record and every file in the folder accounted for. Complete files
   * are queued (or their finished upload cleared), incomplete ones kept for attention, stray files
   * (copies never written to, halves of a crash) deleted.
   */
  async recover(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    for (const { record: r, size } of await scanStaging(this.opts.dir, this.opts.records, this.opts.log)) {
      if (r.state === 'attention') {
        this.keep(r, r.reason ?? 'kept', size);
        continue;
      }
      const f = this.entry(r.id, r.path, r.source, splitRemote(r.remotePath), r.baseVersion, size);
      this.files.set(f.path, f);
      // Its folders may exist only in the mount until it is uploaded (object stores have no empty folders).
      const segs = f.path.split('/').filter(Boolean);
      for (let i = 2; i < segs.length; i++) this.dirs.add(`/${segs.slice(0, i).join('/')}`);
      if (r.state === 'queued' && r.jobId !== null) {
        f.state = 'queued';
        f.jobId = r.jobId;
        this.watch(f, r.jobId);
      } else {
        f.state = 'sealed';
        await this.queue(f); // closed before the crash: complete, and its write-back delay is long past
      }
    }
  }

  private entry(id: string, path: string, source: string, remote: string[], base: string | null, size: number): StagedFile {
    this.bytes += size;
    return { id, path, source, remote, base, size, mtimeMs: Date.now(), state: 'clean', jobId: undefined, writers: 0, buffers: new Set(), failed: undefined, timer: undefined, gone: false, named: false };
  }

  private keep(r: StagedRecord, reason: string, size: number): void {
    this.bytes += size;
    this.kept.set(r.path, { id: r.id, path: r.path, staged: join(this.opts.dir, r.id), source: r.source, remotePath: r.remotePath, baseVersion: r.baseVersion, reason, since: new Date(r.updatedAt).toISOString(), size });
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

  /** A new empty file at `path`, journaled `open` (it replaces whatever was staged or kept there). */
  async create(path: string, source: string, remote: string[], base: string | null): Promise<StagedFile> {
    await this.supersede(path);
    this.failedPaths.delete(path);
    const f = this.entry(newId(), path, source, remote, base, 0);
    await this.record(f, 'open');
    const fh = await open(join(this.opts.dir, f.id), 'w', 0o600);
    await fh.close();
    f.state = 'open';
    this.files.set(path, f);
    return f;
  }

  /**
   * A copy of a remote file for a writer opening it without O_TRUNC: `fill` writes the remote bytes.
   * If it fails, nothing stays: no file, no record, the remote entry still shows.
   */
  async copy(path: string, source: string, remote: string[], base: string, size: number, fill: (fh: FileHandle) => Promise<void>): Promise<StagedFile> {
    await this.supersede(path);
    this.reserve(size);
    const id = newId();
    const file = join(this.opts.dir, id);
    try {
      const fh = await open(file, 'w', 0o600);
      try {
        await fill(fh);
      } finally {
        await fh.close();
      }
    } catch (e) {
      await rm(file, { force: true });
      throw e;
    }
    const f = this.entry(id, path, source, remote, base, size);
    this.files.set(path, f);
    return f;
  }

  /** Fails with ENOSPC when `more` bytes would take staging past uploads.stagingMax. */
  reserve(more: number): void {
    if (this.opts.maxBytes > 0 && more > 0 && this.bytes + more > this.opts.maxBytes) {
      throw new FsError('ENOSPC', `the staging area is full (uploads.stagingMax ${this.opts.maxBytes} bytes; ${this.bytes} staged)`);
    }
  }

  /** `f` now has `size` bytes (checked against the cap by the caller with reserve()). */
  resized(f: StagedFile, size: number): void {
    if (!f.gone) this.bytes += size - f.size; // a removed file's bytes left the count with it
    f.size = size;
    f.mtimeMs = Date.now();
  }

  async openFile(f: StagedFile, write: boolean): Promise<FileHandle> {
    const fh = await open(join(this.opts.dir, f.id), write ? 'r+' : 'r');
    if (write) f.writers++;
    return fh;
  }

  /**
   * Before a write or truncate is acknowledged: the file is journaled `open`, and an upload of an
   * earlier state is called off (a new one starts when the writer closes).
   */
  async modifying(f: StagedFile): Promise<void> {
    if (f.failed) throw f.failed;
    if (f.state === 'open') return;
    clearTimeout(f.timer);
    f.timer = undefined;
    if (f.jobId !== undefined) this.opts.port.cancel(f.jobId, 'written again before its upload finished');
    f.jobId = undefined;
    f.state = 'open';
    if (this.holds(f)) await this.record(f, 'open');
  }

  /** Every write so far is in the staged copy and on disk (close, fsync): the file is complete. */
  async sealed(f: StagedFile): Promise<void> {
    if (f.state !== 'open' || f.failed || !this.holds(f)) return;
    f.state = 'sealed';
    if (!f.named) {
      // The copy's data is on disk (the caller synced it); its name in the folder too, once.
      const dh = await open(this.opts.dir, 'r');
      await dh.sync().finally(() => dh.close());
      f.named = true;
    }
    await this.record(f, 'sealed', true);
  }

  /** A writable handle closed: once none is left, a complete file is queued after the write-back delay. */
  released(f: StagedFile): void {
    f.writers = Math.max(0, f.writers - 1);
    if (f.writers > 0) return;
    if (f.failed || !this.holds(f)) return void this.forget(f);
    if (f.state === 'clean') return void this.drop(f, 'opened for writing, never written'); // the remote is what it holds
    if (f.state === 'sealed') this.schedule(f);
  }

  /** Queue after the write-back delay (a rename or a new open meanwhile starts it again). */
  private schedule(f: StagedFile): void {
    clearTimeout(f.timer);
    f.timer = setTimeout(() => void this.queue(f).catch((e: unknown) => this.opts.log.error({ err: e, path: f.path }, 'could not queue an upload; it is kept staged')), this.opts.writeBackMs);
    f.timer.unref();
  }

  /** Queue a sealed file now (write-back delay passed, fsync, restart). The job id; undefined when there is nothing to upload. */
  async queue(f: StagedFile): Promise<number | undefined> {
    clearTimeout(f.timer);
    f.timer = undefined;
    if (f.state === 'queued') return f.jobId;
    if (f.state !== 'sealed' || !this.holds(f)) return undefined;
    const file = join(this.opts.dir, f.id);
    const st = await stat(file); // the engine checks the copy is unchanged by its size and mtime
    const now = f.state as StagedState; // it may have moved while the stat was awaited
    if (now !== 'sealed' || !this.holds(f)) return now === 'queued' ? f.jobId : undefined;
    const id = this.opts.port.enqueue({ localPath: file, source: f.source, remotePath: joinRemote(f.remote), size: st.size, mtimeMs: st.mtimeMs, baseVersion: f.base });
    f.state = 'queued';
    f.jobId = id;
    await this.record(f, 'queued');
    this.watch(f, id);
    return id;
  }

  /** fsync: queue now and wait (at most `timeoutMs`) for the upload; its failure is the fsync's error. */
  async uploadNow(f: StagedFile, timeoutMs: number): Promise<void> {
    const id = await this.queue(f);
    if (id !== undefined) await this.opts.port.wait(id, timeoutMs);
  }

  private watch(f: StagedFile, jobId: number): void {
    this.opts.port.done(jobId).then(
      (outcome) => this.uploaded(f, jobId, outcome),
      (e: unknown) => {
        // Calls-off of our own forget the job id first. Any other end (a newer job to the same target
        // replaced it, or the engine no longer knows it after a restart): the file is complete, queue it again.
        if (f.jobId !== jobId || !this.holds(f)) return;
        this.opts.log.info({ path: f.path, err: (e as Error).message }, 'upload of a staged file queued again');
        f.state = 'sealed';
        void this.queue(f).catch((err: unknown) => this.opts.log.error({ err, path: f.path }, 'could not queue an upload; it is kept staged'));
      },
    );
  }

  /** The engine finished job `jobId`: the staged copy goes once no handle has it open. */
  private uploaded(f: StagedFile, jobId: number, outcome: UploadOutcome): void {
    if (f.jobId !== jobId || f.state !== 'queued') return;
    f.jobId = undefined;
    if (outcome.conflictOf) this.opts.log.warn({ path: f.path, conflictCopy: `${f.source}/${outcome.remotePath}` }, 'written file went up as a conflict copy');
    else if (outcome.version) f.base = outcome.version;
    f.state = 'clean'; // what the remote now holds: no record, dropped at its last close
    if (f.writers === 0) return this.forget(f);
    void this.opts.records.removeRecord(f.id).catch((e: unknown) => this.opts.log.error({ err: e, path: f.path }, 'could not clear the record of an uploaded file'));
  }

  /** rename of a staged file (rsync's `.x.XXXXXX` → `x`): the record moves before the rename is acknowledged. */
  async rename(f: StagedFile, to: string, remote: string[], base: string | null): Promise<void> {
    const existing = this.files.get(to);
    if (existing && existing !== f) this.drop(existing, 'replaced by a rename');
    await this.supersede(to);
    if (f.jobId !== undefined) this.opts.port.cancel(f.jobId, 'renamed before its upload finished');
    f.jobId = undefined;
    if (f.state === 'queued' || f.state === 'clean') f.state = 'sealed'; // a clean copy under a new name is new there
    this.files.delete(f.path);
    f.path = to;
    f.remote = remote;
    f.base = base;
    this.files.set(to, f);
    await this.record(f, f.state === 'open' ? 'open' : 'sealed', true);
    if (f.writers === 0 && f.state === 'sealed') this.schedule(f);
  }

  /** unlink of a staged file: its upload is cancelled and the staged copy deleted. */
  remove(f: StagedFile): void {
    this.drop(f, 'deleted before its upload finished');
  }

  /** A write or flush failed: the file leaves the mount now and is deleted at its last close. */
  failed(f: StagedFile, e: FsError): void {
    f.failed ??= e;
    if (!this.holds(f)) return;
    this.failedPaths.add(f.path);
    this.drop(f, `a write failed (${e.code})`);
  }

  /** Whether the file at `path` left the mount after a failed write (and nothing was written there since). */
  failedAt(path: string): boolean {
    return this.failedPaths.has(path);
  }

  /** Files kept for the operator. */
  attention(): AttentionEntry[] {
    return [...this.kept.values()].map(({ id: _id, baseVersion: _b, ...e }) => e);
  }

  /** `assetfs retry <path>`: the operator vouches for a kept file; it is uploaded as it is. */
  async retry(path: string): Promise<boolean> {
    const k = this.unkeep(path);
    if (!k) return false;
    const f = this.entry(k.id, path, k.source, splitRemote(k.remotePath), k.baseVersion, k.size);
    f.state = 'sealed';
    this.files.set(path, f);
    await this.queue(f);
    return true;
  }

  /** `assetfs discard <path>`: a kept file is deleted. */
  discard(path: string): Promise<boolean> {
    return this.deleteKept(path, 'kept file discarded');
  }

  status(): { files: number; bytes: number; attention: AttentionEntry[] } {
    return { files: this.files.size, bytes: this.bytes, attention: this.attention() };
  }

  stop(): void {
    for (const f of this.files.values()) clearTimeout(f.timer);
  }

  /** A new write of `path` replaces the file kept there for attention. */
  private async supersede(path: string): Promise<void> {
    await this.deleteKept(path, 'kept file superseded by a new write of the same path');
  }

  private unkeep(path: string) {
    const k = this.kept.get(path);
    if (!k) return undefined;
    this.kept.delete(path);
    this.bytes -= k.size;
    return k;
  }

  private async deleteKept(path: string, why: string): Promise<boolean> {
    const k = this.unkeep(path);
    if (!k) return false;
    this.opts.log.info({ path, staged: k.staged }, why);
    await this.opts.records.removeRecord(k.id);
    await rm(k.staged, { force: true });
    return true;
  }

  private async record(f: StagedFile, state: RecordState, durable = false): Promise<void> {
    await this.opts.records.put({ id: f.id, path: f.path, source: f.source, remotePath: joinRemote(f.remote), baseVersion: f.base, state, jobId: f.jobId ?? null, reason: null }, durable);
  }

  /** Whether `f` is still in the staging area (not removed, replaced, or failed while a writer had it open). */
  private holds(f: StagedFile): boolean {
    return this.files.get(f.path) === f;
  }

  /** Out of the mount: upload cancelled; the copy and its records deleted once no handle is open. */
  private drop(f: StagedFile, reason: string): void {
    clearTimeout(f.timer);
    if (f.jobId !== undefined) this.opts.port.cancel(f.jobId, reason);
    f.jobId = undefined;
    this.forget(f); // open handles keep the inode: the name can go now (reads through them still work)
  }

  private forget(f: StagedFile): void {
    if (this.holds(f)) this.files.delete(f.path);
    if (f.gone) return;
    f.gone = true;
    this.bytes -= f.size;
    // The copy goes even when its record cannot (a full journal): the next start's recover() drops a
    // record whose copy is gone.
    void this.opts.records
      .removeRecord(f.id)
      .catch((e: unknown) => this.opts.log.error({ err: e, path: f.path }, 'could not clear the record of a staged file'))
      .finally(() => rm(join(this.opts.dir, f.id), { force: true }));
  }
}
