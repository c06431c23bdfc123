/**
 * The log file (`log.file`) through the real logger: rotated by size and count like logrotate
 * (FILE, FILE.1 … FILE.N-1), 0600, every line whole and in order, reopened on SIGHUP, and flushed
 * when the process dies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeLogger, createLogger, type Logger } from '../../src/util/logger.js';

const KiB = 1024;
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'assetfs-logroll-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let dirs = 0;
async function freshDir(): Promise<string> {
  const dir = join(root, String(dirs++));
  return dir; // the logger creates it
}

/** Files of `dir` with their size, mode and records, oldest file first (FILE.N … FILE.1, FILE). */
async function files(dir: string, base = 'assetfs.log') {
  const names = (await readdir(dir)).sort((a, b) => rank(b, base) - rank(a, base));
  return Promise.all(
    names.map(async (name) => {
      const p = join(dir, name);
      const text = await readFile(p, 'utf8');
      const st = await stat(p);
      return { name, size: st.size, bytes: Buffer.byteLength(text), mode: st.mode & 0o777, text, records: text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
    }),
  );
}
const rank = (name: string, base: string) => (name === base ? 0 : Number(name.slice(base.length + 1)));

/** `count` records numbered from `from`, of varying length, with multi-byte characters (sizes are bytes, not characters). */
function writeLines(log: Logger, from: number, count: number): void {
  for (let i = from; i < from + count; i++) log.info({ seq: i, text: 'é😀'.repeat(i % 37) + 'x'.repeat((i * 7) % 300) }, 'line');
}

describe('log file rotation', () => {
  it('past maxSize: at most maxFiles files, none larger than maxSize, 0600, every line whole and in order, none lost', async () => {
    const dir = await freshDir();
    const file = join(dir, 'assetfs.log');
    const log = createLogger({ file, maxSize: 64 * KiB, maxFiles: 4, level: 'info' });
    // Written in one go: each rotation happens while the previous file's writer still has lines buffered.
    writeLines(log, 0, 600); // about 3 files' worth: nothing dropped yet
    await closeLogger(log);
    let all = await files(dir);
    expect(all.map((f) => f.name)).toEqual(['assetfs.log.3', 'assetfs.log.2', 'assetfs.log.1', 'assetfs.log'].slice(4 - all.length));
    expect(all.length).toBeGreaterThanOrEqual(3);
    let seqs = all.flatMap((f) => f.records.map((r) => r.seq));
    expect(seqs).toEqual([...Array(600).keys()]); // every line, once, in order, across the rotations
    for (const f of all) {
      expect(f.size).toBeLessThanOrEqual(64 * KiB);
      expect(f.size).toBe(f.bytes);
      expect(f.mode).toBe(0o600);
      expect(f.text.endsWith('\n')).toBe(true); // no line torn across two files
    }
    expect((await stat(dir)).mode & 0o777).toBe(0o700);

    // Again, on top of what is there (the live file's size counts): the oldest files go, four stay.
    const again = createLogger({ file, maxSize: 64 * KiB, maxFiles: 4, level: 'info' });
    writeLines(again, 600, 1400);
    await closeLogger(again);
    all = await files(dir);
    expect(all.map((f) => f.name)).toEqual(['assetfs.log.3', 'assetfs.log.2', 'assetfs.log.1', 'assetfs.log']);
    seqs = all.flatMap((f) => f.records.map((r) => r.seq as number));
    expect(seqs.at(-1)).toBe(1999);
    expect(seqs).toEqual([...Array(seqs.length).keys()].map((i) => 2000 - seqs.length + i)); // the kept lines: contiguous up to the last
    for (const f of all) expect(f.size).toBeLessThanOrEqual(64 * KiB);
  });

  it('an existing file counts towards maxSize and is narrowed to 0600; maxFiles: 1 keeps only the live file; maxSize: 0 never rotates', async () => {
    const dir = await freshDir();
    const file = join(dir, 'assetfs.log');
    await createLoggerAndClose(file, 0, 1); // makes the folder
    await writeFile(file, `${JSON.stringify({ seq: -1, pad: 'p'.repeat(60 * KiB) })}\n`);
    await chmod(file, 0o644);
    const log = createLogger({ file, maxSize: 64 * KiB, maxFiles: 1, level: 'info' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    writeLines(log, 0, 40);
    await closeLogger(log);
    const [only, ...rest] = await files(dir);
    expect(rest).toEqual([]);
    expect(only!.records.map((r) => r.seq)).toEqual([...Array(40).keys()].slice(only!.records.length ? 40 - only!.records.length : 0));
    expect(only!.records[0]!.seq).not.toBe(-1);

    const never = createLogger({ file, maxSize: 0, maxFiles: 3, level: 'info' });
    writeLines(never, 40, 600);
    await closeLogger(never);
    const after = await files(dir);
    expect(after.map((f) => f.name)).toEqual(['assetfs.log']);
    expect(after[0]!.size).toBeGreaterThan(64 * KiB);
  });

  it('SIGHUP reopens the file: after logrotate moved it away, lines go to a new file under the configured name', async () => {
    const dir = await freshDir();
    const file = join(dir, 'assetfs.log');
    const log = createLogger({ file, maxSize: 0, maxFiles: 5, level: 'info' });
    writeLines(log, 0, 10);
    await new Promise<void>((r) => log.flush(() => r()));
    await rename(file, `${file}-moved`);
    writeLines(log, 10, 5); // still into the moved file: nobody said to reopen
    process.emit('SIGHUP', 'SIGHUP');
    writeLines(log, 15, 5);
    await closeLogger(log);
    const moved = (await readFile(`${file}-moved`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l).seq);
    const fresh = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l).seq);
    expect(moved).toEqual([...Array(15).keys()]);
    expect(fresh).toEqual([15, 16, 17, 18, 19]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});

async function createLoggerAndClose(file: string, maxSize: number, maxFiles: number): Promise<void> {
  await closeLogger(createLogger({ file, maxSize, maxFiles }));
}

describe('the last lines of a dying process', () => {
  const MODULE = new URL('../../dist/src/util/logger.js', import.meta.url).href;
  /** A child that logs `count` lines into a rotating file as fast as it can, then dies as `how` says. */
  const child = (file: string, count: number, how: Death) => `
    const { createLogger, flushLogSync, logFatal } = await import(${JSON.stringify(MODULE)});
    const log = createLogger({ file: ${JSON.stringify(file)}, maxSize: 128 * 1024, maxFiles: 100, level: 'info' });
    for (let i = 0; i < ${count}; i++) log.info({ seq: i, pad: 'x'.repeat(100) }, 'line');
    const err = new Error('the end');
    const how = ${JSON.stringify(how)};
    // SIGKILL runs no exit hook: only what was flushed before it is on disk.
    if (how === 'logFatal, then SIGKILL') { logFatal(log, err, 'dying'); process.kill(process.pid, 'SIGKILL'); }
    // pino flushes after a fatal record by itself; these log at error level.
    log.error({ err }, 'dying');
    if (how === 'flushLogSync, then SIGKILL') { flushLogSync(log); process.kill(process.pid, 'SIGKILL'); }
    if (how === 'process.exit') process.exit(70);
    setImmediate(() => { throw err; });`;
  type Death = 'logFatal, then SIGKILL' | 'flushLogSync, then SIGKILL' | 'process.exit' | 'an uncaught exception';
  const deaths: Array<[Death, number | null, number]> = [
    ['logFatal, then SIGKILL', null, 60],
    ['flushLogSync, then SIGKILL', null, 50],
    ['process.exit', 70, 50],
    ['an uncaught exception', 1, 50],
  ];

  it.each(deaths)('%s: every line reaches the files, the last one last', async (how, exitCode, lastLevel) => {
    const dir = await freshDir();
    const file = join(dir, 'assetfs.log');
    const code = await new Promise<number | null>((resolve) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', child(file, 10_000, how)], { stdio: ['ignore', 'ignore', 'ignore'] });
      c.once('exit', (status) => resolve(status));
    });
    expect(code).toBe(exitCode);
    const all = await files(dir);
    expect(all.length).toBeGreaterThan(5); // it rotated while dying
    const records = all.flatMap((f) => f.records);
    expect(records.slice(0, -1).map((r) => r.seq)).toEqual([...Array(10_000).keys()]);
    expect(records.at(-1)).toMatchObject({ level: lastLevel, msg: 'dying', err: { message: 'the end' } });
  });
});
