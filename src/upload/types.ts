/**
 * The upload engine's seams. One engine, two producers (the sync watcher and writes into the mount),
 * one journal. Each platform that can take uploads implements `Uploader` next to its provider
 * (src/providers/<type>/upload.ts) and hands it out through `Provider.uploader()`.
 *
 * Invariants every Uploader keeps:
 *  - `begin` starts a new remote upload session and returns an id that survives a restart of the daemon
 *    (it is journaled); `confirmed` tells what the platform already holds for that id, or undefined when
 *    the session is gone (expired, aborted): the engine then begins again.
 *  - Parts are numbered from 1, each exactly `partSize` bytes except the last; `part` is idempotent for
 *    a given (uploadId, number) — sending a part again replaces it.
 *  - Nothing is visible under the target name before `complete` succeeds (no half-written objects).
 */
export interface UploadTarget {
  readonly source: string;
  /** Remote path segments below the source root (remote names, not sanitised local names). */
  readonly path: readonly string[];
}

export interface ConfirmedPart {
  readonly number: number;
  /** The platform's receipt: S3 ETag, Azure block id, … */
  readonly etag: string;
  readonly size: number;
}

export interface CompletedUpload {
  /** The remote version (ETag) of the finished object, for conflict detection next time. */
  readonly version: string;
  readonly size: number;
}

/** What a platform says of an object's content (adopt.ts decides whether it is a local file). */
export interface RemoteContent {
  /** The version to record as the last one we uploaded (the platform's ETag). */
  readonly version: string;
  readonly size: number;
  /** An S3-style ETag, unquoted. */
  readonly s3Etag?: string;
  /** A content MD5 the platform stored, hex. */
  readonly md5?: string;
}

export interface Uploader {
  /** Bytes per part for a file of `size` bytes (platform minimums and part-count limits respected). */
  partSize(size: number): number;
  begin(target: UploadTarget, size: number, signal?: AbortSignal): Promise<string>;
  /** Parts the platform holds for the session; undefined when it no longer exists; 'unknown' when it cannot tell. */
  confirmed(target: UploadTarget, uploadId: string, signal?: AbortSignal): Promise<ConfirmedPart[] | undefined | 'unknown'>;
  part(target: UploadTarget, uploadId: string, number: number, data: Buffer, signal?: AbortSignal): Promise<string>;
  complete(target: UploadTarget, uploadId: string, parts: readonly ConfirmedPart[], info: { size: number; sha256: string }, signal?: AbortSignal): Promise<CompletedUpload>;
  abort(target: UploadTarget, uploadId: string): Promise<void>;
  /** Replaces `.conflict-` in conflict-copy names where the platform limits dots in names. */
  readonly conflictMark?: string;
  /**
   * Create a folder (Nomad folders, AMS and MK.IO assets); absent where folders are only name prefixes
   * (S3, Azure). Resolves 'prefix' when this level is only a name prefix (MK.IO below an asset): the
   * mount then keeps the empty folder locally until a file lands in it.
   */
  mkdir?(target: UploadTarget, signal?: AbortSignal): Promise<void | 'prefix'>;
  /** Remove an empty folder; absent where folders vanish with their last file. */
  rmdir?(target: UploadTarget, signal?: AbortSignal): Promise<void>;
  /** Rename or move a file or folder within the source; absent when the platform cannot (the mount answers EXDEV). */
  rename?(from: UploadTarget, to: UploadTarget, signal?: AbortSignal): Promise<void>;
  /** Delete the remote object (sync with `deleteRemote: true`, unlink in the mount); absent when the platform cannot. */
  remove?(target: UploadTarget, signal?: AbortSignal): Promise<void>;
  /** The remote object's current version, or undefined when there is none (conflict checks). */
  remoteVersion(target: UploadTarget, signal?: AbortSignal): Promise<string | undefined>;
  /**
   * What the platform says of the object's content (adopt.ts): its version, size and a content
   * digest where it keeps one; undefined when there is no object. Absent where there is no digest.
   */
  remoteContent?(target: UploadTarget, signal?: AbortSignal): Promise<RemoteContent | undefined>;
  /** Releases what the uploader holds (grants, clients); its provider's close() calls it. */
  close?(): void | Promise<void>;
}

export type JobState = 'queued' | 'uploading' | 'done' | 'failed' | 'cancelled';
export type Producer = 'sync' | 'mount';

export interface Job {
  readonly id: number;
  readonly localPath: string;
  readonly source: string;
  /** '/'-joined remote path below the source. */
  readonly remotePath: string;
  readonly producer: Producer;
  readonly size: number;
  readonly mtimeMs: number;
  readonly sha256: string | null;
  readonly partSize: number;
  readonly uploadId: string | null;
  readonly state: JobState;
  readonly attempts: number;
  readonly lastError: string | null;
  /** Epoch ms before which a failed job is not retried; NOT_RETRIED (journal.ts) after a permanent refusal. */
  readonly nextAttemptAt: number;
  /** The remote version our last upload of this target produced (conflict detection); null if none. */
  readonly baseVersion: string | null;
  readonly bytesDone: number;
  /** Set when the job went up as a conflict copy: the remote path it was meant for. */
  readonly conflictOf: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * Hosts watching one shared folder (a farm: src/farm/leases.ts) agree on which of them uploads a
 * file. The engine asks before a sync job goes up; without a shared tier there is no such port.
 */
export interface UploadLeases {
  acquire(job: Job): Promise<LeaseDecision>;
}

export type LeaseDecision =
  /** This host uploads, holding the lease until `release`. */
  | { readonly kind: 'held'; readonly lease: UploadLease }
  /** Another host holds the lease: try again after `retryInMs`. */
  | { readonly kind: 'elsewhere'; readonly holder: string; readonly retryInMs: number }
  /** Another host already uploaded this very file (same size and mtime): nothing to send. */
  | { readonly kind: 'done'; readonly sha256: string; readonly version: string };

export interface UploadLease {
  /** A session a previous holder began for this same file and part size (it died): resume it. */
  readonly inherited: { readonly uploadId: string; readonly parts: readonly ConfirmedPart[] } | undefined;
  /** Aborted when the lease was lost to another host (this host stalled past the TTL). */
  readonly lost: AbortSignal;
  /** The session this host uploads through (published so that a successor can resume it). */
  session(job: Job): Promise<void>;
  /** A part the platform confirmed (published likewise). */
  part(p: ConfirmedPart): Promise<void>;
  /** The upload is complete: other hosts finish their jobs for this file without sending it. */
  finished(job: Job, sha256: string, version: string): Promise<void>;
  /** Stop the heartbeat and drop the lease (also after a failed attempt). */
  release(): Promise<void>;
}
