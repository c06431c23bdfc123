/**
 * How log lines look: JSON (one pino record per line) for machines, one readable line for people.
 *
 * `auto` picks by where the lines go (docs/operations.md, "Logs"):
 *  - a terminal (stderr is a TTY): readable lines, coloured unless NO_COLOR/TERM=dumb say otherwise;
 *  - the journal (systemd sets JOURNAL_STREAM to stderr's `dev:ino`), a pipe, a file: JSON.
 * `ASSETFS_LOG_FORMAT` overrides the config's `log.format` for one run.
 *
 * Readable lines are formatted in the logging thread by pino-pretty's formatter, not by a transport
 * worker: a worker thread costs about 40 MiB of resident memory for the daemon's whole life, and
 * its lines only reach the terminal at exit if the worker is still there to drain them. Formatting
 * costs tens of microseconds per line, and the read path logs only failures (docs/operations.md).
 */
import { createRequire } from 'node:module';
import { describeError } from './error-text.js';

/** pino-pretty (about 0.1 s to load) only when lines are to be readable; `status` and the journal never need it. */
const loadPretty = (): typeof import('pino-pretty') => createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');

export const LOG_FORMATS = ['auto', 'pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What decides the format: each one injectable (tests), taken from the process otherwise. */
export interface FormatInputs {
  /** The config's `log.format`. */
  format: LogFormat;
  /** Lines go to a log file rather than stderr. */
  toFile: boolean;
  /** stderr is a terminal. */
  isTTY: boolean;
  /** stderr is the journal (JOURNAL_STREAM names its `dev:ino`). */
  journal: boolean;
  env: NodeJS.ProcessEnv;
}

export interface ChosenFormat {
  pretty: boolean;
  colors: boolean;
}

/** The format the environment asks for, over the config's; a wrong value is an error, not ignored. */
function requested(i: FormatInputs): LogFormat {
  const forced = i.env.ASSETFS_LOG_FORMAT;
  if (forced === undefined || forced === '') return i.format;
  if (!(LOG_FORMATS as readonly string[]).includes(forced)) {
    throw new Error(`ASSETFS_LOG_FORMAT: expected ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(forced)}`);
  }
  return forced as LogFormat;
}

/**
 * Colours on a terminal, following what Node and most CLI tools do: FORCE_COLOR (any value but
 * `0`/`false`) turns them on even without a terminal, NO_COLOR (non-empty, no-color.org),
 * NODE_DISABLE_COLORS and TERM=dumb turn them off.
 */
export function colorsWanted(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false';
  if (env.NO_COLOR) return false;
  if (env.NODE_DISABLE_COLORS !== undefined) return false;
  if (env.TERM === 'dumb') return false;
  return isTTY;
}

export function chooseFormat(i: FormatInputs): ChosenFormat {
  const want = requested(i);
  if (i.toFile) return { pretty: want === 'pretty', colors: false }; // escape codes have no place in a file
  const pretty = want === 'pretty' || (want === 'auto' && i.isTTY && !i.journal);
  return { pretty, colors: pretty && colorsWanted(i.env, i.isTTY) };
}

/** Record fields shown in the line's prefix or as the error summary, not in the trailing JSON. */
const SHOWN = ['pid', 'hostname', 'c', 'source', 'err'];

type Rec = Record<string, unknown>;

/**
 * One line from a record: `2026-12-05 06:12:03.123 WARN: [vfs s3] read failed: <why> {"op":"read",…}`.
 * The error appears as its one-line reason with every cause (error-text.ts); its stack stays in the
 * JSON format. The record was redacted before it was serialized, so nothing here can reveal a secret.
 */
export function prettyFormatter(colors: boolean): (line: string) => string {
  return loadPretty().prettyFactory({
    colorize: colors,
    singleLine: true,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: SHOWN.join(','),
    errorLikeObjectKeys: [],
    messageFormat: (log: Rec, messageKey: string) => {
      const label = [log.c, log.source].filter((v) => typeof v === 'string' && v).join(' ');
      const msg = typeof log[messageKey] === 'string' ? (log[messageKey] as string) : '';
      let text = msg;
      if (log.err !== undefined) {
        const why = describeError(log.err);
        text = !msg ? why : why === msg ? msg : why.startsWith(`${msg}: `) ? why : `${msg}: ${why}`;
        const code = (log.err as Rec | null)?.code;
        if (typeof code === 'string' && !text.includes(code)) text += ` (${code})`;
      }
      return label ? `[${label}] ${text}` : text;
    },
  }) as (line: string) => string;
}
