/**
 * The `assetfs` command line. Every failure a person can cause or fix (bad config, missing /dev/fuse
 * or libfuse, busy mount point) prints one line naming the fix and exits non-zero; stack traces only
 * with ASSETFS_DEBUG=1.
 */
import { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfig, ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import { startDaemon, type Daemon } from './run.js';
import { isMounted, unmount } from './unmount.js';
import { callControl, controlSocketPath } from './control.js';
import { formatBytes } from '../config/units.js';
import { notifierFromEnv } from './notify.js';
import { supervise } from './supervise.js';
import { applyMountOptions } from './mount-options.js';
import { isMountHelperCall } from './mount-helper.js';
import { registerCacheCommands } from './cache-cli.js';
import { allowOtherWarning } from './fuse-conf.js';
import { installCrashPolicy } from './crash-policy.js';
import { addLocateCommand } from './locate.js';

const DEFAULT_CONFIG = '/etc/assetfs/config.yaml';

/** An error whose message is already a complete, human line. */
export class UserError extends Error {}

function explain(e: unknown): string {
  if (e instanceof ConfigError) return e.message;
  const msg = redactText(e instanceof Error ? e.message : String(e));
  return msg.split('\n')[0] ?? msg;
}

/** `onError` also gets the line (the mount command reports it to systemd or the mount helper). */
async function withCleanExit(fn: () => Promise<void>, onError?: (line: string) => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    process.stderr.write(`assetfs: ${explain(e)}\n`);
    if (process.env.ASSETFS_DEBUG === '1' && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = e instanceof ConfigError ? 2 : 1;
    await onError?.(explain(e));
  }
}

/**
 * Run until SIGTERM/SIGINT, then stop cleanly; SIGHUP calls `reload`. The handlers are in place
 * before `started` settles: a signal that arrives while the daemon is still starting (its mount may
 * already be visible) stops it once it is up, instead of killing the process with the mount left
 * stale. Rejects with `started`'s error when it fails.
 */
function runUntilSignal<T extends { stop(): Promise<void> }>(
  log: Logger,
  started: Promise<T>,
  reload?: (running: T) => Promise<void>,
  /** Resolves when the daemon must stop without a signal (its mount was unmounted from outside). */
  stopWhen?: Promise<void>,
): Promise<void> {
  return new Promise((done, fail) => {
    let stopping = false;
    const onStop = (sig: NodeJS.Signals | 'umount') => {
      if (stopping) {
        log.warn({ sig }, 'second signal: exiting now');
        process.exit(130);
      }
      stopping = true;
      log.info({ sig }, 'shutting down');
      started.then((running) => running.stop()).then(done, (e: unknown) => {
        log.error({ err: e }, 'shutdown failed');
        process.exitCode = 1;
        done();
      });
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    void stopWhen?.then(() => {
      if (!stopping) onStop('umount');
    });
    if (reload) {
      process.on('SIGHUP', () => {
        log.info('SIGHUP: reloading credentials');
        started.then(reload).catch((e: unknown) => log.error({ err: e }, 'reload failed; keeping the old credentials'));
      });
    }
    started.catch(fail);
  });
}

/** fuse-native's native handles keep the event loop alive after unmount: exit explicitly, logs flushed. */
function exitNow(log: Logger): never {
  log.flush();
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
}

function mountpointOf(config: Config, arg: string | undefined): string {
  const mp = arg ?? config.mountpoint;
  if (!mp) throw new UserError('no mount point: give one on the command line or set `mountpoint` in the config');
  return resolve(mp);
}

export function buildProgram(): Command {
  const program = new Command();
  program.name('assetfs').description('Mount media-platform asset catalogs, S3 buckets and Azure Blob containers as one directory tree').showHelpAfterError();

  program
    .command('mount')
    .description('mount every configured source and run the configured syncs, in the foreground')
    .argument('[mountpoint]', 'where to mount (default: `mountpoint` from the config)')
    .option('-c, --config <file>', 'config file (YAML or JSON)', DEFAULT_CONFIG)
    .option('--force', 'clear a stale mount left by a killed daemon', false)
    .option('-o, --options <list>', 'mount options as mount(8) gives them (allow_other, ro, noatime…; _netdev, nofail… are ignored)')
    .action((mp: string | undefined, o: { config: string; force: boolean; options?: string }) => {
      // Reports READY/STATUS/STOPPING to systemd (NOTIFY_SOCKET) or the mount helper: docs/operations.md.
      const notifier = notifierFromEnv();
      let log: Logger | undefined;
      return withCleanExit(
        async () => {
          const config = applyMountOptions(await loadConfig(o.config), o.options);
          log = createLogger(config.log);
          const mountpoint = mountpointOf(config, mp);
          const warning = await allowOtherWarning({ allowOther: config.fuse.allowOther });
          if (warning) log.warn(warning);
          const { started, unmountedOutside } = supervise({ started: startDaemon({ config, log, mountpoint, force: o.force }), mountpoint, notifier, log });
          installCrashPolicy({ log, mountpoint, stop: () => started.then((d) => d.stop()) });
          await runUntilSignal(log, started, async (daemon: Daemon) => daemon.reload(await loadConfig(o.config)), unmountedOutside);
          await notifier.flushed();
          exitNow(log);
        },
        async (line) => {
          notifier.failed(line);
          await notifier.flushed();
          if (log) exitNow(log); // a mount that was up and stopped again leaves native handles behind
        },
      );
    });

  program
    .command('unmount')
    .description('unmount cleanly; also clears a stale mount left by a killed daemon')
    .argument('[mountpoint]', 'the mount point (default: `mountpoint` from --config)')
    .option('-c, --config <file>', 'config file whose mountpoint to unmount')
    .option('--if-stale', "only clear a stale mount (its daemon gone); leave a live one alone (the systemd unit's ExecStartPre)", false)
    .action((mp: string | undefined, o: { config?: string; ifStale: boolean }) =>
      withCleanExit(async () => {
        const target = mp ?? (o.config ? mountpointOf(await loadConfig(o.config), undefined) : undefined);
        if (!target) throw new UserError('give the mount point to unmount (or --config FILE)');
        if (o.ifStale && (await isMounted(resolve(target))) !== 'stale') return;
        await unmount(resolve(target));
      }),
    );

  program
    .command('check-config')
    .description('validate a config file and print every problem with its key path')
    .argument('<file>', 'config file (YAML or JSON)')
    .option('--online', 'also log in to every source and list its root: one line per source, with the fix when it fails', false)
    .action((file: string, o: { online: boolean }) =>
      withCleanExit(async () => {
        const config = await loadConfig(file);
        process.stdout.write(`${file}: OK (${config.sources.length} source${config.sources.length === 1 ? '' : 's'}: ${config.sources.map((s) => `${s.name} [${s.type}]`).join(', ')})\n`);
        const warning = await allowOtherWarning({ allowOther: config.fuse.allowOther });
        if (warning) process.stderr.write(`assetfs: warning: ${warning}\n`);
        if (!o.online) return;
        const { checkOnline } = await import('./check-online.js'); // the providers' SDKs only when asked
        const failed = await checkOnline(config, (line) => process.stdout.write(`${line}\n`));
        if (failed > 0) throw new UserError(`${failed} of ${config.sources.length} source${config.sources.length === 1 ? '' : 's'} failed the online check`);
      }),
    );

  program
    .command('status')
    .description("ask the running daemon: sources, cache use and hit rate, open files, last errors")
    .option('-c, --config <file>', 'config file of the daemon to ask', DEFAULT_CONFIG)
    .option('--socket <path>', 'control socket (default: <cacheDir>/control.sock from the config)')
    .option('--json', 'machine-readable output', false)
    .option('--watch', 'refresh every second until Ctrl-C', false)
    .option('--cluster', 'every host of the farm (shared tier): cache use, hit rates, uploads; hosts gone silent', false)
    .action((o: { config: string; socket?: string; json: boolean; watch: boolean; cluster: boolean }) =>
      withCleanExit(async () => {
        const socket = o.socket ?? controlSocketPath((await loadConfig(o.config)).cacheDir);
        for (;;) {
          const { fetchStatus, renderStatus, fetchCluster, renderCluster } = await import('./status.js'); // cli-progress only for status
          const s = o.cluster ? await fetchCluster(socket) : await fetchStatus(socket);
          const text = o.json ? JSON.stringify(s, null, 2) : o.cluster ? renderCluster(s as Awaited<ReturnType<typeof fetchCluster>>) : renderStatus(s as Awaited<ReturnType<typeof fetchStatus>>);
          process.stdout.write(o.watch && process.stdout.isTTY ? `\x1b[2J\x1b[H${text}\n` : `${text}\n`);
          if (!o.watch) return;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }),
    );

  for (const [name, what] of [['pin', 'keep a file or folder fully cached on disk (downloaded in the background, never evicted)'], ['unpin', 'let a pinned file or folder be evicted again']] as const) {
    program
      .command(name)
      .description(what)
      .argument('<path>', 'a file or folder inside the mount')
      .option('-c, --config <file>', 'config file of the daemon to ask', DEFAULT_CONFIG)
      .option('--socket <path>', 'control socket (default: <cacheDir>/control.sock from the config)')
      .action((path: string, o: { config: string; socket?: string }) =>
        withCleanExit(async () => {
          const socket = o.socket ?? controlSocketPath((await loadConfig(o.config)).cacheDir);
          const r = (await callControl(socket, 'POST', `/${name}`, { path: resolve(path) })) as { files?: number; bytes?: number; unpinned?: boolean };
          process.stdout.write(
            name === 'pin'
              ? `pinned ${path}: ${r.files} file${r.files === 1 ? '' : 's'}, ${formatBytes(r.bytes ?? 0)}; downloading in the background (see assetfs status)\n`
              : r.unpinned ? `unpinned ${path}\n` : `${path} was not pinned\n`,
          );
        }),
      );
  }

  program
    .command('retry')
    .description('retry failed uploads now; confirm remote deletions a watched folder holds back; with a path, upload a file kept for attention as it is')
    .argument('[path]', 'a file listed by `assetfs status` as needing attention (you vouch that it is complete)')
    .option('-c, --config <file>', 'config file of the daemon to ask', DEFAULT_CONFIG)
    .option('--socket <path>', 'control socket (default: <cacheDir>/control.sock from the config)')
    .action((path: string | undefined, o: { config: string; socket?: string }) =>
      withCleanExit(async () => {
        const socket = o.socket ?? controlSocketPath((await loadConfig(o.config)).cacheDir);
        const r = (await callControl(socket, 'POST', '/retry', path ? { path: resolve(path) } : undefined)) as { retried: number; attention?: number; deletions?: number; stillPaused?: number };
        if (path) process.stdout.write(r.retried ? `${path}: queued for upload as it is\n` : `${path} is not kept for attention (see assetfs status)\n`);
        else {
          const deleted = r.deletions ? `; ${r.deletions} held remote deletion${r.deletions === 1 ? '' : 's'} confirmed and done` : '';
          const paused = r.stillPaused ? `; ${r.stillPaused} watched folder${r.stillPaused === 1 ? '' : 's'} still paused (gone: see assetfs status)` : '';
          process.stdout.write(`${r.retried} failed upload${r.retried === 1 ? '' : 's'} queued for retry${deleted}${paused}\n`);
        }
        if (!path && r.attention) process.stdout.write(`${r.attention} written file${r.attention === 1 ? '' : 's'} need${r.attention === 1 ? 's' : ''} attention (assetfs status): \`assetfs retry <path>\` uploads one as it is, \`assetfs discard <path>\` deletes it\n`);
      }),
    );

  registerCacheCommands(program, (fn) => withCleanExit(fn), DEFAULT_CONFIG);

  program
    .command('discard')
    .description('delete a written file kept for attention (listed by assetfs status); the remote is left as it is')
    .argument('<path>', 'the file, as listed by assetfs status')
    .option('-c, --config <file>', 'config file of the daemon to ask', DEFAULT_CONFIG)
    .option('--socket <path>', 'control socket (default: <cacheDir>/control.sock from the config)')
    .action((path: string, o: { config: string; socket?: string }) =>
      withCleanExit(async () => {
        const socket = o.socket ?? controlSocketPath((await loadConfig(o.config)).cacheDir);
        const r = (await callControl(socket, 'POST', '/discard', { path: resolve(path) })) as { discarded: boolean };
        process.stdout.write(r.discarded ? `${path}: kept copy deleted\n` : `${path} is not kept for attention (see assetfs status)\n`);
      }),
    );

  addLocateCommand(program, { defaultConfig: DEFAULT_CONFIG, run: (fn) => withCleanExit(fn), usage: (line) => new UserError(line) });

  program
    .command('demo')
    .description('start local storage servers with sample media and mount them (default ./mnt)')
    .argument('[mountpoint]', 'where to mount', './mnt')
    .action((mp: string) =>
      withCleanExit(async () => {
        const log = createLogger({ level: process.env.ASSETFS_LOG_LEVEL ?? 'warn' });
        // The lab (emulators, storage servers, sample media) is a devDependency, loaded only for the demo.
        const { loadLab, startDemo } = await import('../demo/demo.js');
        const lab = await loadLab();
        process.stdout.write('assetfs demo: starting storage servers and seeding sample media…\n');
        const started = startDemo({ lab, mountpoint: resolve(mp), log }).then((demo) => {
          process.stdout.write(`${demo.tour}\n`);
          return demo;
        });
        await runUntilSignal(log, started);
        process.stdout.write('assetfs demo: stopped, nothing left mounted.\n');
        exitNow(log);
      }),
    );

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  // fuse3's mount.fuse runs `assetfs CONFIG MOUNTPOINT -o OPTIONS` for `mount -t fuse.assetfs` when
  // no /sbin/mount.fuse.assetfs exists: that is the mount helper's call (docs/operations.md).
  if (isMountHelperCall(argv.slice(2), program.commands.map((c) => c.name()))) {
    const { runMountHelper } = await import('./mount-helper.js');
    process.exitCode = await runMountHelper(argv.slice(2), 'assetfs');
    return;
  }
  await program.parseAsync(argv);
}
