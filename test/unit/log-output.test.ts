/**
 * How log lines look: one readable line per record on a terminal (coloured unless the environment
 * says otherwise), JSON for the journal, pipes and files; secrets gone from both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chooseFormat, type FormatInputs } from '../../src/util/log-format.js';
import { createLogger, type LoggerOptions } from '../../src/util/logger.js';
import { TransientError } from '../../src/core/errors.js';
import { parseConfigText } from '../../src/config/load.js';
import { MARKER, SECRETS } from '../helpers/secret-forms.js';

const pexec = promisify(execFile);
const ANSI = /\x1b\[[0-9;]*m/;
const tty = (env: NodeJS.ProcessEnv = {}) => ({ isTTY: true, journal: false, env });

/** The lines a logger built with `opts` writes, synchronously captured. */
function capture(opts: LoggerOptions, write: (log: ReturnType<typeof createLogger>) => void): string[] {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', ...opts, destination: { write: (l: string) => void lines.push(l) } });
  write(log);
  return lines;
}

describe('chooseFormat: what decides between readable lines and JSON', () => {
  const base: FormatInputs = { format: 'auto', toFile: false, isTTY: false, journal: false, env: {} };
  const cases: Array<[string, Partial<FormatInputs>, { pretty: boolean; colors: boolean }]> = [
    ['a terminal', { isTTY: true }, { pretty: true, colors: true }],
    ['a terminal with NO_COLOR', { isTTY: true, env: { NO_COLOR: '1' } }, { pretty: true, colors: false }],
    ['a terminal with an empty NO_COLOR (no-color.org: only a non-empty value counts)', { isTTY: true, env: { NO_COLOR: '' } }, { pretty: true, colors: true }],
    ['a terminal with TERM=dumb', { isTTY: true, env: { TERM: 'dumb' } }, { pretty: true, colors: false }],
    ['a terminal with FORCE_COLOR=0', { isTTY: true, env: { FORCE_COLOR: '0' } }, { pretty: true, colors: false }],
    ['a terminal with NO_COLOR and FORCE_COLOR', { isTTY: true, env: { NO_COLOR: '1', FORCE_COLOR: '1' } }, { pretty: true, colors: true }],
    ['a pipe', {}, { pretty: false, colors: false }],
    ['the journal (JOURNAL_STREAM is stderr)', { journal: true, isTTY: true }, { pretty: false, colors: false }],
    ['a log file', { toFile: true, isTTY: true }, { pretty: false, colors: false }],
    ['a log file, format: pretty', { toFile: true, isTTY: true, format: 'pretty', env: { FORCE_COLOR: '1' } }, { pretty: true, colors: false }],
    ['a terminal, format: json', { isTTY: true, format: 'json' }, { pretty: false, colors: false }],
    ['a pipe, format: pretty', { format: 'pretty' }, { pretty: true, colors: false }],
    ['a pipe, format: pretty, FORCE_COLOR', { format: 'pretty', env: { FORCE_COLOR: '1' } }, { pretty: true, colors: true }],
    ['a terminal, ASSETFS_LOG_FORMAT=json over format: pretty', { isTTY: true, format: 'pretty', env: { ASSETFS_LOG_FORMAT: 'json' } }, { pretty: false, colors: false }],
    ['a pipe, ASSETFS_LOG_FORMAT=pretty', { env: { ASSETFS_LOG_FORMAT: 'pretty' } }, { pretty: true, colors: false }],
  ];
  it.each(cases)('%s', (_what, inputs, expected) => {
    expect(chooseFormat({ ...base, ...inputs })).toEqual(expected);
  });

  it('a wrong ASSETFS_LOG_FORMAT is an error naming the variable, not silently ignored', () => {
    expect(() => chooseFormat({ ...base, env: { ASSETFS_LOG_FORMAT: 'text' } })).toThrow(/ASSETFS_LOG_FORMAT: expected auto, pretty, json, got "text"/);
  });

  it('the config takes log.format, log.maxSize and log.maxFiles, and names a wrong one', () => {
    const ok = parseConfigText('{"log":{"format":"json","maxSize":"1MiB","maxFiles":3},"sources":[{"name":"s","type":"s3","bucket":"b","accessKeyId":"k","secretAccessKey":"s"}]}', 'c.json');
    expect(ok.log).toMatchObject({ format: 'json', maxSize: 1024 ** 2, maxFiles: 3, level: 'info' });
    const defaults = parseConfigText('{"sources":[{"name":"s","type":"s3","bucket":"b","accessKeyId":"k","secretAccessKey":"s"}]}', 'c.json');
    expect(defaults.log).toMatchObject({ format: 'auto', maxSize: 10 * 1024 ** 2, maxFiles: 5 });
    expect(() => parseConfigText('{"log":{"format":"fancy","maxFiles":0},"sources":[{"name":"s","type":"s3","bucket":"b","accessKeyId":"k","secretAccessKey":"s"}]}', 'c.json')).toThrow(/log\.format[\s\S]*log\.maxFiles/);
  });
});

