/**
 * One pino root logger; components take `logger.child({ c: 'name' })`. Secrets are redacted twice over:
 * by key (pino's redact paths) and by content (URLs lose their query strings, bearer tokens vanish).
 */
import { pino, type Logger } from 'pino';
import { redactDeep, redactText } from './redact.js';

export type { Logger };

const REDACT_PATHS = [
  '*.password', '*.secret', '*.secretAccessKey', '*.accountKey', '*.sasToken', '*.token', '*.apiKey',
  '*.clientSecret', '*.jwt', '*.authorization', '*.headers.authorization', '*.headers["x-auth-token"]',
  '*.connectionString', 'password', 'token', 'secret',
];

export function createLogger(opts: { level?: string; file?: string } = {}): Logger {
  const destination = opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: false }) : pino.destination(2);
  return pino(
    {
      level: opts.level ?? process.env.ASSETFS_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: {
        log: (obj) => redactDeep(obj) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          const safe = args.map((a) => (typeof a === 'string' ? redactText(a) : a)) as typeof args;
          method.apply(this, safe);
        },
      },
      serializers: {
        err: (e: unknown) => {
          const err = pino.stdSerializers.err(e as Error);
          return { ...err, message: redactText(err.message ?? ''), stack: redactText(err.stack ?? '') };
        },
      },
    },
    destination,
  );
}

/** A logger that drops everything: the default in library code and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
