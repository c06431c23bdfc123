/**
 * A staged file as the staging area (staging.ts) tracks it, and a file kept for the operator's
 * attention. records.ts names the journaled states; `clean` is a copy nobody wrote to (no record).
 */
import type { FsError } from '../../core/errors.js';
import type { RecordState } from './records.js';
import type { WriteBehind } from './write-behind.js';

export type StagedState = 'clean' | Exclude<RecordState, 'attention'>;

export interface StagedFile {
  readonly id: string;
  /** Mount path: '/<source>/<local names…>'. */
  path: string;
  readonly source: string;
  /** Remote path segments below the source (remote names). */
  remote: string[];
  /** The remote version this copy started from (null: none). */
  base: string | null;
  size: number;
  mtimeMs: number;
  state: StagedState;
  jobId: number | undefined;
  /** Writable handles open on it. */
  writers: number;
  /** The write-behind buffers of those handles: reads, stats and uploads flush them first. */
  readonly buffers: Set<WriteBehind>;
  /** A write or flush failed: the file is out of the mount and is deleted at its last close. */
  failed: FsError | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Out of the staging area: its bytes no longer count, its files are deleted. */
  gone: boolean;
  /** Its name in the staging folder is on disk (the folder was fsynced since it was created). */
  named: boolean;
}

export interface AttentionEntry {
  readonly path: string;
  /** The kept copy, on disk. */
  readonly staged: string;
  readonly source: string;
  readonly remotePath: string;
  readonly reason: string;
  readonly since: string;
  readonly size: number;
}
