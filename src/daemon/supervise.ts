/**
 * What a started daemon owes its supervisor (systemd or the mount helper) and the mount table
 * (docs/operations.md, "Readiness and status"):
 *
 * - READY only once the mount answers: a stat of the mount point reaches the daemon and shows a
 *   different device than its parent directory, and that device is listed in the mount table.
 * - a one-line STATUS summary, sent again whenever it changes (checked every `statusEveryMs`).
 * - STOPPING when shutdown begins.
 * - an outside `umount` (or `fusermount -u`) ends the daemon: libfuse's loop ends with the mount but
 *   tells the binding nothing, so the mount table is watched for the mount's device, and its
 *   disappearance resolves `unmountedOutside` (the CLI then stops as on SIGTERM, minus the unmount).
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../util/logger.js';
import type { Daemon } from './run.js';
import type { Notifier } from './notify.js';

export interface Supervised {
  /** The daemon, once its mount answers; its stop() reports STOPPING first. */
  started: Promise<Daemon>;
  /** Resolves when the mount was taken away from outside the daemon. */
  unmountedOutside: Promise<void>;
}

export interface SuperviseOptions {
  started: Promise<Daemon>;
  mountpoint: string;
  notifier: Notifier;
  log: Logger;
  statusEveryMs?: number;
  mountTablePollMs?: number;
  mountTable?: string;
}

/** `major:minor` of a device number, as /proc/self/mountinfo writes it (glibc's encoding of dev_t). */
export function deviceId(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** Whether a mount of device `id` (`major:minor`) is listed in a mountinfo text. */
export function listsDevice(mountinfo: string, id: string): boolean {
  return mountinfo.split('\n').some((line) => line.split(' ', 3)[2] === id);
}

/** The mount's device once its root answers through the kernel; throws a one-line error otherwise. */
export async function answeringDevice(mountpoint: string, mountTable = '/proc/self/mountinfo'): Promise<string> {
  let root, parent;
  try {
    [root, parent] = await Promise.all([stat(mountpoint, { bigint: true }), stat(dirname(mountpoint), { bigint: true })]);
  } catch (e) {
    throw new Error(`the mount at ${mountpoint} does not answer (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (root.dev === parent.dev) throw new Error(`nothing is mounted at ${mountpoint} after mounting`);
  const id = deviceId(root.dev);
  if (!listsDevice(await readFile(mountTable, 'utf8'), id)) throw new Error(`the mount at ${mountpoint} is not in the mount table`);
  return id;
}

/** One line for STATUS=: what is served and what is pending. */
export function summarize(d: Daemon): string {
  const sources = d.providers.size;
  const u = d.uploads.status();
  return (
    `serving ${sources} source${sources === 1 ? '' : 's'} at ${d.mountpoint}; ${d.vfs.openFiles} open file${d.vfs.openFiles === 1 ? '' : 's'}; ` +
    `uploads: ${u.queued.length} queued, ${u.active.length} uploading, ${u.failed.length} failed`
  );
}

export function supervise(o: SuperviseOptions): Supervised {
  let unmounted!: () => void;
  const unmountedOutside = new Promise<void>((r) => (unmounted = r));
  const started = o.started.then(async (d) => {
    let device: string;
    try {
      device = await answeringDevice(o.mountpoint, o.mountTable);
    } catch (e) {
      await d.stop();
      throw e;
    }
    let last = summarize(d);
    o.notifier.ready(last);
    o.log.info({ mountpoint: o.mountpoint, status: last }, 'ready');

    let supervising = true;
    let gone = false;
    const statusTimer = setInterval(() => {
      const now = summarize(d);
      if (now !== last) o.notifier.status((last = now));
    }, o.statusEveryMs ?? 15_000);
    statusTimer.unref();
    void (async () => {
      while (supervising) {
        await sleep(o.mountTablePollMs ?? 2_000, undefined, { ref: false });
        if (!supervising) return;
        const table = await readFile(o.mountTable ?? '/proc/self/mountinfo', 'utf8').catch(() => undefined);
        if (table !== undefined && !listsDevice(table, device) && supervising) {
          gone = true;
          o.log.info({ mountpoint: o.mountpoint }, 'unmounted from outside the daemon (umount): stopping');
          unmounted();
          return;
        }
      }
    })();

    const stop: Daemon['stop'] = (opts) => {
      supervising = false;
      clearInterval(statusTimer);
      o.notifier.stopping(gone ? `stopping: ${o.mountpoint} was unmounted` : `stopping: unmounting ${o.mountpoint}`);
      return d.stop({ ...opts, unmounted: gone || (opts?.unmounted ?? false) });
    };
    return { ...d, stop };
  });
  return { started, unmountedOutside };
}
