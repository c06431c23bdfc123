/**
 * The filesystem core. Paths in, attributes and bytes out, FsErrors thrown; nothing here knows FUSE.
 *
 *   /                      the configured sources, as directories
 *   /<source>/<names…>     that source's tree, resolved through cached listings (dir-cache.ts)
 *   /<source>/.by-id/<id>  an entry by its platform id: one API call, no listing, not listed (ids.ts)
 *
 * Invariants:
 *  - Every open handle of a remote file reads exactly one ObjectVersion (remote-file.ts).
 *  - Writes go to the staging area and the upload engine when the options carry `writes` (write/);
 *    without it, and on sources that cannot take uploads, they fail with EROFS. A staged file shadows
 *    the remote entry of the same path.
 */
import type { Attr, AttrChange, BlockSource, DirEntry, ObjectVersion, OpenFile, Provider, Ref, RemoteEntry, Vfs } from '../core/types.js';
import { FsError, NotFoundError, UnavailableError } from '../core/errors.js';
import type { Logger } from '../util/logger.js';
import { DirCache, type ListingShare } from './dir-cache.js';
import { remoteNameOf } from './names.js';
import { RemoteFile, type RemoteFileDeps } from './remote-file.js';
import { PageCacheVersions } from './page-cache-versions.js';
import { crc32 } from 'node:zlib';
import { isWriteOpen, WriteOps, type StagedHandle, type VfsAccess, type WriteOptions } from './write/write-ops.js';
import { daemonOwnership, PermissionPolicy, type Ownership } from './permissions.js';
import { refreshPath, folderRefOf } from './refresh.js';
import { BY_ID, IdCache, idsReadOnly, located, nameToId, namesDownTo, refuseIdWrite, XATTR_PREFIX, xattrsOf, type Located } from './ids.js';

const DIR_MODE = 0o40755;
const FILE_MODE = 0o100644;

export interface VfsOptions {
  providers: ReadonlyMap<string, Provider>;
  blocks: BlockSource;
  log: Logger;
  metadataTtlMs: number;
  /** Per-source override of the metadata TTL. */
  sourceTtlMs?: (source: string) => number | undefined;
  readaheadMaxBytes: number;
  /** Smallest readahead top-up: the GET part size. */
  readaheadStepBytes?: number;
  maxRetryTimeMs: number;
  /** How long a name missing from a listing stays "no such name" (metadataNegativeTtl; dir-cache.ts), and an id found missing (ids.ts). */
  metadataNegativeTtlMs?: number;
  /** Owner and modes of every entry, and the chmod/chown policy (default: the daemon's user, 0644/0755, EPERM). */
  ownership?: Ownership;
  /** The write side (staging area, uploaders): absent for a read-only VFS. */
  writes?: WriteOptions;
  /** Listings shared with the other hosts of a farm (src/farm/metadata.ts). */
  sharedListings?: ListingShare;
}

type Resolved =
  | { kind: 'root' }
  | { kind: 'source'; provider: Provider }
  | { kind: 'ids'; provider: Provider }
  /** `id`: the entry was found by this platform id (`.by-id/<id>`), not in its parent's listing. */
  | { kind: 'entry'; provider: Provider; entry: RemoteEntry; parentRef: Ref; id?: string };

type Handle = RemoteFile | StagedHandle;
const isStaged = (h: Handle): h is StagedHandle => h.kind === 'staged';

export class AssetVfs implements Vfs {
  private readonly dirs: DirCache;
  private readonly ids: IdCache;
  private readonly handles = new Map<number, Handle>();
  private readonly pageCache = new PageCacheVersions();
  private readonly writes: WriteOps | undefined;
  private nextFh = 1;
  /** Whole seconds, so that versionedMtime() still tells versions of a file without a known mtime apart. */
  private readonly startedAt = Math.floor(Date.now() / 1000) * 1000;
  private readonly perms: PermissionPolicy;

  private readonly fileDeps: RemoteFileDeps;

