/**
 * `mount.assetfs`: the mount(8) helper (docs/operations.md, "Mounting with mount(8) and fstab").
 *
 * How it is reached: for `-t fuse.assetfs`, util-linux's mount runs `/sbin/mount.fuse.assetfs SOURCE
 * TARGET [-sfnv] [-N NS] -o OPTIONS` when that exists (a link to mount.assetfs), and otherwise
 * fuse3's `/sbin/mount.fuse`, which drops `_netdev`, `nofail`, `user`… and runs `sh -c "assetfs SOURCE
 * TARGET -o OPTIONS"`: the `assetfs` command hands that form to this module too. For `-t assetfs`
 * mount runs `/sbin/mount.assetfs` with the same arguments plus `-t`.
 *
 * mount(8) waits for its helper and takes its exit status: this starts the daemon (`assetfs mount`)
 * in its own session with cwd `/`, waits on a pipe until the daemon says its mount answers or why it
 * failed, and exits 0, or non-zero with one line on stderr. The daemon then lives on alone: its
 * stderr is the journal when the helper's was (fstab mounts under systemd), otherwise the config's
 * `log.file`, or `<cacheDir>/assetfs.log`.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { basename, delimiter, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { MountOptionError, parseMountOptions } from './mount-options.js';
import { NOTIFY_FD_ENV } from './notify.js';
import { stderrIsJournal } from '../util/journal-stream.js';

/** mount(8)'s exit statuses (mount(8), "RETURN CODES"), which a helper's status becomes. */
export const EXIT = { ok: 0, usage: 1, failure: 32 } as const;

const TYPES = new Set(['fuse.assetfs', 'assetfs', 'fuseblk.assetfs']);

export class UsageError extends Error {}

export interface HelperArgs {
  source: string;
  mountpoint: string;
  /** The `-o` lists, as given. */
  options: string[];
  /** `-f`: do everything but mount. */
  fake: boolean;
  verbose: boolean;
}

export const USAGE = 'usage: mount.assetfs CONFIG MOUNTPOINT [-o OPTIONS], or mount -t fuse.assetfs CONFIG MOUNTPOINT';

/** `SOURCE TARGET [-sfnv] [-N NS] [-o OPTS]… [-t TYPE]`, the helper's argument convention in mount(8). */
export function parseHelperArgs(argv: readonly string[]): HelperArgs {
  const positional: string[] = [];
  const out: HelperArgs = { source: '', mountpoint: '', options: [], fake: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`option ${a} needs a value`);
      return v;
    };
    if (a === '-o') out.options.push(value());
    else if (a.startsWith('-o') && a.length > 2) out.options.push(a.slice(2));
    else if (a === '-t') {
      const type = value();
      if (!TYPES.has(type)) throw new UsageError(`type ${type} is not assetfs's (use -t fuse.assetfs)`);
    } else if (a === '-N') throw new UsageError('mounting into another mount namespace (-N) is not supported');
    else if (/^-[sfnv]+$/.test(a)) {
      // -s sloppy and -n no-mtab mean nothing here: libfuse judges the options, and nothing writes /etc/mtab.
      if (a.includes('f')) out.fake = true;
      if (a.includes('v')) out.verbose = true;
    } else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 2) throw new UsageError(positional.length < 2 ? 'a config file and a mount point are needed' : `too many arguments: ${positional.slice(2).join(' ')}`);
  [out.source, out.mountpoint] = positional as [string, string];
  return out;
}

/**
 * Whether `assetfs ARGS` is mount.fuse3's call (`assetfs SOURCE TARGET -o OPTIONS`) rather than a
 * subcommand: the first argument is no command but a config file's path.
 */
export function isMountHelperCall(args: readonly string[], commands: readonly string[]): boolean {
  const first = args[0];
  if (!first || first.startsWith('-') || commands.includes(first) || first === 'help') return false;
  return (first.includes('/') || /\.(ya?ml|json)$/i.test(first)) && args.length >= 2;
}

/** Secrets for the config's `${VAR}`: `<dir>/<name>.env` beside `<dir>/<name>.yaml`, as the systemd unit reads. */
export async function envFileFor(config: string): Promise<Record<string, string>> {
  const file = join(dirname(config), `${basename(config, extname(config))}.env`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return Object.fromEntries(Object.entries(parseEnv(text)).filter((kv): kv is [string, string] => kv[1] !== undefined));
}

/** The `assetfs` command beside this module (dist/src/daemon/ → bin/assetfs.js). */
function assetfsBin(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'assetfs.js');
}

interface Outcome {
  ok: boolean;
  line: string;
}

