/**
 * One process-wide policy for errors nothing caught (installed by `assetfs mount`):
 *
 *  - An unhandled promise rejection is logged with its cause and the daemon keeps serving: it ends a
 *    task nobody awaited (a prefetch, a refresh, a background upload step), and no stack was unwound
 *    through code that expected to finish, so the state every other request sees is intact.
 *  - An uncaught exception that is a network or stream errno (EPIPE, ECONNRESET, … from a socket that
 *    lacked an error listener) is logged the same way: the socket is gone, nothing else is touched.
 *  - Any other uncaught exception (a TypeError, a failed assertion) unwound a stack half-way through
 *    something: the daemon's state can no longer be trusted. It logs the cause, prints one line,
 *    unmounts cleanly (bounded: the unmount itself comes first, so the mount point is free even if
 *    draining open files hangs) and exits with EX_SOFTWARE (70). A second such error while stopping
 *    exits at once.
 *
 * Tests inject these failures in a real daemon through `faultRoutes()` (see there).
 */
import type { Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import type { ControlHandler } from './control.js';

/** sysexits.h EX_SOFTWARE: an internal software error. */
export const EXIT_INTERNAL_ERROR = 70;

/** Codes of errors that end one connection or stream and nothing else. */
const CONNECTION_ERRORS = new Set([
  'EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN',
  'EAI_AGAIN', 'ENOTFOUND', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ABORT_ERR',
]);

export type Escape = 'rejection' | 'exception';

/** Whether the daemon may keep serving after `err` escaped as a `kind` (the policy above). */
export function safeToContinue(kind: Escape, err: unknown): boolean {
  if (kind === 'rejection') return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONNECTION_ERRORS.has(code);
}

export interface CrashPolicyDeps {
  log: Logger;
  /** What is mounted, for the message. */
  mountpoint: string;
  /** The daemon's clean stop (unmount first, then drain and close). */
  stop(): Promise<void>;
  /** Longest wait for stop() before exiting anyway. */
  stopTimeoutMs?: number;
  exit?: (code: number) => never;
  stderr?: (line: string) => void;
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return redactText(text.split('\n')[0] ?? text);
}

/** What the policy does with one escaped error (installCrashPolicy wires it to the process). */
export function crashHandler(d: CrashPolicyDeps): (kind: Escape, err: unknown) => void {
  const exit = d.exit ?? ((code: number) => process.exit(code));
  const stderr = d.stderr ?? ((line: string) => process.stderr.write(line));
  let fatal = false;
  return (kind, err) => {
    if (safeToContinue(kind, err)) {
      d.log.error({ err, kind }, `${kind === 'rejection' ? 'unhandled promise rejection' : 'uncaught connection error'} (${firstLine(err)}); the daemon keeps serving`);
      return;
    }
    d.log.fatal({ err, kind }, `uncaught exception (${firstLine(err)}): unmounting and exiting`);
    if (fatal) {
      d.log.flush();
      exit(EXIT_INTERNAL_ERROR); // a second one while stopping: stop now
      return;
    }
    fatal = true;
    stderr(`assetfs: internal error (${firstLine(err)}): unmounting ${d.mountpoint} and exiting; the log has the details\n`);
    const timer = setTimeout(() => {
      d.log.error('clean stop did not finish in time: exiting anyway');
      d.log.flush();
      exit(EXIT_INTERNAL_ERROR);
    }, d.stopTimeoutMs ?? 15_000);
    timer.unref();
    d.stop()
      .catch((e: unknown) => d.log.error({ err: e }, 'clean stop after an internal error failed'))
      .finally(() => {
        clearTimeout(timer);
        d.log.flush();
        exit(EXIT_INTERNAL_ERROR);
      });
  };
}

/** Installs the policy for this process; returns its removal. */
export function installCrashPolicy(d: CrashPolicyDeps): () => void {
  const handle = crashHandler(d);
  const onRejection = (reason: unknown) => handle('rejection', reason);
  const onException = (err: unknown) => handle('exception', err);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}

/**
 * The test-only fault hook, and its only entry: `POST /test/fault` on the control socket, present only
 * when the daemon was started with ASSETFS_TEST_FAULTS=1 (test/fuse/crash-policy.test.ts). Body
 * `{ kind }`: 'rejection' leaves a rejected promise unhandled, 'connection' throws an EPIPE error and
 * 'exception' a TypeError from a timer, as escaped errors would.
 */
export function faultRoutes(env: NodeJS.ProcessEnv = process.env): Record<string, ControlHandler> {
  if (env.ASSETFS_TEST_FAULTS !== '1') return {};
  return {
    'POST /test/fault': async (body) => {
      const kind = (body as { kind?: unknown } | undefined)?.kind;
      if (kind === 'rejection') void Promise.reject(new Error('injected rejection'));
      else if (kind === 'connection') setImmediate(() => { throw Object.assign(new Error('write EPIPE (injected)'), { code: 'EPIPE' }); });
      else if (kind === 'exception') setImmediate(() => { throw new TypeError('injected exception'); });
      else throw new Error('kind must be rejection, connection or exception');
      return { injected: kind };
    },
  };
}
