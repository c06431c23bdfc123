/**
 * Checks run before mounting. Each failure is a `PreflightError` whose message is ONE line naming the
 * fix: the CLI prints it as is, never a stack trace. The order is system first (device, privileges,
 * libfuse, fusermount), then the mount point, so the first line printed is the most basic problem.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, open, readFile, readdir, stat } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { findMount, isMounted, mountTarget, unmount } from './unmount.js';

export { isMounted, parseMountTable, unescapeMountField, type MountEntry } from './unmount.js';

export class PreflightError extends Error {
  override readonly name = 'PreflightError';
}

export interface PreflightOptions {
  /** Clear a stale mount left by a killed daemon instead of refusing to start. */
  force?: boolean;
  /** A file to read as the mount table instead of /proc/self/mountinfo (tests). */
  mountTable?: string;
}

export async function preflight(mountpoint: string, opts: PreflightOptions = {}): Promise<void> {
  await checkDevFuse();
  await checkPrivileges();
  await checkLibfuse();
  await checkFusermount();
  await checkMountpoint(mountpoint, opts);
}

/** Quote a path for a shell command shown to the user, only when it needs it. */
function sh(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

const LOAD_FUSE = 'load the fuse module (modprobe fuse) or run the container with --device /dev/fuse';

/** The FUSE device exists, has a driver behind it, and can be opened (or the setuid fusermount can). */
export async function checkDevFuse(device = '/dev/fuse'): Promise<void> {
  try {
    const fh = await open(device, constants.O_RDWR);
    await fh.close();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new PreflightError(`${device} is missing: ${LOAD_FUSE}`);
    if (code === 'ENODEV' || code === 'ENXIO') throw new PreflightError(`${device} has no FUSE driver behind it: ${LOAD_FUSE}`);
    if (code === 'EACCES' && process.getuid?.() !== 0 && (await setuidRoot(await fusermountBinary()))) return; // fusermount opens it for us
    if (code === 'EPERM' || code === 'EACCES') {
      throw new PreflightError(`${device} cannot be opened (${code === 'EPERM' ? 'operation not permitted' : 'permission denied'}): run as root, or run the container with --device /dev/fuse`);
    }
    throw new PreflightError(`${device} cannot be opened (${code ?? String(e)}): ${LOAD_FUSE}`);
  }
}

const CAP_SYS_ADMIN = 21n;

/** Root needs CAP_SYS_ADMIN to mount; anyone else needs a setuid-root fusermount that is allowed to work. */
export async function checkPrivileges(): Promise<void> {
  let status: string;
  try {
    status = await readFile('/proc/self/status', 'utf8');
  } catch {
    return; // no procfs: nothing to learn, the mount itself will say
  }
  const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)?.[1];
  if (process.getuid?.() === 0) {
    const capEff = field('CapEff');
    if (capEff && ((BigInt(`0x${capEff}`) >> CAP_SYS_ADMIN) & 1n) === 0n) {
      throw new PreflightError('mounting needs CAP_SYS_ADMIN, which this process lacks: run the container with --cap-add SYS_ADMIN --device /dev/fuse');
    }
    return;
  }
  const fusermount = await fusermountBinary();
  if (fusermount && !(await setuidRoot(fusermount))) {
    throw new PreflightError(`${fusermount} is not setuid root, so only root can mount: run as root, or reinstall it (apt-get install --reinstall fuse3)`);
  }
  if (field('NoNewPrivs') === '1') {
    throw new PreflightError('this process runs with no_new_privs (e.g. systemd NoNewPrivileges=yes), so the setuid fusermount cannot mount: run as root or drop that setting');
  }
}

/** Why the FUSE binding failed to load, as one line naming the fix. */
export function explainBindingLoadError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  if (/libfuse3\.so\.3/.test(msg)) return 'libfuse3.so.3 is missing: install it with `apt-get install fuse3`';
  return `the FUSE binding (fuse-native) could not be loaded (${msg.split('\n')[0]}): reinstall the npm packages (npm ci)`;
}

/**
 * Our fuse-native (vendor/fuse-native) links libfuse3.so.3 (Debian's libfuse3-3, installed with fuse3). `ldconfig -p` answers cheaply; when it
 * does not list the library (or cannot run), loading the binding is the authoritative test.
 */