/** Runs the helper; resolves with the exit status after printing at most one line. */
export async function runMountHelper(argv: readonly string[], prog = 'mount.assetfs'): Promise<number> {
  const fail = (code: number, line: string) => {
    process.stderr.write(`${prog}: ${line}\n`);
    return code;
  };
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(`${USAGE}\nSee docs/operations.md: the helper's link, fstab lines, options and logs.\n`);
    return EXIT.ok;
  }
  let args: HelperArgs;
  try {
    args = parseHelperArgs(argv);
    parseMountOptions(args.options); // a bad list fails here, before anything starts
  } catch (e) {
    if (e instanceof UsageError) return fail(EXIT.usage, `${e.message} (${USAGE})`);
    if (e instanceof MountOptionError) return fail(EXIT.usage, e.message);
    throw e;
  }
  const source = resolve(args.source);
  const mountpoint = resolve(args.mountpoint);

  let env: NodeJS.ProcessEnv;
  let logFile: string;
  try {
    env = { ...process.env, ...(await envFileFor(source)) };
    const config = await loadConfig(source, env);
    logFile = config.log.file ?? join(config.cacheDir, 'assetfs.log');
  } catch (e) {
    if (e instanceof ConfigError) {
      const more = e.problems.length > 1 ? ` (and ${e.problems.length - 1} more: assetfs check-config ${source})` : '';
      return fail(EXIT.failure, `${e.message.split('\n')[0]}${more}`);
    }
    if (e instanceof UsageError) return fail(EXIT.failure, e.message);
    throw e;
  }
  if (args.fake) return EXIT.ok;

  const journal = stderrIsJournal(process.env);
  let log: Awaited<ReturnType<typeof open>> | undefined;
  if (!journal) {
    try {
      await mkdir(dirname(logFile), { recursive: true, mode: 0o700 });
      log = await open(logFile, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    } catch (e) {
      return fail(EXIT.failure, `cannot open the log file ${logFile} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
  }
  const daemonEnv: NodeJS.ProcessEnv = {
    ...env,
    // bin/assetfs.js finds node through `env`: the node running this helper, whatever PATH mount(8) has.
    PATH: [dirname(process.execPath), env.PATH ?? '/usr/local/bin:/usr/bin:/bin'].join(delimiter),
    [NOTIFY_FD_ENV]: '3',
  };
  delete daemonEnv.NOTIFY_SOCKET; // the daemon is not the main process of whatever unit runs mount(8)
  const daemonArgs = ['mount', '--config', source, ...(args.options.length ? ['-o', args.options.join(',')] : []), mountpoint];
  const sink = log ? log.fd : 'inherit';
  const child = spawn(assetfsBin(), daemonArgs, { cwd: '/', env: daemonEnv, detached: true, stdio: ['ignore', sink, sink, 'pipe'] });
  await log?.close(); // the daemon has its own copy

  let interrupt: (() => void) | undefined;
  const outcome = await new Promise<Outcome>((done) => {
    let answer = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => {
      answer += d;
      const line = answer.split('\n', 1)[0]!;
      if (!answer.includes('\n')) return;
      if (line === 'READY=1') done({ ok: true, line: '' });
      else done({ ok: false, line: line.replace(/^ERROR=/, '') });
    });
    pipe.on('error', () => undefined);
    child.once('error', (e) => done({ ok: false, line: `cannot start ${assetfsBin()} (${(e as NodeJS.ErrnoException).code ?? e.message})` }));
    // 'close', not 'exit': the daemon's last answer may still be in the pipe when it has exited.
    child.once('close', (code, signal) =>
      done({ ok: false, line: `the daemon ${signal ? `was killed (${signal})` : `exited with status ${code}`} before mounting; see ${journal ? 'the journal' : logFile}` }),
    );
    interrupt = () => {
      child.kill('SIGTERM'); // it stops cleanly even while starting
      done({ ok: false, line: 'interrupted: the daemon was told to stop' });
    };
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
  });
  process.off('SIGINT', interrupt!);
  process.off('SIGTERM', interrupt!);
  (child.stdio[3] as NodeJS.ReadableStream & { destroy(): void }).destroy();
  child.unref();
  if (!outcome.ok) {
    // libfuse's own complaint went to the log; name what it was given.
    const given = parseMountOptions(args.options).fuse;
    return fail(EXIT.failure, /bad options/.test(outcome.line) && given.length ? `${outcome.line} (mount options passed to FUSE: ${given.join(',')})` : outcome.line);
  }
  if (args.verbose) process.stdout.write(`${prog}: ${source} mounted at ${mountpoint} (daemon pid ${child.pid}; logs: ${journal ? 'the journal' : logFile})\n`);
  return EXIT.ok;
}
