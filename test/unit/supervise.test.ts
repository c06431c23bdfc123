/**
 * supervise(): READY only once the mount point is a mounted, listed device; STATUS again when the
 * summary changes; an outside unmount (the device leaves the mount table) resolves unmountedOutside;
 * stop() reports STOPPING and skips the unmount of a mount that is gone. The "mount" here is /proc (a
 * real mount point whose device /proc/self/mountinfo lists) and the mount table a copy the test edits;
 * the daemon is a stand-in with the fields the summary reads. Real mounts: test/fuse/boot-mount.test.ts.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { supervise } from '../../src/daemon/supervise.js';
import type { Daemon } from '../../src/daemon/run.js';
import type { Notifier } from '../../src/daemon/notify.js';
import { silentLogger } from '../../src/util/logger.js';

let dir: string;
let table: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-supervise-'));
  table = join(dir, 'mountinfo');
  await writeFile(table, await readFile('/proc/self/mountinfo', 'utf8'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

function recorder() {
  const sent: string[] = [];
  const waiters: Array<() => void> = [];
  const push = (m: string) => {
    sent.push(m);
    for (const w of waiters.splice(0)) w();
  };
  const notifier: Notifier = {
    ready: (s) => push(`READY ${s}`),
    status: (s) => push(`STATUS ${s}`),
    stopping: (s) => push(`STOPPING ${s}`),
    failed: (s) => push(`FAILED ${s}`),
    delivered: async () => undefined,
  };
  const until = (pred: (m: string) => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => (sent.some(pred) ? resolve() : waiters.push(check));
      check();
    });
  return { sent, notifier, until };
}

function standIn(mountpoint: string) {
  const stops: Array<{ unmounted?: boolean } | undefined> = [];
  const d = {
    mountpoint,
    providers: new Map([['s3', {}], ['mkio', {}]]),
    vfs: { openFiles: 0 },
    uploads: { status: () => ({ queued: [], active: [], failed: [], recent: [], syncs: [] }) },
    stop: async (opts?: { unmounted?: boolean }) => void stops.push(opts),
  };
  return { d, daemon: d as unknown as Daemon, stops };
}

it('reports READY with the summary, STATUS when it changes, and stops when the mount leaves the table', async () => {
  const { sent, notifier, until } = recorder();
  const { d, daemon, stops } = standIn('/proc');
  const s = supervise({ started: Promise.resolve(daemon), mountpoint: '/proc', notifier, log: silentLogger, statusEveryMs: 10, mountTablePollMs: 10, mountTable: table });
  const running = await s.started;
  expect(sent).toEqual(['READY serving 2 sources at /proc; 0 open files; uploads: 0 queued, 0 uploading, 0 failed']);

  d.vfs.openFiles = 3;
  await until((m) => m.startsWith('STATUS'));
  expect(sent[1]).toBe('STATUS serving 2 sources at /proc; 3 open files; uploads: 0 queued, 0 uploading, 0 failed');

  // umount from outside: /proc's line leaves the table.
  const procLine = (await readFile(table, 'utf8')).split('\n').filter((l) => l.split(' ')[4] !== '/proc');
  await writeFile(table, procLine.join('\n'));
  await s.unmountedOutside;
  await running.stop();
  expect(sent.at(-1)).toBe('STOPPING stopping: /proc was unmounted');
  expect(stops).toEqual([{ unmounted: true }]);
});

it('sends no READY for a mount point that is not mounted, and stops the daemon it got', async () => {
  const { sent, notifier } = recorder();
  const { daemon, stops } = standIn(dir);
  const s = supervise({ started: Promise.resolve(daemon), mountpoint: dir, notifier, log: silentLogger, mountTable: table });
  await expect(s.started).rejects.toThrow(`nothing is mounted at ${dir} after mounting`);
  expect(sent).toEqual([]);
  expect(stops).toHaveLength(1);
});

it('a SIGTERM stop unmounts as usual and reports STOPPING', async () => {
  const { sent, notifier } = recorder();
  const { daemon, stops } = standIn('/proc');
  const s = supervise({ started: Promise.resolve(daemon), mountpoint: '/proc', notifier, log: silentLogger, mountTable: table });
  await (await s.started).stop();
  expect(sent.at(-1)).toBe('STOPPING stopping: unmounting /proc');
  expect(stops).toEqual([{ unmounted: false }]);
});