describe('createLogger: the lines it writes', () => {
  const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
  const err = new TransientError('s3 source "s": GET a.mp4: failed', { cause });
  const logSome = (log: ReturnType<typeof createLogger>) => {
    log.child({ c: 'vfs', source: 's3' }).warn({ op: 'read', path: '/s3/a.mp4', err }, 'read failed');
    log.info({ mountpoint: '/mnt/x' }, 'mounted');
  };

  it('on a terminal: one readable, coloured line per record, with the component, the error and its cause', () => {
    const lines = capture({ terminal: tty() }, logSome);
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(l).toMatch(ANSI);
      expect(l.trimEnd().split('\n')).toHaveLength(1);
      expect(() => JSON.parse(l)).toThrow();
    }
    const plain = lines.map((l) => l.replace(/\x1b\[[0-9;]*m/g, '').trimEnd());
    expect(plain[0]).toMatch(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] WARN: \[vfs s3\] read failed: s3 source "s": GET a\.mp4: failed: connect ECONNREFUSED 127\.0\.0\.1:9 \(EIO\) \{"op":"read","path":"\/s3\/a\.mp4"\}$/);
    expect(plain[1]).toMatch(/INFO: mounted \{"mountpoint":"\/mnt\/x"\}$/);
  });

  it('on a terminal with NO_COLOR: the same readable lines without escape codes', () => {
    const lines = capture({ terminal: tty({ NO_COLOR: '1' }) }, logSome);
    expect(lines.join('')).not.toMatch(ANSI);
    expect(lines[0]).toMatch(/WARN: \[vfs s3\] read failed: s3 source/);
  });

  it('elsewhere (a pipe, the journal): JSON records, as before', () => {
    for (const terminal of [{ isTTY: false, journal: false, env: {} }, { isTTY: true, journal: true, env: {} }]) {
      const lines = capture({ terminal }, logSome);
      const recs = lines.map((l) => JSON.parse(l));
      expect(recs[0]).toMatchObject({ level: 40, c: 'vfs', source: 's3', op: 'read', msg: 'read failed', err: { type: 'TransientError', cause: { code: 'ECONNREFUSED' } } });
    }
  });

  it('readable lines keep every secret form out, wherever it was in the record', () => {
    const all = Object.values(SECRETS);
    const lines = capture({ terminal: tty({ FORCE_COLOR: '1' }) }, (log) => {
      for (const [name, s] of Object.entries(SECRETS)) {
        const c = Object.assign(new Error(`server said: ${s} (the cause)`), { code: 'E_BODY', body: s });
        log.child({ c: 'provider', source: 'wb' }).warn({ err: new TransientError(`call failed (${name}): ${s}`, { cause: c }), detail: { text: s, deeper: [{ s }, s] }, url: s, password: s }, `while ${name}: ${s}`);
        log.error(new TransientError(`bare error: ${s}`));
      }
      log.error({ err: new AggregateError(all.map((s) => new Error(s)), '') }, 'aggregate');
    });
    const text = lines.join('');
    expect(lines).toHaveLength(Object.keys(SECRETS).length * 2 + 1);
    expect(text.match(MARKER) ?? []).toEqual([]);
    // … while what is not secret still says why.
    expect(text).toContain('https://acct.blob.core.windows.net/c/clip.mp4?…');
    expect(text).toContain('server said:');
    expect(text).toContain('AccountKey=[redacted]');
  });
});

describe('through a real terminal (script(1) gives the child a pty)', () => {
  const MODULE = new URL('../../dist/src/util/logger.js', import.meta.url).href;
  const CHILD = `const { createLogger, flushLogSync } = await import(${JSON.stringify(MODULE)});
const log = createLogger({ level: 'info' });
log.child({ c: 'fuse' }).info({ mountpoint: '/mnt/x' }, 'mounted');
flushLogSync(log);
`;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'assetfs-logtty-'));
    await writeFile(join(dir, 'child.mjs'), CHILD);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  /** What the child logs: through a pty (script's output) or to a pipe (its stderr). */
  const run = async (env: NodeJS.ProcessEnv, underScript: boolean, prefix = '') => {
    const cmd = `${prefix} ${JSON.stringify(process.execPath)} ${JSON.stringify(join(dir, 'child.mjs'))}`;
    const clean = { ...process.env, TERM: 'xterm-256color', NO_COLOR: undefined, FORCE_COLOR: undefined, JOURNAL_STREAM: undefined, ASSETFS_LOG_FORMAT: undefined, ...env };
    const r = underScript ? await pexec('script', ['-qec', cmd, '/dev/null'], { env: clean }) : await pexec('bash', ['-c', cmd], { env: clean });
    return underScript ? r.stdout : r.stderr;
  };

  it('a pty gets coloured readable lines, NO_COLOR plain ones, the journal and a pipe JSON', async () => {
    const coloured = await run({}, true);
    expect(coloured).toMatch(ANSI);
    expect(coloured.replace(/\x1b\[[0-9;]*m/g, '')).toMatch(/INFO: \[fuse\] mounted \{"mountpoint":"\/mnt\/x"\}/);
    const plain = await run({ NO_COLOR: '1' }, true);
    expect(plain).not.toMatch(ANSI);
    expect(plain).toMatch(/INFO: \[fuse\] mounted \{"mountpoint":"\/mnt\/x"\}/);
    // Under systemd stderr is the journal, named by JOURNAL_STREAM: JSON even when that stream is a pty here.
    const journal = await run({}, true, 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2)');
    expect(JSON.parse(journal.trim())).toMatchObject({ level: 30, c: 'fuse', msg: 'mounted' });
    const piped = await run({}, false);
    expect(JSON.parse(piped.trim())).toMatchObject({ level: 30, c: 'fuse', mountpoint: '/mnt/x', msg: 'mounted' });
  });
});
