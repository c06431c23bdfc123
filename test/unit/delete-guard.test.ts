/**
 * The guard on remote deletions of a watched folder (src/sync/delete-guard.ts): bursts within
 * maxDelete go through, larger ones and a vanished folder pause until confirm(), which deletes only
 * what is still missing and nothing while the folder is gone. test/fuse/sync-guard.test.ts proves it
 * through the real daemon.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeleteGuard, deleteThreshold } from '../../src/sync/delete-guard.js';
import { silentLogger } from '../../src/util/logger.js';

const DEFAULT = { files: 50, percent: 10 };

/** A folder as the guard sees it: which files exist, whether the folder does, what was deleted remotely. */
function folder(files: string[], max = DEFAULT) {
  const present = new Set(files);
  const state = { exists: true, removed: [] as string[] };
  const guard = new DeleteGuard({
    max,
    quietMs: 5,
    folderExists: async () => state.exists,
    filesKnown: () => present.size,
    removeRemote: async (p) => {
      if (present.has(p)) return false;
      state.removed.push(p);
      return true;
    },
    log: silentLogger,
  });
  const rm = async (...names: string[]) => {
    for (const n of names) {
      present.delete(n);
      guard.deleted(n);
    }
    await vi.advanceTimersByTimeAsync(5); // the burst ends after quietMs of silence (fake timers)
    await guard.settled();
  };
  return { guard, present, state, rm };
}
const names = (n: number, prefix = 'f') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('deleteThreshold', () => {
  it('is 50 files or 10 % of the folder, whichever is smaller, and never below one', () => {
    expect([1, 5, 12, 20, 200, 499, 500, 10_000].map((n) => deleteThreshold(DEFAULT, n))).toEqual([1, 1, 1, 2, 20, 49, 50, 50]);
    expect(deleteThreshold({ files: 1000, percent: 100 }, 30)).toBe(30);
  });
});

describe('DeleteGuard', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('carries out a burst within the threshold', async () => {
    const f = folder(names(200));
    await f.rm(...names(20));
    expect(f.state.removed).toHaveLength(20);
    expect(f.guard.paused).toBeUndefined();
  });

  it('pauses on a burst beyond it, holds later deletions too, and confirm() deletes only what is still missing', async () => {
    const f = folder(names(200));
    await f.rm(...names(21));
    expect(f.state.removed).toEqual([]);
    expect(f.guard.paused).toMatchObject({ reason: 'mass', held: 21 });
    expect(f.guard.paused!.message).toMatch(/^paused: 21 files deleted at once, more than maxDelete allows \(20 of 200: 50 files or 10 %\): 21 remote deletions held, nothing deleted remotely; `assetfs retry`/);
    await f.rm('f150'); // a single later deletion is held as well
    expect(f.guard.paused!.held).toBe(22);
    f.present.add('f3'); // one came back
    expect(await f.guard.confirm()).toBe(21);
    expect(f.state.removed).not.toContain('f3');
    expect(f.guard.paused).toBeUndefined();
  });

  it('a file that reappears within the burst is not deleted (an editor saving by delete and rename)', async () => {
    const f = folder(names(10));
    f.guard.deleted('f1');
    f.guard.reappeared('f1');
    await f.rm('f2');
    expect(f.state.removed).toEqual(['f2']);
  });

  it('pauses when the folder is gone whatever the count, and confirm() deletes nothing until it is back', async () => {
    const f = folder(names(3));
    f.state.exists = false;
    await f.rm('f0');
    expect(f.guard.paused).toMatchObject({ reason: 'gone', held: 1 });
    expect(f.guard.paused!.message).toMatch(/^paused: the watched folder is gone/);
    expect(await f.guard.confirm()).toBe(0);
    expect(f.guard.paused?.reason).toBe('gone');
    f.state.exists = true;
    expect(await f.guard.confirm()).toBe(1);
    expect(f.state.removed).toEqual(['f0']);
  });
});
