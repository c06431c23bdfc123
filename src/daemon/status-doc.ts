/**
 * The status document: what the daemon's control socket answers to `GET /status` (src/daemon/run.ts)
 * and what `assetfs status` reads and prints (src/daemon/status.ts). One type for both, so that a
 * field the daemon renames or drops fails the build, not the CLI at run time. Fields marked optional
 * may be absent from daemons older than the CLI.
 */
import type { SharedTierStatus } from '../farm/index.js';
import type { UploadsStatus } from '../upload/service.js';
import type { BlockSourceStats } from '../read/block-source.js';
import type { SourceHealthRecord } from './health.js';
import type { PinStatus } from '../pin/pinner.js';

export interface SourceStatus {
  name: string;
  type: string;
  /** Absent from daemons older than source health. */
  health?: SourceHealthRecord & { fix?: string };
}

export interface CacheTierStatus {
  bytes: number;
  limit: number;
  hits: number;
  misses: number;
}

export interface StatusDoc {
  mountpoint: string;
  pid: number;
  uptimeSec: number;
  sources: SourceStatus[];
  cache: { memory: CacheTierStatus; disk?: CacheTierStatus };
  /** The read path's counters (read/block-source.ts): the same counts as assetfs_origin_*{kind="read"}. */
  network?: BlockSourceStats;
  receive?: { fast: number; fallback: Record<string, number>; resent: number };
  openFiles: number;
  errors: ReadonlyArray<{ time: string; message: string; path?: string }>;
  uploads?: UploadsStatus;
  writes?: { files: number; bytes: number; attention: ReadonlyArray<{ path: string; staged: string; reason: string; since: string; size: number }> };
  pins?: readonly PinStatus[];
  fuse?: { workerLocals: number };
  /** The farm's shared tier (config `shared:`), absent without it. */
  shared?: SharedTierStatus;
}
