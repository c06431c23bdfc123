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
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { redactDeep, redactText } from './redact.js';

export type { Logger };

const REDACT_PATHS = [
  '*.password', '*.secret', '*.secretAccessKey', '*.accountKey', '*.sasToken', '*.token', '*.apiKey',
  '*.clientSecret', '*.jwt', '*.authorization', '*.headers.authorization', '*.headers["x-auth-token"]',
  '*.connectionString', 'password', 'token', 'secret',
];

export interface LoggerOptions {
  level?: string;
  /** Log to this file (created with its folder) instead of stderr. */
  file?: string;
  /** Log to this stream instead (tests). */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const destination = opts.destination ?? (opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: false }) : pino.destination(2));
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

/** A logger that drops everything: the default in library code and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
