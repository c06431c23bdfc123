/**
 * One pino root logger; components take `logger.child({ c: 'name' })`.
 *
 * Invariants:
 *  - Every error in a record, at any depth, is logged with its message, fields (code, status…), stack,
 *    cause and aggregated errors (util/error-text.ts).
 *  - Every record is redacted by content and by field name (util/redact.ts), the message too.
 *
 * Why the whole record goes through `formatters.log` and the `err` serializer is the identity: pino
 * calls `formatters.log` BEFORE its serializers, on the raw objects. A redacting copy made there of an
 * Error keeps only its enumerable fields, and an Error's `message`, `stack` and `cause` are not
 * enumerable: every logged error came out with an empty message. So errors are turned into plain
 * records inside that copy (redactDeep), and nothing after it may reinterpret them (pino's default
 * `err` serializer would fold the cause into the message and drop it). Child bindings are labels we
 * set (`c`, `source`): pino passes them only through serializers and the redact paths.
 *
 * Where lines go and how they look (docs/operations.md, "Logs"): stderr, or `log.file` rotated by size
 * (log-file.ts); JSON, or one readable line per record on a terminal (log-format.ts). The readable
 * form is made from the JSON line, after redaction, so both say exactly the same, secrets excepted.
 * Every destination is flushed synchronously on process exit (pino's exit hook on its SonicBoom
 * writers); `flushLogSync`/`logFatal` are for a fatal-error path that must not lose its last lines.
 */
import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Logger } from 'pino';
import { redactDeep, redactText } from './redact.js';
import { chooseFormat, prettyFormatter, type FormatInputs, type LogFormat } from './log-format.js';
import { RotatingLogFile } from './log-file.js';
import { stderrIsJournal } from './journal-stream.js';

export type { Logger };

const REDACT_PATHS = [
  '*.password', '*.secret', '*.secretAccessKey', '*.accountKey', '*.sasToken', '*.token', '*.apiKey',
  '*.clientSecret', '*.jwt', '*.authorization', '*.headers.authorization', '*.headers["x-auth-token"]',
  '*.connectionString', 'password', 'token', 'secret',
];

export interface LoggerOptions {
  level?: string;
  /** `auto` (readable on a terminal, JSON elsewhere), `pretty` or `json`; ASSETFS_LOG_FORMAT overrides it. */
  format?: LogFormat;
  /** Log to this file (created with its folder, 0600) instead of stderr. */
  file?: string;
  /** Rotate `file` before it passes this many bytes; 0: never (logrotate's business then). */
  maxSize?: number;
  /** Files of `file` kept, the live one included. */
  maxFiles?: number;
  /** Log to this stream instead (tests); it counts as no terminal unless `terminal` says otherwise. */
  destination?: DestinationStream;
  /** What `auto` decides by (tests); by default the process's stderr and environment. */
  terminal?: Pick<FormatInputs, 'isTTY' | 'journal' | 'env'>;
}

/** What the logger writes to: a pino destination that can also flush synchronously, and maybe reopen. */
interface Sink extends DestinationStream {
  flushSync?(): void;
  flush?(cb?: (err?: Error | null) => void): void;
  reopen?(): void;
  close?(): Promise<void>;
  /** Undoes what creating the sink registered on the process (the SIGHUP handler). */
  detach?(): void;
}

/** Readable lines written through `inner`, which does the writing, flushing and reopening. */
function prettySink(inner: Sink, colors: boolean): Sink {
  const format = prettyFormatter(colors);
  return {
    write: (line: string) => inner.write(format(line)),
    flushSync: () => inner.flushSync?.(),
    flush: (cb) => (inner.flush ? inner.flush(cb) : cb?.()),
    reopen: () => inner.reopen?.(),
    close: async () => inner.close?.(),
    detach: () => inner.detach?.(),
  };
}

/**
 * The log file: rotated by size, reopened on SIGHUP (so logrotate's `create` mode works too when
 * `maxSize` is 0), flushed synchronously on exit by its writers.
 */
function fileSink(file: string, maxSize: number, maxFiles: number): Sink {
  let out: RotatingLogFile;
  try {
    out = new RotatingLogFile({ file, maxSize, maxFiles });
  } catch (e) {
    throw new Error(`cannot open the log file ${file}: ${(e as Error).message}`, { cause: e });
  }
  const onHangup = () => out.reopen();
  process.on('SIGHUP', onHangup);
  return Object.assign(out, { detach: () => process.off('SIGHUP', onHangup) });
}

function sinkFor(opts: LoggerOptions): Sink {
  const env = process.env;
  const terminal = opts.terminal ?? (opts.destination ? { isTTY: false, journal: false, env } : { isTTY: isatty(2), journal: stderrIsJournal(env), env });
  // Decided first: a wrong ASSETFS_LOG_FORMAT is refused before any file is created.
  const chosen = chooseFormat({ format: opts.format ?? 'auto', toFile: !opts.destination && !!opts.file, ...terminal });
  let base: Sink;
  if (opts.destination) base = opts.destination;
  else if (opts.file) base = fileSink(opts.file, opts.maxSize ?? 10 * 1024 ** 2, opts.maxFiles ?? 5);
  else base = pino.destination(2);
  return chosen.pretty ? prettySink(base, chosen.colors) : base;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const destination = sinkFor(opts);
  return pino(
    {
      level: opts.level ?? process.env.ASSETFS_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: {
        log: (obj) => redactDeep(obj) as Record<string, unknown>,
      },
      serializers: {
        // In a record `err` is already a redacted plain record; an Error here came as a child binding
        // (pino formats bindings only through serializers and redact paths).
        err: (e: unknown) => (e instanceof Error ? redactDeep(e) : e),
        // The message, also when pino takes it from an error logged without one.
        msg: (m: unknown) => (typeof m === 'string' ? redactText(m) : m),
      },
    },
    destination,
  );
}

function sinkOf(log: Logger): Sink | undefined {
  return (log as unknown as Record<symbol, Sink | undefined>)[pino.symbols.streamSym];
}

/**
 * Writes out every line `log` (or its parent) has buffered, synchronously: for the last moments of a
 * process (a fatal error, right before `process.exit`). pino does this on the process's 'exit' event
 * too; this is for paths that want the lines out before they do anything else.
 */
export function flushLogSync(log: Logger): void {
  try {
    sinkOf(log)?.flushSync?.();
  } catch {
    // a destination that cannot flush (closed, still opening) has nothing more to give
  }
}

/** Logs `err` at fatal level and writes it, and everything before it, out before returning. */
export function logFatal(log: Logger, err: unknown, msg: string): void {
  log.fatal({ err }, msg);
  flushLogSync(log);
}

/** Flushes and closes the logger's file (tests; the daemon's logger lives as long as the process). */
export async function closeLogger(log: Logger): Promise<void> {
  const sink = sinkOf(log);
  sink?.detach?.();
  await sink?.close?.();
}

/** A logger that drops everything: the default in library code and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
