/**
 * Opening a file that is about to be uploaded, so that what is read is the file that was queued.
 *
 * The sync watcher checks a file (lstat, realpath) when it queues it, but the file can be swapped for
 * a symlink before the engine opens it, seconds or a restart later. So the open itself refuses:
 *  - O_NOFOLLOW: a last component that is a symlink fails with ELOOP instead of being followed;
 *  - fstat of the opened descriptor: only a regular file is read (not a FIFO, device or folder);
 *  - with `exactPath`, the descriptor's path (/proc/self/fd, Linux) must be the queued path, so a
 *    folder on the way that became a symlink is caught too. Watched-folder paths are real paths
 *    (the watcher resolves its root once), so any difference means the file lives elsewhere.
 */
import { constants, type Stats } from 'node:fs';
import { open, readlink, type FileHandle } from 'node:fs/promises';

/** The queued local file is no longer a regular file at that path: it is not uploaded. */
export class NotRegularFileError extends Error {}

export async function openForUpload(path: string, opts: { exactPath: boolean }): Promise<{ fh: FileHandle; st: Stats }> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new NotRegularFileError(`${path} is now a symlink: not followed, not uploaded`);
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new NotRegularFileError(`${path} is no longer a regular file: not uploaded`);
    if (opts.exactPath) {
      const real = await readlink(`/proc/self/fd/${fh.fd}`).catch(() => path);
      if (real !== path) throw new NotRegularFileError(`${path} now leads to ${real} (a folder on the way became a symlink): not uploaded`);
    }
    return { fh, st };
  } catch (e) {
    await fh.close();
    throw e;
  }
}
