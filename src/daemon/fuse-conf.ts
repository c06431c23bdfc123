/**
 * `fuse.allowOther` for a daemon that is not root needs `user_allow_other` in /etc/fuse.conf: the
 * setuid fusermount3 refuses allow_other otherwise, and the mount fails. `check-config` and `mount`
 * say so in one line beforehand.
 */
import { readFile } from 'node:fs/promises';

export interface AllowOtherCheck {
  allowOther: boolean;
  /** The daemon's uid (default: this process's). */
  uid?: number;
  /** Default /etc/fuse.conf. */
  fuseConf?: string;
}

/** The one-line warning, or undefined when nothing is wrong. */
export async function allowOtherWarning(o: AllowOtherCheck): Promise<string | undefined> {
  if (!o.allowOther) return undefined;
  if ((o.uid ?? process.getuid?.() ?? 0) === 0) return undefined; // root may always mount with allow_other
  const file = o.fuseConf ?? '/etc/fuse.conf';
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'cannot be read';
    return `fuse.allowOther is set but ${file} ${why}, so the mount will fail for a daemon not running as root: create it with the line user_allow_other (or run as root)`;
  }
  // fusermount3 takes the first word of each line; '#' starts a comment.
  const enabled = text.split('\n').some((line) => line.replace(/#.*/, '').trim() === 'user_allow_other');
  if (enabled) return undefined;
  return `fuse.allowOther is set but ${file} lacks user_allow_other, so the mount will fail for a daemon not running as root: add the line user_allow_other to ${file} (or run as root)`;
}