  constructor(private readonly opts: VfsOptions) {
    this.dirs = new DirCache({ maxRetryTimeMs: opts.maxRetryTimeMs, negativeTtlMs: opts.metadataNegativeTtlMs, ...(opts.sharedListings ? { shared: opts.sharedListings } : {}) });
    this.perms = new PermissionPolicy(opts.ownership ?? daemonOwnership());
    this.ids = new IdCache({ maxRetryTimeMs: opts.maxRetryTimeMs, negativeTtlMs: opts.metadataNegativeTtlMs });
    this.fileDeps = {
      blocks: opts.blocks,
      log: opts.log,
      pageCache: this.pageCache,
      readaheadMaxBytes: opts.readaheadMaxBytes,
      readaheadStepBytes: opts.readaheadStepBytes,
      invalidateDir: (source, parentRef) => this.dirs.invalidate(source, parentRef),
    };
    this.writes = opts.writes && new WriteOps(opts.writes, this.access());
  }

  /** What the write side may use of this VFS. */
  private access(): VfsAccess {
    return {
      lookup: (path) => this.lookup(path),
      remoteNames: async (path) => {
        const parts = path.split('/').filter(Boolean);
        const names: string[] = [];
        for (let i = 2; i <= parts.length; i++) {
          const e = await this.lookup(`/${parts.slice(0, i).join('/')}`);
          // A listed entry's own name (escaped, suffixed and shortened local names go back to it); a new name read back.
          names.push(e && 'name' in e ? e.name : remoteNameOf(parts[i - 1]!));
        }
        return names;
      },
      children: async (path) => (await this.readdir(path)).map((d) => d.name),
      invalidateDir: (path) => this.invalidateDir(path),
      blocks: this.opts.blocks,
    };
  }

  /** Every file at or below a mount path, with its source (pinning walks folders with it). */
  async *walkFiles(path: string): AsyncIterable<{ path: string; obj: ObjectVersion }> {
    const r = await this.resolve(path);
    if (r.kind === 'root') throw new FsError('EINVAL', 'pin a source or a path inside one, not the whole mount');
    if (r.kind === 'entry' && r.entry.kind === 'file') {
      yield { path, obj: { source: r.provider.name, ref: r.entry.ref, version: r.entry.version, size: r.entry.size } };
      return;
    }
    for (const d of await this.remoteListing(path)) yield* this.walkFiles(`${path.replace(/\/+$/, '')}/${d.name}`);
  }

