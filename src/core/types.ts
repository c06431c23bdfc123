/**
 * The seams of assetfs. Every other module depends on these interfaces, and this
 * file imports nothing else from src/. Read path:
 *
 *   fuse adapter → Vfs → ReadHandle → BlockSource → BlockCache | (LocatorCache → Provider.locate, Transport.readRange)
 *
 * Invariants:
 *  - A cached block is keyed by (source, ref, version, index): a new remote version can never hit old blocks.
 *  - Providers never see local (sanitised) names; the VFS maps remote names and keeps the ref for each entry.
 *  - Only src/fuse/ knows errno numbers; everything else throws FsError subclasses (core/errors.ts).
 */

/** Opaque provider-side handle of an entry (an S3 key, a blob path, an asset id, …). '' is the source root. */
export type Ref = string;

/** Why an existing file cannot be read right now (archived, still uploading, processing, no valid size …). */
export interface Unreadable {
  readonly code: 'EAGAIN' | 'EACCES' | 'EIO';
  readonly reason: string;
}

/** One child of a remote directory, as the provider reports it. */
export interface RemoteEntry {
  /** The remote name, not sanitised: may contain anything except that it is one path segment remotely. */
  readonly name: string;
  readonly kind: 'file' | 'dir';
  readonly ref: Ref;
  /** Bytes; 0 for directories, and for files whose size the server did not give validly (then unreadable). */
  readonly size: number;
  /** Epoch ms; 0 when unknown (the VFS shows the mount's start). Checked: providers/common/entry-numbers.ts. */
  readonly mtimeMs: number;
  /** ETag / revision / size+mtime. Part of every cache key; '' for directories. */
  readonly version: string;
  /** Stable remote id, used to tell apart two entries with the same name in one folder. Defaults to ref. */
  readonly id?: string;
  readonly unreadable?: Unreadable;
  /** The platform's own status of the object (Nomad's assetStatus, MediaHub's status, an AMS asset's State), when it has one. */
  readonly status?: string;
  /** The MIME type the platform stores for the file, when its answer carries one (never guessed from the name). */
  readonly contentType?: string;
}

/** The identity of one version of one object: what the read path caches and fetches. */
export interface ObjectVersion {
  /** Source name: keeps refs of different sources apart in shared caches. */
  readonly source: string;
  readonly ref: Ref;
  readonly version: string;
  readonly size: number;
}

/** Where the bytes of an object version can be fetched with plain HTTP GETs. */
export interface SignedLocator {
  readonly url: string;
  /** Extra request headers (bearer JWTs, API auth). Treated as secrets: never logged. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Epoch ms after which the URL must not be used. Infinity when it does not expire. */
  readonly expiresAt: number;
  /** false when the server is known to ignore Range and always answers 200 with the whole body. */
  readonly rangeable?: boolean;
  /**
   * true only when the object version is the HTTP ETag this URL's responses carry (a storage listing's
   * or HEAD's ETag: S3, Azure, MK.IO's storage probe): the transport then refuses another ETag as a
   * changed object. Default false: the version is the platform's own (a revision, a `v` parameter,
   * size and mtime, a listing's eTag field) and is never compared with a download's ETag; downloads are
   * compared only with each other (Expectation.downloadEtag, core/etag.ts). Sizes are always checked.
   */
  readonly etagIsVersion?: boolean;
  /** Statuses beside 401/403 that mean the credential in `headers` was refused (Wordbee's 400 for an expired token). */
  readonly refusedStatuses?: readonly number[];
}

export interface ProviderCaps {
  /** The provider can take uploads (the upload engine, issue 4). */
  readonly upload: boolean;
}

/**
 * One platform or storage account, mounted at /<name>. Implementations live in
 * src/providers/<type>/index.ts, all in the same shape, all passing test/contract/provider-suite.ts.
 *
 * Errors: NotFoundError when a ref does not exist; AuthError when credentials are refused
 * (after one re-authentication); TransientError for 5xx/429/resets (the caller's retry (util/retry.ts) retries);
 * anything else is an FsError with an honest code.
 */
