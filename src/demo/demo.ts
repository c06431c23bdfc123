/**
 * `assetfs demo`: the platform lab (storage servers, the five platform emulators, sample media in all
 * seven sources), mounted by the same daemon code a real config uses. Everything it starts is stopped
 * by `stop()`; nothing is left mounted or running.
 *
 * The lab is the package @assetfs/lab (lab/ in this repository), a devDependency: the daemon does not
 * run with it, so it is loaded here, only for the demo, and a production install (`npm ci --omit=dev`)
 * has none (loadLab says so in one line).
 */
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigSchema, type Config } from '../config/schema.js';
import type { Logger } from '../util/logger.js';
import { startDaemon, type Daemon } from '../daemon/run.js';
import type { PlatformLab } from '@assetfs/lab/demo/lab.js';

export interface DemoHandle {
  readonly mountpoint: string;
  readonly tour: string;
  stop(): Promise<void>;
}

export type Lab = typeof import('@assetfs/lab/demo/lab.js');

/** The lab's entry module, as `assetfs demo` loads it. */
export const LAB_ENTRY = '@assetfs/lab/demo/lab.js';

/**
 * The lab package. A lab that cannot be found (a production install, or lab/dist not built) is an error
 * whose message is one line saying so and what to run; any other failure of the lab is passed on as it is.
 */
export async function loadLab(entry: string = LAB_ENTRY): Promise<Lab> {
  try {
    return (await import(entry)) as Lab;
  } catch (e) {
    // Only the lab itself missing: a module missing deeper down (a dependency of the lab) says which.
    const missing = e as NodeJS.ErrnoException;
    if (missing.code !== 'ERR_MODULE_NOT_FOUND' || !missing.message.includes('@assetfs/lab')) throw e;
    throw new Error(`the demo needs the lab (the package @assetfs/lab in lab/), which is not installed or not built: a production install (npm ci --omit=dev) leaves it out; run \`npm ci && npm run build\` in the assetfs directory`, { cause: e });
  }
}

export async function startDemo(opts: { lab: Lab; mountpoint: string; log: Logger; bigFileBytes?: number }): Promise<DemoHandle> {
  const { log, lab: { startPlatformLab } } = opts;
  const work = await mkdtemp(join(tmpdir(), 'assetfs-demo-'));
  let lab: PlatformLab | undefined;
  let daemon: Daemon | undefined;
  const createdMountpoint = !existsSync(opts.mountpoint);
  if (createdMountpoint) await mkdir(opts.mountpoint, { recursive: true });
  const stop = async () => {
    await daemon?.stop();
    await lab?.stop();
    await rm(work, { recursive: true, force: true });
    if (createdMountpoint) await rmdir(opts.mountpoint).catch(() => undefined);
  };
  try {
    lab = await startPlatformLab({ log, bigFileBytes: opts.bigFileBytes });
    const config: Config = ConfigSchema.parse({
      mountpoint: opts.mountpoint,
      cacheDir: join(work, 'cache'),
      cache: { memory: '256MiB' },
      metadataTtl: '10s',
      sources: lab.sources,
    });
    daemon = await startDaemon({ config, log, mountpoint: opts.mountpoint, force: true });
    const m = opts.mountpoint;
    const p = lab.paths;
    const tour = [
      `assetfs demo is mounted at ${m}: seven sources, each served by a local emulator. Try, in another shell:`,
      `  ls ${m}                                   # s3 blob wordbee mkio ams nomad mediahub`,
      `  ffprobe '${m}/nomad/${p.nomad.video}'`,
      `  ls -R ${m}/wordbee/pr7214                  # scope/document/segment/locale/relativePath`,
      `  cat ${m}/mkio/launch-teaser/subtitles/teaser.fr.srt`,
      `  ls -l '${m}/ams/Launch Teaser' ${m}/mediahub/pl-launch/deliveries/package.zip`,
      `  cat '${m}/nomad/${p.nomad.unreadable[0]!.path}'   # archived in Glacier: Permission denied (EACCES)`,
      `  dd if=${m}/s3/large/random-72MiB.bin bs=1M skip=40 count=4 | sha256sum   # fetches only those blocks`,
      `  assetfs status --socket ${join(work, 'cache', 'control.sock')}`,
      `Press Ctrl-C to stop; the mount, the emulators and the servers are cleaned up.`,
    ].join('\n');
    return { mountpoint: m, tour, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
