/**
 * The kernel's readahead for one FUSE mount: its backing device's `read_ahead_kb` in sysfs. A FUSE
 * mount starts at 128 KiB whatever the filesystem answers at init (the kernel only ever lowers it),
 * and the size of each read request follows it: at 128 KiB a sequential read is eight requests per
 * MiB, each a round trip through the JS thread. Only root may raise it.
 */
import { readFile, writeFile } from 'node:fs/promises';

/** The "major:minor" of the mount at `mountpoint` in /proc/self/mountinfo (the last one, if stacked). */
export async function mountDevice(mountpoint: string): Promise<string | undefined> {
  const escaped = mountpoint.replace(/\\/g, '\\134').replace(/ /g, '\\040').replace(/\t/g, '\\011').replace(/\n/g, '\\012');
  const lines = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n');
  let device: string | undefined;
  for (const line of lines) {
    const f = line.split(' ');
    if (f[4] === escaped) device = f[2];
  }
  return device;
}

/**
 * Set the readahead of the FUSE mount at `mountpoint` to `kb`; resolves with the value now in force,
 * or undefined when it cannot be known. Never throws: without the right to write it, the kernel's
 * default stays (`reason` says why).
 */
export async function setKernelReadahead(mountpoint: string, kb: number): Promise<{ kb?: number; reason?: string }> {
  try {
    const device = await mountDevice(mountpoint);
    if (!device) return { reason: 'mount not found in /proc/self/mountinfo' };
    const file = `/sys/class/bdi/${device}/read_ahead_kb`;
    try {
      await writeFile(file, `${kb}\n`);
    } catch (e) {
      return { kb: Number((await readFile(file, 'utf8')).trim()), reason: (e as NodeJS.ErrnoException).code ?? String(e) };
    }
    return { kb: Number((await readFile(file, 'utf8')).trim()) };
  } catch (e) {
    return { reason: (e as NodeJS.ErrnoException).code ?? String(e) };
  }
}