export interface Provider {
  readonly name: string;
  readonly type: string;
  readonly caps: ProviderCaps;
  /** Children of a directory ref ('' = source root), paging internally. Order is not significant. */
  list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry>;
  /** Fresh metadata of one entry. Throws NotFoundError. */
  stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry>;
  /** A locator that reads exactly `obj.version`; minted on demand, cached by LocatorCache. */
  locate(obj: ObjectVersion, signal?: AbortSignal): Promise<SignedLocator>;
  /**
   * A locator this provider minted was refused (401/403) before its expiry: drop whatever credential it
   * carried (an API token in its headers), so that the next locate() logs in again.
   */
  refused?(obj: ObjectVersion, loc: SignedLocator): void;
  /**
   * The platform's own id of an entry this provider made (shown as `user.assetfs.id`, taken by byId()),
   * or undefined when the object has none of its own (a prefix folder, a Wordbee locale folder).
   * docs/providers.md says per platform what it is.
   */
  idOf?(entry: RemoteEntry): string | undefined;
  /**
   * The entry whose platform id is `id` (as idOf() gives it), found with one API call and without
   * listing its folder; the same ref and version as a listing shows, so reads share cache blocks.
   * Throws NotFoundError when the platform knows no such id.
   */
  byId?(id: string, signal?: AbortSignal): Promise<RemoteEntry>;
  /**
   * Refs of the folders between the source root and `entry`, top first (neither '' nor the entry's
   * own ref): with the listings of those folders, the entry's path in the mount can be named.
   */
  ancestry?(entry: RemoteEntry, signal?: AbortSignal): Promise<Ref[]>;
  /** The platform's multipart uploader (src/upload/types.ts), when `caps.upload`. */
  uploader?(): import('../upload/types.js').Uploader;
  /** Release sockets, timers, tokens, server-side resources (e.g. AMS locators). */
  close(): Promise<void>;
}

/** Half-open byte range [start, end). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** Called while a ranged body arrives: its first `filled` bytes are final. */
export type Progress = (filled: number) => void;

/** What a read must match: a response for any other version is a StaleError. */
export interface Expectation {
  readonly version: string;
  readonly size: number;
  /**
   * The ETag earlier downloads of this version carried (pinned by the first that had one): a response
   * with another ETag is a StaleError whatever the locator says (core/etag.ts).
   */
  readonly downloadEtag?: SeenEtag;
}

/** The ETag downloads of one object version carried so far (implemented by core/etag.ts's DownloadEtag). */
export interface SeenEtag {
  /** '' until a download carried a strong ETag. */
  readonly value: string;
  /** Notes a response's ETag; false when it differs from the one seen before. */
  admit(got: string | undefined | null): boolean;
}

/**
 * Moves bytes between signed locators and memory. Throws ExpiredError on 401/403 (the caller re-locates),
 * StaleError when the server's ETag is not of the expected version (core/etag.ts), TransientError on 5xx, 429,
 * resets, timeouts and short bodies (the caller retries), NotFoundError on 404.
 */
