/**
 * Who owns the mount's entries and what they may do with them (`fuse.uid`, `fuse.gid`,
 * `fuse.fileMode`, `fuse.dirMode`, `fuse.ignoreChmod`). Remote platforms store no owners or modes, so
 * every file reports the same owner and file mode, every directory the same dir mode; with
 * `fuse.allowOther` the kernel enforces them (default_permissions, src/fuse/adapter.ts).
 *
 * Invariants:
 *  - Every attribute the VFS hands out has passed through `stamp()`: no entry reports another mode.
 *  - chmod and chown never change anything. They are accepted without effect on an entry being
 *    created through the mount (staged, not uploaded yet: its mode comes from the mount, as the mode
 *    given to open(O_CREAT) and mkdir does; rsync -a fchmods each temporary file it creates and
 *    drops the file on EPERM, cp -p and shutil.copy chmod the copy they just wrote), and when they
 *    ask for what the entry already reports. Any other is refused with EPERM, or accepted without
 *    effect under `ignoreChmod`. Setting times (utimens: touch, cp -p, rsync -t) is accepted
 *    without effect.
 */
import type { Attr, AttrChange } from '../core/types.js';
import { FsError } from '../core/errors.js';

export interface Ownership {
  uid: number;
  gid: number;
  /** Permission bits (0o644), without the file type. */
  fileMode: number;
  dirMode: number;
  ignoreChmod: boolean;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/** The daemon's own user and group, 0644 and 0755: the defaults of the `fuse:` keys. */
export function daemonOwnership(): Ownership {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, fileMode: 0o644, dirMode: 0o755, ignoreChmod: false };
}

/** The `fuse:` section of the config as an Ownership (unset uid/gid: the daemon's own). */
export function ownershipFrom(fuse: { uid?: number; gid?: number; fileMode: number; dirMode: number; ignoreChmod: boolean }): Ownership {
  const own = daemonOwnership();
  return { uid: fuse.uid ?? own.uid, gid: fuse.gid ?? own.gid, fileMode: fuse.fileMode, dirMode: fuse.dirMode, ignoreChmod: fuse.ignoreChmod };
}

export class PermissionPolicy {
  constructor(private readonly ownership: Ownership) {}

  get owner(): { uid: number; gid: number } {
    return { uid: this.ownership.uid, gid: this.ownership.gid };
  }

  /** `a` with the configured mode of its kind. */
  stamp(a: Attr): Attr {
    const mode = a.kind === 'dir' ? S_IFDIR | this.ownership.dirMode : S_IFREG | this.ownership.fileMode;
    return a.mode === mode ? a : { ...a, mode };
  }

  /**
   * Throws EPERM for a chmod or chown of `current` (a stamped attribute) that would change it, unless
   * `ignoreChmod` or the entry is `beingCreated`; times are always accepted (and not stored).
   */
  check(path: string, current: Attr, change: AttrChange, beingCreated: boolean): void {
    if (change.kind === 'times' || this.ownership.ignoreChmod || beingCreated) return;
    if (change.kind === 'mode' && (change.mode & 0o7777) === (current.mode & 0o7777)) return;
    const keeps = (asked: number, own: number) => asked === -1 || asked === 0xffffffff || asked === own;
    if (change.kind === 'owner' && keeps(change.uid, this.ownership.uid) && keeps(change.gid, this.ownership.gid)) return;
    const [what, keys] = change.kind === 'mode' ? ['modes', 'fileMode/dirMode'] : ['owners', 'uid/gid'];
    throw new FsError('EPERM', `${path}: ${what} are fixed by the mount's configuration (fuse.${keys}); set fuse.ignoreChmod to accept chmod and chown without effect`);
  }
}
