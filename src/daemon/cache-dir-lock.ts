/**
 * One daemon per cache dir, held for the daemon's lifetime: an exclusive SQLite transaction on
 * `<cacheDir>/daemon.lock`.
 *
 * SQLite locks with fcntl record locks, which the kernel drops when their process exits however it
 * exits, so a crashed or killed daemon never leaves a stale lock behind, and of two daemons started at
 * the same instant exactly one gets it. The file holds no data.
 */
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { mountpointOfDaemonAt } from './control.js';

export interface CacheDirLock {
  /** Let the cache dir go; idempotent. */
  release(): void;
}

/** Thrown when another process holds the cache dir. */
export class CacheDirBusyError extends Error {}

export function lockCacheDir(cacheDir: string): CacheDirLock {
  const file = join(cacheDir, 'daemon.lock');
  const db = new Database(file, { timeout: 0 });
  try {
    chmodSync(file, 0o600);
    db.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY') {
      throw new CacheDirBusyError(`another assetfs daemon uses the cache dir ${cacheDir} (it may be starting or stopping): give each mount its own cacheDir`);
    }
    throw e;
  }
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

/**
 * lockCacheDir for a daemon about to start: a refusal names the mount that holds the dir when that
 * daemon answers on its control socket (one still starting or stopping may not).
 */
export async function claimCacheDir(cacheDir: string): Promise<CacheDirLock> {
  try {
    return lockCacheDir(cacheDir);
  } catch (e) {
    if (!(e instanceof CacheDirBusyError)) throw e;
    const mountpoint = await mountpointOfDaemonAt(cacheDir);
    if (mountpoint) throw new CacheDirBusyError(`another assetfs daemon (mounted at ${mountpoint}) uses the cache dir ${cacheDir}: give each mount its own cacheDir`);
    throw e;
  }
}
