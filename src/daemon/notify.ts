/**
 * The daemon's reports to whoever started it (docs/operations.md, "Readiness and status"):
 *
 * - systemd, for a `Type=notify` unit: only when NOTIFY_SOCKET is set. Sent by systemd's own
 *   `systemd-notify` (one short process per report, in order), not by a datagram client of ours.
 *   `--pid` names this process, so the message is this daemon's (root may send with its pid;
 *   otherwise the unit's NotifyAccess=all admits the helper process). The socket is read once and
 *   removed from the environment, as sd_notify(3) advises, so that children do not report for us.
 * - the mount helper (mount.assetfs), which must not return before the mount is up: it passes the
 *   write end of a pipe as fd ASSETFS_NOTIFY_FD and reads `READY=1` or `ERROR=<one line>` from it.
 *   The fd is closed after that first answer; later reports are systemd's only.
 */
import { execFile } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';

export const NOTIFY_FD_ENV = 'ASSETFS_NOTIFY_FD';

export interface Notifier {
  /** The mount is up and answers; `status` is the one-line summary. */
  ready(status: string): void;
  /** A new one-line summary. */
  status(status: string): void;
  /** Shutdown has begun. */
  stopping(status: string): void;
  /** Starting failed; `line` says why. */
  failed(line: string): void;
  /** Resolves once every report so far has been handed over. */
  delivered(): Promise<void>;
}

/** One line, as sd_notify fields and the helper protocol need: no newlines, bounded length. */
export function oneLine(text: string): string {
  const line = text.replace(/\s*\n\s*/g, '; ').trim();
  return line.length > 400 ? `${line.slice(0, 399)}…` : line;
}

/** Sends sd_notify fields through `systemd-notify`, one process per report, in order. */
export class SystemdNotifier implements Notifier {
  private chain: Promise<void> = Promise.resolve();
  private warned = false;

  /** `warn` gets one line the first time a report cannot be sent (default: stderr, i.e. the journal). */
  constructor(
    private readonly socket: string,
    private readonly warn: (line: string) => void = (line) => process.stderr.write(`assetfs: warning: ${line}\n`),
    private readonly command = 'systemd-notify',
  ) {}

  private send(fields: string[]): void {
    const args = [`--pid=${process.pid}`, ...fields];
    const env = { ...process.env, NOTIFY_SOCKET: this.socket };
    this.chain = this.chain.then(
      () =>
        new Promise<void>((done) => {
          execFile(this.command, args, { env, timeout: 15_000, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
            if (err && !this.warned) {
              this.warned = true;
              const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${this.command} is not installed` : oneLine(String(stderr)) || err.message;
              this.warn(`cannot report to systemd (${why}): a Type=notify unit will time out waiting for READY=1`);
            }
            done();
          });
        }),
    );
  }

  ready(status: string) {
    this.send(['READY=1', `STATUS=${oneLine(status)}`]);
  }
  status(status: string) {
    this.send([`STATUS=${oneLine(status)}`]);
  }
  stopping(status: string) {
    this.send(['STOPPING=1', `STATUS=${oneLine(status)}`]);
  }
  failed(line: string) {
    this.send([`STATUS=failed: ${oneLine(line)}`]);
  }
  delivered() {
    return this.chain;
  }
}

/** Answers the mount helper once, on the pipe it handed down, then closes it. */
export class HelperPipeNotifier implements Notifier {
  private fd: number | undefined;

  constructor(fd: number) {
    this.fd = fd;
  }

  private answer(line: string): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      writeSync(fd, `${line}\n`);
    } catch {
      // The helper is gone (killed or interrupted): nobody is waiting for the answer.
    }
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }

  ready() {
    this.answer('READY=1');
  }
  status() {}
  stopping() {
    // Stopping before the first answer means starting did not finish: say so rather than nothing.
    this.answer('ERROR=stopped before the mount was up');
  }
  failed(line: string) {
    this.answer(`ERROR=${oneLine(line)}`);
  }
  delivered() {
    return Promise.resolve();
  }
}

class Fanout implements Notifier {
  constructor(private readonly sinks: Notifier[]) {}
  ready(s: string) {
    for (const n of this.sinks) n.ready(s);
  }
  status(s: string) {
    for (const n of this.sinks) n.status(s);
  }
  stopping(s: string) {
    for (const n of this.sinks) n.stopping(s);
  }
  failed(s: string) {
    for (const n of this.sinks) n.failed(s);
  }
  async delivered() {
    await Promise.all(this.sinks.map((n) => n.delivered()));
  }
}

/**
 * The reports this process owes, from its environment: systemd's when NOTIFY_SOCKET is set, the
 * mount helper's when ASSETFS_NOTIFY_FD is. Both variables are removed from the environment so that
 * processes the daemon starts do not report in its name.
 */
export function notifierFromEnv(env: NodeJS.ProcessEnv = process.env): Notifier {
  const sinks: Notifier[] = [];
  if (env.NOTIFY_SOCKET) sinks.push(new SystemdNotifier(env.NOTIFY_SOCKET));
  const fd = Number(env[NOTIFY_FD_ENV]);
  if (Number.isInteger(fd) && fd > 2) sinks.push(new HelperPipeNotifier(fd));
  delete env.NOTIFY_SOCKET;
  delete env[NOTIFY_FD_ENV];
  return new Fanout(sinks);
}
