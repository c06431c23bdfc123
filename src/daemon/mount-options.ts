/**
 * The `-o` list that mount(8) gives a mount helper, and what assetfs does with each option
 * (docs/operations.md, "Mount options"). mount(8) hands its helper every option except `x-*`,
 * `auto`/`noauto`, `comment=` and a few loop/propagation ones; the userspace-only rest (`_netdev`,
 * `nofail`, `user`…) is meant for mount(8) and systemd, not for the file system, and libfuse would
 * refuse it. What remains goes to libfuse, which knows the generic flags (`ro`, `nosuid`, `noatime`…)
 * and its own options (`default_permissions`, `max_read=`…) and rejects anything else.
 */
import { LIBFUSE2_ONLY, type Config } from '../config/schema.js';

/** A bad `-o` list; the message is one complete line. */
export class MountOptionError extends Error {
  override readonly name = 'MountOptionError';
}

/** Meant for mount(8), fstab or systemd: never passed to the file system. */
const USERSPACE_ONLY = new Set([
  'defaults', 'auto', 'noauto', 'user', 'nouser', 'users', 'owner', 'group', 'nofail', '_netdev', 'nobootwait',
  // The kernel's defaults: nothing to ask for (and libfuse does not know atime and relatime by name).
  'rw', 'async', 'atime', 'relatime',
  // fuse3's mount.fuse adds these to every mount it passes on (unless nosuid/nodev were given). Remote
  // assets have no business being device nodes or setuid programs: the mount stays nosuid,nodev, as
  // libfuse mounts for root by default and as `assetfs mount` does.
  'dev', 'suid',
]);
const USERSPACE_PREFIXES = ['x-', 'comment=', 'helper=', 'uhelper='];

/** Options of fuse3's mount.fuse3 that change how it starts the file system; assetfs does not do that. */
const MOUNT_FUSE_ONLY: Record<string, string> = {
  setuid: 'setuid= (run the file system as another user) is an option of mount.fuse3 that assetfs does not support: mount as root',
  drop_privileges: 'drop_privileges is an option of mount.fuse3 that assetfs does not support',
};

/** The shape config `fuse.options` accepts (docs/config.md): a name, optionally `=` a plain value. */
const FUSE_OPTION = /^[a-z_]+(=[A-Za-z0-9_.-]+)?$/;

export interface MountOptions {
  /** Passed to libfuse, in order. */
  fuse: string[];
  /** `allow_other`: the config's `fuse.allowOther`. */
  allowOther: boolean;
  /** Dropped as userspace-only. */
  ignored: string[];
}

/** Split and sort a comma-separated `-o` list (or several, as `-o` may be repeated). */
export function parseMountOptions(lists: string | readonly string[]): MountOptions {
  const out: MountOptions = { fuse: [], allowOther: false, ignored: [] };
  for (const opt of (typeof lists === 'string' ? [lists] : lists).flatMap((l) => l.split(','))) {
    if (opt === '') continue;
    const name = opt.split('=', 1)[0]!;
    if (USERSPACE_ONLY.has(opt) || USERSPACE_PREFIXES.some((p) => opt.startsWith(p))) {
      out.ignored.push(opt);
    } else if (MOUNT_FUSE_ONLY[name]) {
      throw new MountOptionError(MOUNT_FUSE_ONLY[name]);
    } else if (LIBFUSE2_ONLY.has(name)) {
      throw new MountOptionError(`${opt} is a libfuse 2 option that libfuse 3 refuses: remove it from the mount options`);
    } else if (opt === 'allow_other') {
      out.allowOther = true;
    } else if (!FUSE_OPTION.test(opt)) {
      throw new MountOptionError(`mount option ${JSON.stringify(opt)} is not one FUSE takes (expected a name like noatime or name=value like max_read=131072)`);
    } else if (!out.fuse.includes(opt)) {
      out.fuse.push(opt);
    }
  }
  return out;
}

/** The config with a `-o` list applied: libfuse options appended to `fuse.options`, `allow_other` set. */
export function applyMountOptions(config: Config, lists: string | readonly string[] | undefined): Config {
  if (lists === undefined || lists.length === 0) return config;
  const o = parseMountOptions(lists);
  return {
    ...config,
    fuse: {
      ...config.fuse,
      allowOther: config.fuse.allowOther || o.allowOther,
      options: [...config.fuse.options, ...o.fuse.filter((x) => !config.fuse.options.includes(x))],
    },
  };
}