  private async lookup(path: string): Promise<RemoteEntry | { kind: 'root' | 'source' } | undefined> {
    try {
      const r = await this.resolve(path);
      if (r.kind === 'ids') throw idsReadOnly(path);
      return r.kind === 'entry' ? r.entry : { kind: r.kind };
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  private async remoteEntry(path: string): Promise<RemoteEntry | undefined> {
    const e = await this.lookup(path);
    return e && 'ref' in e ? e : undefined;
  }

  /** Forget the cached listing of one folder (a mount path). */
  private invalidateDir(path: string): void {
    void this.lookup(path).then((e) => {
      const source = path.split('/').filter(Boolean)[0];
      if (!source) return;
      this.dirs.invalidate(source, e && 'ref' in e ? e.ref : '');
    }, () => undefined);
  }

  private ttl(source: string): number {
    return this.opts.sourceTtlMs?.(source) ?? this.opts.metadataTtlMs;
  }

  private async resolve(path: string): Promise<Resolved> {
    const parts = path.split('/').filter((p) => p !== '');
    if (parts.length === 0) return { kind: 'root' };
    const provider = this.opts.providers.get(parts[0]!);
    if (!provider) throw new NotFoundError(`no source named ${parts[0]}`);
    if (parts.length === 1) return { kind: 'source', provider };
    let dirRef: Ref = '';
    let entry: RemoteEntry | undefined;
    let first = 1;
    let id: string | undefined;
    if (parts[1] === BY_ID && provider.byId) {
      if (parts.length === 2) return { kind: 'ids', provider };
      id = nameToId(parts[2]!);
      entry = await this.ids.get(provider, id, this.ttl(provider.name));
      first = 3;
    }
    for (let i = first; i < parts.length; i++) {
      if (entry && entry.kind !== 'dir') throw new FsError('ENOTDIR', `${parts.slice(0, i).join('/')} is not a directory`);
      if (entry) dirRef = entry.ref;
      entry = await this.dirs.lookup(provider, dirRef, parts[i]!, this.ttl(provider.name));
      if (!entry) throw new NotFoundError(`${path} not found`);
    }
    return { kind: 'entry', provider, entry: entry!, parentRef: dirRef, ...(first === parts.length ? { id } : {}) };
  }

  private dirAttr(mtimeMs = this.startedAt): Attr {
    return { kind: 'dir', size: 4096, mtimeMs, mode: DIR_MODE };
  }

  private entryAttr(e: RemoteEntry): Attr {
    return e.kind === 'dir'
      ? this.dirAttr(e.mtimeMs > 0 ? e.mtimeMs : this.startedAt)
      : { kind: 'file', size: e.size, mtimeMs: versionedMtime(e.mtimeMs > 0 ? e.mtimeMs : this.startedAt, e.version), mode: FILE_MODE };
  }

  /** Owner of every entry (fuse.uid, fuse.gid). */
  get owner(): { uid: number; gid: number } {
    return this.perms.owner;
  }

  async getattr(path: string): Promise<Attr> {
    const staged = this.writes?.stagedAttr(path);
    if (staged) return this.perms.stamp(staged);
    const r = await this.resolve(path);
    return this.perms.stamp(r.kind === 'entry' ? this.entryAttr(r.entry) : this.dirAttr());
  }

  async readdir(path: string): Promise<DirEntry[]> {
    const overlay = this.writes?.overlay(path.replace(/\/+$/, '') || '/') ?? [];
    const stamped = (entries: DirEntry[]) => entries.map((d) => ({ name: d.name, attr: this.perms.stamp(d.attr) }));
    // A folder made in the mount (or holding staged files only) may not exist remotely yet.
    const stagedDir = this.writes?.stagedAttr(path)?.kind === 'dir';
    const remote = await this.remoteListing(path).catch((e: unknown) => {
      if (stagedDir && e instanceof NotFoundError) return [];
      throw e;
    });
    const shadowed = new Set(overlay.map((o) => o.name));
    return stamped([...remote.filter((d) => !shadowed.has(d.name)), ...overlay]);
  }

  private async remoteListing(path: string): Promise<DirEntry[]> {
    const r = await this.resolve(path);
    if (r.kind === 'root') return [...this.opts.providers.keys()].map((name) => ({ name, attr: this.dirAttr() }));
    if (r.kind === 'ids') return []; // ids are looked up, never enumerated
    if (r.kind === 'entry' && r.entry.kind !== 'dir') throw new FsError('ENOTDIR', `${path} is not a directory`);
    const ref = r.kind === 'entry' ? r.entry.ref : '';
    const listing = await this.dirs.get(r.provider, ref, this.ttl(r.provider.name));
    return [...listing].map(([name, e]) => ({ name, attr: this.entryAttr(e) }));
  }

  private register(h: Handle): number {
    const fh = this.nextFh++;
    if (this.nextFh > 0xfffffff0) this.nextFh = 1;
    this.handles.set(fh, h);
    return fh;
  }

  async open(path: string, flags: number): Promise<OpenFile> {
    if (isWriteOpen(flags)) this.refuseIdWrite(path);
    if (this.writes) {
      const staged = await this.writes.open(path, flags, isWriteOpen(flags) ? await this.remoteEntry(path) : undefined);
      if (staged) {
        this.pageCache.forget(path); // local bytes, changed through the kernel: never trust older pages
        return { fh: this.register(staged), keepCache: false };
      }
    } else if (isWriteOpen(flags)) {
      throw new FsError('EROFS', `${path}: this mount is read-only`);
    }
    const r = await this.resolve(path);
    if (r.kind !== 'entry') throw new FsError('EISDIR', `${path} is a directory`);
    const { entry, provider } = r;
    if (entry.kind === 'dir') throw new FsError('EISDIR', `${path} is a directory`);
    if (entry.unreadable) {
      this.opts.log.warn({ path, reason: entry.unreadable.reason }, 'file is listed but cannot be read now');
      throw new UnavailableError(entry.unreadable.code, `${path}: ${entry.unreadable.reason}`);
    }
    const obj = { source: provider.name, ref: entry.ref, version: entry.version, size: entry.size };
    // Found by id: a stale or vanished object drops that id's entry, not a listing.
    const deps = r.id === undefined ? this.fileDeps : { ...this.fileDeps, invalidateDir: () => this.ids.forget(provider.name, r.id) };
    const file = new RemoteFile(deps, provider, obj, r.parentRef, path);
    file.prefetchMedia(entry.name);
    return { fh: this.register(file), keepCache: this.pageCache.opened(path, entry.version) };
  }

  private anyHandle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw new FsError('EBADF', `no open file with handle ${fh}`);
    return h;
  }

  private stagedHandle(fh: number): StagedHandle {
    const h = this.anyHandle(fh);
    if (!isStaged(h)) throw new FsError('EBADF', `handle ${fh} is open read-only`);
    return h;
  }

  private writeOps(): WriteOps {
    if (!this.writes) throw new FsError('EROFS', 'this mount is read-only');
    return this.writes;
  }

  async create(path: string): Promise<number> {
    this.refuseIdWrite(path);
    this.pageCache.forget(path);
    return this.register(await this.writeOps().create(path));
  }

  async write(fh: number, buf: Buffer, length: number, position: number): Promise<number> {
    return this.writeOps().write(this.stagedHandle(fh), buf, length, position);
  }

  async fsync(fh: number): Promise<void> {
    const h = this.anyHandle(fh);
    if (isStaged(h)) await this.writeOps().fsync(h);
  }

  /** close() of a descriptor: a staged file's buffered writes reach its staged copy. */
  async flush(fh: number): Promise<void> {
    const h = this.handles.get(fh);
    if (h && isStaged(h)) await this.writeOps().flush(h);
  }

  async ftruncate(fh: number, size: number): Promise<void> {
    await this.writeOps().ftruncate(this.stagedHandle(fh), size);
  }

  async truncate(path: string, size: number): Promise<void> {
    this.refuseIdWrite(path);
    this.pageCache.forget(path);
    await this.writeOps().truncate(path, size, await this.remoteEntry(path));
  }

  async unlink(path: string): Promise<void> {
    this.refuseIdWrite(path);
    this.pageCache.forget(path);
    await this.writeOps().unlink(path, await this.remoteEntry(path));
  }

  async mkdir(path: string): Promise<void> {
    this.refuseIdWrite(path);
    await this.writeOps().mkdir(path, (await this.lookup(path)) !== undefined);
  }

  async rmdir(path: string): Promise<void> {
    this.refuseIdWrite(path);
    await this.writeOps().rmdir(path, await this.remoteEntry(path));
  }

  async rename(from: string, to: string): Promise<void> {
    this.refuseIdWrite(from);
    this.refuseIdWrite(to);
    // A staged file is a file (rsync renames one per file copied): its two names are all that move. A
    // remote rename may move a folder, so everything under both names is forgotten.
    const forget = this.writes?.stagedAttr(from)?.kind === 'file' ? (p: string) => this.pageCache.forget(p) : (p: string) => this.pageCache.forgetTree(p);
    forget(from);
    forget(to);
    await this.writeOps().rename(from, to);
  }

  /**
   * chmod, chown, utimens of an existing path: nothing is stored remotely. A chmod/chown that would
   * change what a remote entry reports fails with EPERM unless fuse.ignoreChmod; on an entry still
   * being created through the mount it is accepted without effect (permissions.ts). Times are
   * accepted (touch, cp -p and rsync set them).
   */
  async setattr(path: string, change: AttrChange): Promise<void> {
    const staged = this.writes?.stagedAttr(path);
    this.perms.check(path, staged ? this.perms.stamp(staged) : await this.getattr(path), change, staged !== undefined);
  }

  /**
   * A number when the read could be answered at once (every block it touches in memory), else a
   * promise. Never throws: errors reject the promise.
   */
  read(fh: number, into: Buffer, length: number, position: number): number | Promise<number> {
    const h = this.handles.get(fh);
    if (!h || isStaged(h)) return this.readStaged(fh, into, length, position);
    return h.read(into, length, position);
  }

  private async readStaged(fh: number, into: Buffer, length: number, position: number): Promise<number> {
    const h = this.stagedHandle(fh); // an unknown handle is EBADF, on a read-only mount too
    return this.writeOps().read(h, into, length, position);
  }

  async release(fh: number): Promise<void> {
    const h = this.handles.get(fh);
    this.handles.delete(fh);
    if (h && isStaged(h)) await this.writeOps().release(h);
  }

  get openFiles(): number {
    return this.handles.size;
  }

  async statfs() {
    return { blockSize: 4096, blocks: 1 << 30, free: 1 << 29, files: 1 << 20 };
  }

  invalidate(path: string): void {
    const parts = path.split('/').filter((p) => p !== '');
    if (parts.length === 0) {
      for (const source of this.opts.providers.keys()) this.dirs.invalidate(source);
      this.dirs.clear();
      this.ids.clear();
      return;
    }
    this.dirs.invalidate(parts[0]!);
    this.ids.forget(parts[0]!);
  }

  /** Another host of the farm changed (source, ref), or all of the source: forget it here without telling anyone. */
  forgetListing(source: string, ref?: Ref): void {
    this.dirs.forget(source, ref);
    if (ref === undefined) this.ids.forget(source);
  }

  private refuseIdWrite(path: string): void {
    refuseIdWrite(path, this.opts.providers);
  }

  /** The `user.assetfs.*` attributes of a path (docs/semantics.md#platform-ids); none on the mount root. */
  private async xattrs(path: string): Promise<Map<string, string>> {
    const staged = this.writes?.stagedAttr(path);
    const r = await this.resolve(staged ? path.split('/').slice(0, 2).join('/') : path);
    if (r.kind === 'root') return new Map();
    // A file written here and not uploaded yet has no id, version or status on the platform yet.
    return xattrsOf(r.provider, r.kind === 'entry' && !staged ? r.entry : undefined);
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    const value = name.startsWith(XATTR_PREFIX) ? (await this.xattrs(path)).get(name) : undefined;
    if (value === undefined) throw new FsError('ENODATA', `${path} has no attribute ${name}`);
    return Buffer.from(value);
  }

  async listxattr(path: string): Promise<string[]> {
    return [...(await this.xattrs(path)).keys()];
  }

  async setxattr(path: string, name: string): Promise<void> {
    throw new FsError('ENOTSUP', `${path}: extended attributes are read-only here (${name})`);
  }

  async removexattr(path: string, name: string): Promise<void> {
    throw new FsError('ENOTSUP', `${path}: extended attributes are read-only here (${name})`);
  }

  /** `assetfs locate PATH`: the platform's id, version and status of a mount path, and its `.by-id/` path. */
  async locate(path: string): Promise<Located> {
    return located(path, await this.xattrs(path));
  }

  /** `assetfs locate --id SOURCE ID`: the mount path of the entry with that platform id. */
  async pathOfId(source: string, id: string): Promise<string> {
    const provider = this.opts.providers.get(source);
    if (!provider) throw new NotFoundError(`no source named ${source}`);
    if (!provider.byId) throw new FsError('ENOTSUP', `${source} (${provider.type}) has no ids`);
    const entry = await this.ids.get(provider, id, this.ttl(source));
    return `/${[source, ...(await namesDownTo(this.dirs, provider, entry, this.ttl(source)))].join('/')}`;
  }

  /** Name lookups in listings so far: hit, miss (listing fetched), negative (assetfs_metadata_lookups_total). */
  get metadataLookups(): Readonly<{ hit: number; miss: number; negative: number }> {
    return this.dirs.lookups;
  }

  /**
   * `assetfs refresh`: forget the listings and ids that PATH's attributes and everything below it come
   * from (refresh.ts). Returns the mount paths whose attributes the kernel may hold.
   */
  refresh(path: string): Promise<string[]> {
    return refreshPath(path, {
      providers: this.opts.providers,
      dirs: this.dirs,
      ids: this.ids,
      ttl: (source) => this.ttl(source),
      folderRef: async (p) => {
        const r = await this.resolve(p).catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
        return r && folderRefOf(p, r.kind === 'entry' ? r.entry : undefined);
      },
    });
  }

  async close(): Promise<void> {
    this.handles.clear();
    this.dirs.clear();
    this.ids.clear();
  }
}

/**
 * A file's mtime as shown to the kernel: the platform's, with its milliseconds taken from the version
 * when the platform gives whole seconds (S3 and Azure do), so that a replacement of the same size
 * within the same second still changes it. Opens decide exactly whether the kernel keeps a file's
 * pages (PageCacheVersions); this serves the kernel's own check (auto_inval_data: cached pages go when
 * a fresh getattr shows another size or mtime), and tools that compare mtimes (rsync, make).
 */
export function versionedMtime(mtimeMs: number, version: string): number {
  if (mtimeMs % 1000 !== 0 || version === '') return mtimeMs;
  return mtimeMs + (crc32(version) % 1000);
}

