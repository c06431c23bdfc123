/**
 * The mount table and unmounting. Nothing here touches a mount path synchronously: a stat on a hung
 * FUSE mount can block its thread for as long as the daemon is stuck, so every probe is async and
 * bounded by a timer.
 */
import { execFile } from 'node:child_process';
import { readFile, realpath, statfs } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

export interface MountEntry {
  mountpoint: string;
  fstype: string;
  source: string;
}

/** A failure of `unmount`; the message is one complete line for a person. */
export class UnmountError extends Error {
  override readonly name = 'UnmountError';
}

/** Undo the kernel's octal escapes in mount table fields (`\040` space, `\011` tab, `\012` newline, `\134` backslash). */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Parse /proc/self/mountinfo (`36 35 98:0 /root /mnt opts - fstype source superopts`) or
 * /proc/mounts (`source mnt fstype opts 0 0`); the format is recognised per line.
 */
export function parseMountTable(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length >= 10 && /^\d+$/.test(f[0]!) && /^\d+:\d+$/.test(f[2]!)) {
      const sep = f.indexOf('-', 6);
      if (sep < 0 || sep + 2 >= f.length) continue;
      entries.push({ mountpoint: unescapeMountField(f[4]!), fstype: f[sep + 1]!, source: unescapeMountField(f[sep + 2]!) });
    } else if (f.length >= 4) {
      entries.push({ mountpoint: unescapeMountField(f[1]!), fstype: f[2]!, source: unescapeMountField(f[0]!) });
    }
  }
  return entries;
}

export const isFuseType = (fstype: string) => fstype === 'fuse' || fstype.startsWith('fuse.') || fstype === 'fuseblk';

/**
 * The path as the kernel lists it: symlinks in the parent resolved, the last component left alone
 * (resolving it would stat the mount itself, which fails with ENOTCONN on a stale mount).
 */
export async function mountTarget(path: string): Promise<string> {
  const abs = resolve(path);
  if (abs === '/') return abs;
  try {
    return join(await realpath(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

async function readMountTable(file?: string): Promise<MountEntry[]> {
  if (file) return parseMountTable(await readFile(file, 'utf8'));
  try {
    return parseMountTable(await readFile('/proc/self/mountinfo', 'utf8'));
  } catch {
    return parseMountTable(await readFile('/proc/mounts', 'utf8'));
  }
}

/** The topmost mount at `path`, if any. `mountTable` names a file to read instead of /proc (tests). */
export async function findMount(path: string, mountTable?: string): Promise<MountEntry | undefined> {
  const target = await mountTarget(path);
  const table = await readMountTable(mountTable);
  // Later lines are mounted on top of earlier ones at the same path.
  return table.filter((e) => e.mountpoint === target).at(-1);
}

const PROBE_TIMEOUT_MS = 3000;

/**
 * 'stale' when the mount's daemon is gone (ENOTCONN); a hung but connected daemon still counts as live.
 * statfs, not stat: the kernel answers stat of the mount root from cached attributes even after the
 * daemon died, while STATFS always goes to the daemon.
 */
async function probe(target: string): Promise<'live' | 'stale'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'live'>((r) => {
    timer = setTimeout(() => r('live'), PROBE_TIMEOUT_MS);
    timer.unref();
  });
  const statted = statfs(target).then(
    () => 'live' as const,
    (e: NodeJS.ErrnoException) => (e.code === 'ENOTCONN' || e.code === 'ECONNABORTED' ? ('stale' as const) : ('live' as const)),
  );
  try {
    return await Promise.race([statted, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether something is mounted at `path`, and if so whether its FUSE daemon is still there. */
export async function isMounted(path: string, mountTable?: string): Promise<'live' | 'stale' | false> {
  const entry = await findMount(path, mountTable);
  if (!entry) return false;
  return probe(await mountTarget(path));
}

interface RunResult {
  ok: boolean;
  /** The binary is not installed. */
  missing: boolean;
  detail: string;
}

function run(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((done) => {
    execFile(cmd, args, { timeout: 20_000, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      if (!err) return done({ ok: true, missing: false, detail: '' });
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      const firstLine = String(stderr).trim().split('\n')[0]?.replace(/^[\w.-]+:\s*/, '') || err.message.split('\n')[0] || 'failed';
      done({ ok: false, missing, detail: err.killed ? 'timed out' : firstLine });
    });
  });
}

/** `fusermount ARGS`, or `fusermount3`, or (as root) the equivalent `umount`; undefined when none is installed. */
async function fusermount(lazy: boolean, target: string): Promise<RunResult | undefined> {
  for (const bin of ['fusermount', 'fusermount3']) {
    const r = await run(bin, [lazy ? '-uz' : '-u', target]);
    if (!r.missing) return r;
  }
  if (process.getuid?.() === 0) {
    const r = await run('umount', lazy ? ['-l', target] : [target]);
    if (!r.missing) return r;
  }
  return undefined;
}

/**
 * Unmount the FUSE mount at `path`: `fusermount -u`, then lazily (`-uz`) when that fails, e.g. because
 * the mount is busy. A lazy unmount frees the path at once; files still open keep working until closed.
 * Also clears a stale mount left by a killed daemon. Refuses paths that are not mounted or not FUSE.
 */
export async function unmount(path: string): Promise<void> {
  const target = await mountTarget(path);
  const entry = await findMount(target);
  if (!entry) throw new UnmountError(`${target} is not mounted`);
  if (!isFuseType(entry.fstype)) throw new UnmountError(`${target} is not a FUSE mount (it is ${entry.fstype}): not unmounting it`);
  const stale = (await probe(target)) === 'stale';
  const before = (await readMountTable()).filter((e) => e.mountpoint === target).length;

  let result = await fusermount(stale, target);
  if (result && !result.ok && !stale) result = await fusermount(true, target);
  if (!result) throw new UnmountError('fusermount is missing: install it with `apt-get install fuse3`');
  if (!result.ok) throw new UnmountError(`could not unmount ${target}: ${result.detail.replace(`failed to unmount ${target}: `, '')}`);

  const after = (await readMountTable()).filter((e) => e.mountpoint === target).length;
  if (after >= before) throw new UnmountError(`could not unmount ${target}: it is still mounted`);
}