export async function checkLibfuse(): Promise<void> {
  const listed = await new Promise<string>((done) => {
    execFile('ldconfig', ['-p'], { env: { ...process.env, PATH: `${process.env.PATH ?? ''}${delimiter}/sbin${delimiter}/usr/sbin` }, timeout: 10_000 }, (err, stdout) =>
      done(err ? '' : String(stdout)),
    );
  });
  if (/^\s*libfuse3\.so\.3\s/m.test(listed)) return;
  try {
    // The one import of the binding outside src/fuse/: only to tell "library missing" apart from the rest.
    await import('fuse-native');
  } catch (e) {
    throw new PreflightError(explainBindingLoadError(e));
  }
}

/**
 * Unmounting runs `fusermount -uz`, or `fusermount3 -uz` where only that is installed (our fuse-native,
 * vendor/fuse-native patch 7, and unmount.ts): without either, a stop would leave a stale mount.
 */
export async function checkFusermount(pathEnv = process.env.PATH ?? ''): Promise<void> {
  if ((await which('fusermount', pathEnv)) || (await which('fusermount3', pathEnv))) return;
  throw new PreflightError('fusermount is missing: install it with `apt-get install fuse3`');
}

/** The setuid helper that mounts and unmounts for users other than root: libfuse 3 runs fusermount3. */
async function fusermountBinary(): Promise<string | undefined> {
  return (await which('fusermount3')) ?? (await which('fusermount'));
}

export async function checkMountpoint(mountpoint: string, opts: PreflightOptions = {}): Promise<void> {
  const mp = resolve(mountpoint);
  // x-systemd.automount: systemd put an autofs mount here and runs us when the path is first used.
  // It is no busy mount point, and any look at it (statfs, stat, readdir) would trigger the very
  // mount being started and wait on it: none is made (docs/operations.md).
  if (await autofsAt(mp, opts.mountTable)) return;
  const state = await isMounted(mp, opts.mountTable);
  if (state === 'live') {
    const what = await findMount(mp);
    throw new PreflightError(
      `mount point ${mp} is busy: ${what ? `${what.fstype} from ${what.source}` : 'something'} is already mounted there; unmount it first (assetfs unmount ${sh(mp)}) or choose another mount point`,
    );
  }
  if (state === 'stale') {
    await clearStale(mp, opts);
    return checkMountpoint(mp, { ...opts, force: false });
  }

  let st;
  try {
    st = await stat(mp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new PreflightError(`mount point ${mp} does not exist: create it first (mkdir -p ${sh(mp)})`);
    if (code === 'ENOTDIR') throw new PreflightError(`mount point ${mp} is not a directory (part of its path is a file)`);
    if (code === 'ENOTCONN' || code === 'ECONNABORTED') {
      await clearStale(mp, opts);
      return checkMountpoint(mp, { ...opts, force: false });
    }
    if (code === 'EACCES') throw new PreflightError(`mount point ${mp} cannot be reached (permission denied)`);
    throw new PreflightError(`mount point ${mp} cannot be checked (${code ?? String(e)})`);
  }
  if (!st.isDirectory()) throw new PreflightError(`mount point ${mp} is not a directory: give an empty directory`);

  let entries: string[];
  try {
    entries = await readdir(mp);
  } catch (e) {
    throw new PreflightError(`mount point ${mp} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (entries.length > 0) {
    throw new PreflightError(`mount point ${mp} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}; the mount would hide them): use an empty directory`);
  }
  if (process.getuid?.() !== 0) {
    try {
      await access(mp, constants.W_OK);
    } catch {
      throw new PreflightError(`mount point ${mp} is not writable by this user, which fusermount requires: chown it to this user or choose another`);
    }
  }
}

/** Whether the topmost mount at `path` is autofs (a systemd automount point, an automounter's map). */
export async function autofsAt(path: string, mountTable?: string): Promise<boolean> {
  return (await findMount(path, mountTable).catch(() => undefined))?.fstype === 'autofs';
}

async function clearStale(mp: string, opts: PreflightOptions): Promise<void> {
  if (!opts.force) {
    throw new PreflightError(`mount point ${mp} is a stale mount left by a daemon that was killed: clear it with \`assetfs unmount ${sh(mp)}\` (or start with --force)`);
  }
  try {
    await unmount(await mountTarget(mp));
  } catch (e) {
    throw new PreflightError(`the stale mount at ${mp} could not be cleared: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The first executable `name` on `pathEnv`, like `command -v`. */
async function which(name: string, pathEnv = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of pathEnv.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function setuidRoot(file: string | undefined): Promise<boolean> {
  if (!file) return false;
  try {
    const st = await stat(file);
    return st.uid === 0 && (st.mode & 0o4000) !== 0;
  } catch {
    return false;
  }
}