export interface Transport {
  /** Exactly range.end - range.start bytes, or an error. */
  readRange(loc: SignedLocator, range: ByteRange, expect: Expectation, signal?: AbortSignal): Promise<Buffer>;
  /**
   * readRange into `into`: consecutive buffers whose lengths add up to the range's. `onProgress(filled)`
   * may be called as the body arrives: the first `filled` bytes are final. On an error the buffers hold
   * garbage.
   */
  readRangeInto(loc: SignedLocator, range: ByteRange, expect: Expectation, into: readonly Buffer[], onProgress?: Progress, signal?: AbortSignal): Promise<void>;
  /**
   * The whole object in order, chunk by chunk, without holding it (locators with `rangeable: false`).
   * Resolves after exactly `expect.size` bytes went to `onChunk`; errors as readRange.
   */
  streamWhole(loc: SignedLocator, expect: Expectation, onChunk: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Fixed-size blocks of object versions. Memory, disk and tiered implementations share it. */
export interface BlockCache {
  readonly blockSize: number;
  get(obj: ObjectVersion, index: number): Promise<Buffer | undefined>;
  /**
   * Optional: get() by a cache that may wait for another host's fetch of the block (the shared tier:
   * src/farm/shared-blocks.ts). It calls `onWait` before it waits, so that the caller can first
   * start the fetches it is holding (hosts never wait for each other in a circle).
   */
  getOrWait?(obj: ObjectVersion, index: number, onWait: () => void): Promise<Buffer | undefined>;
  put(obj: ObjectVersion, index: number, data: Buffer): Promise<void>;
  /**
   * Optional: count a block being prefetched against the memory bound until put() (or unreserve())
   * settles it, so cached plus prefetched bytes stay within the memory tier's limit.
   */
  reserve?(obj: ObjectVersion, index: number, bytes: number): void;
  unreserve?(obj: ObjectVersion, index: number): void;
  /**
   * Optional: a block-sized buffer to fetch a block into, recycled from blocks that left the cache (a
   * cold read then allocates nothing once the memory tier is full). Hand it to putOwned, which stores
   * `data` (a view of it) and recycles it when the block leaves, or back to giveBack if unused.
   */
  takeBuffer?(): Buffer;
  /** Optional: the block if it is in memory right now, without I/O or waiting (the read fast path). */
  peek?(obj: ObjectVersion, index: number): Buffer | undefined;
  putOwned?(obj: ObjectVersion, index: number, data: Buffer, owned: Buffer): void;
  giveBack?(buf: Buffer): void;
  /**
   * Optional: a sequential reader has read this block and moved on. The cache may let it go before
   * blocks used otherwise (scan resistance; see memory-cache.ts).
   */
  demote?(obj: ObjectVersion, index: number): void;
  /** Forget every block of every version of (source, ref). */
  dropObject(source: string, ref: Ref): Promise<void>;
  stats(): CacheStats;
}

export interface CacheStats {
  readonly bytes: number;
  readonly limit: number;
  readonly hits: number;
  readonly misses: number;
}

/** Blocks on demand: the cache first, then the network; one fetch per block however many readers ask. */
export interface BlockSource {
  readonly blockSize: number;
  readBlock(obj: ObjectVersion, index: number, signal?: AbortSignal): Promise<Buffer>;
  /** Optional: the block if it can be had synchronously (cached in memory), else undefined. */
  peekBlock?(obj: ObjectVersion, index: number): Buffer | undefined;
  /** Optional: blocks [first, last] were read by a sequential reader that has moved on (BlockCache.demote). */
  demote?(obj: ObjectVersion, first: number, last: number): void;
  /** Start fetching blocks [first, last] in the background, in large ranged GETs. Never throws. */
  prefetch(obj: ObjectVersion, first: number, last: number): void;
  /** Forget the locators of an object (its remote version changed); its blocks, keyed by version, stay. */
  invalidate(source: string, ref: Ref): Promise<void>;
}

/**
 * What a setattr asks for: a mode (chmod, permission bits and possibly the file type), an owner (chown;
 * -1 or 0xffffffff leaves that id as it is), or times (utimens).
 */
export type AttrChange = { kind: 'mode'; mode: number } | { kind: 'owner'; uid: number; gid: number } | { kind: 'times' };

/** File attributes as the VFS reports them; the FUSE adapter turns them into stat structs. */
export interface Attr {
  readonly kind: 'file' | 'dir';
  readonly size: number;
  readonly mtimeMs: number;
  readonly mode: number;
}

export interface DirEntry {
  readonly name: string;
  readonly attr: Attr;
}

/** An open file: its handle, and whether the kernel may keep the pages it cached for the path (they are of the version this open reads). */
export interface OpenFile {
  readonly fh: number;
  readonly keepCache: boolean;
}

/**
 * The filesystem core: paths in, attributes and bytes out, FsErrors thrown. Knows nothing of FUSE.
 * Paths are absolute within the mount ('/' is the root, which lists the sources).
 */
export interface Vfs {
  getattr(path: string): Promise<Attr>;
  readdir(path: string): Promise<DirEntry[]>;
  open(path: string, flags: number): Promise<OpenFile>;
  /** Bytes read into `into`: a number when answered at once from memory, else a promise. Never throws. */
  read(fh: number, into: Buffer, length: number, position: number): number | Promise<number>;
  release(fh: number): Promise<void>;
  statfs(): Promise<{ blockSize: number; blocks: number; free: number; files: number }>;
  /** Writes (staged, then uploaded). Sources that cannot take uploads answer EROFS. */
  create(path: string): Promise<number>;
  write(fh: number, buf: Buffer, length: number, position: number): Promise<number>;
  /** Waits for the upload of the file; its failure is the error. */
  fsync(fh: number): Promise<void>;
  /** close() of a descriptor (not the last release): buffered writes reach their staged copy. */
  flush(fh: number): Promise<void>;
  ftruncate(fh: number, size: number): Promise<void>;
  truncate(path: string, size: number): Promise<void>;
  unlink(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /**
   * chmod, chown, utimens of an existing path. Nothing is stored remotely: times are accepted, and so
   * are a mode or owner equal to what the entry reports; other modes and owners are refused with EPERM
   * unless the mount ignores chmod.
   */
  setattr(path: string, change: AttrChange): Promise<void>;
  /** Owner reported for every entry. */
  readonly owner: { uid: number; gid: number };
  /**
   * Extended attributes (docs/semantics.md#platform-ids): read-only, `user.assetfs.*` only. getxattr
   * throws ENODATA for a name the path does not have; setxattr and removexattr throw ENOTSUP.
   */
  getxattr?(path: string, name: string): Promise<Buffer>;
  listxattr?(path: string): Promise<string[]>;
  setxattr?(path: string, name: string): Promise<void>;
  removexattr?(path: string, name: string): Promise<void>;
  /** Drop cached metadata (and blocks when `blocks`) under a path; used after uploads and on SIGHUP. */
  invalidate(path: string, blocks?: boolean): void;
  close(): Promise<void>;
}

/**
 * A file the write path (src/vfs/write/) hands to the upload engine: its staged copy, where it goes,
 * and the remote version the writer started from.
 */
export interface StagedUpload {
  readonly localPath: string;
  readonly source: string;
  /** '/'-joined remote names below the source. */
  readonly remotePath: string;
  readonly size: number;
  readonly mtimeMs: number;
  /**
   * The remote version the writer's copy started from; null when there was no remote file. A remote
   * that moved since goes up as a conflict copy beside it, never replaced.
   */
  readonly baseVersion: string | null;
}

/** How an upload ended: where it went (a conflict copy's name when `conflictOf` is set). */
export interface UploadOutcome {
  readonly remotePath: string;
  /** The version the upload made (null when only the journal's record of it is left). */
  readonly version: string | null;
  readonly conflictOf: string | null;
}

/**
 * The one port between the write path and the upload engine (src/upload/engine.ts implements it).
 * Job ids are the journal's: they survive a restart.
 */
export interface UploadPort {
  /** Queue an upload (replacing any unfinished one to the same target). Journaled before it returns. */
  enqueue(u: StagedUpload): number;
  /** Give up an unfinished upload (its remote session is aborted). */
  cancel(jobId: number, reason: string): void;
  /** fsync: resolves when the job is done; rejects on a failed attempt, a cancel, or after `timeoutMs`. */
  wait(jobId: number, timeoutMs: number): Promise<void>;
  /** Resolves once the job is done, however many attempts it takes; rejects if it is cancelled or unknown. */
  done(jobId: number): Promise<UploadOutcome>;
}
