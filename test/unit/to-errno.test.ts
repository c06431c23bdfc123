/**
 * toErrno (src/fuse/adapter.ts), the one place where errors become errno numbers: every FsError
 * subclass and every ErrnoCode gets its own negative errno, anything else is EIO; failures a reader
 * should hear about (EIO, EACCES, EAGAIN) are logged at warn and kept for `assetfs status` without
 * secrets; expected ones (ENOENT…) only at debug.
 */
import { describe, expect, it } from 'vitest';
import { constants } from 'node:os';
import { toErrno } from '../../src/fuse/adapter.js';
import {
  AuthError,
  ExpiredError,
  FsError,
  MisconfiguredError,
  NotFoundError,
  StaleError,
  TransientError,
  UnavailableError,
  type ErrnoCode,
} from '../../src/core/errors.js';
import { RecentEvents } from '../../src/util/recent.js';
import { createLogger } from '../../src/util/logger.js';
import { capturingLogger, type LogLine } from '../helpers/capture-log.js';

/** The daemon's own logger (it redacts), writing JSON lines into an array. */
function daemonLogger() {
  const lines: LogLine[] = [];
  const log = createLogger({ level: 'debug', format: 'json', destination: { write: (l: string) => void lines.push(JSON.parse(l) as LogLine) } });
  return { log, lines };
}

// Linux's numbers, written out: the test must not compute them the way the code does.
const LINUX: Record<ErrnoCode, number> = {
  EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, EAGAIN: 11, EACCES: 13, EEXIST: 17, EXDEV: 18, ENOTDIR: 20, EISDIR: 21,
  EINVAL: 22, ENOSPC: 28, EROFS: 30, ENAMETOOLONG: 36, ENOTEMPTY: 39, ENODATA: 61, ENOTSUP: 95, ESTALE: 116,
};

describe('toErrno', () => {
  it('maps each FsError subclass to its own errno', () => {
    const { log } = capturingLogger('debug');
    const cases: Array<[FsError, number]> = [
      [new NotFoundError('x'), -2],
      [new ExpiredError('x'), -13],
      [new AuthError('x'), -13],
      [new StaleError('x'), -116],
      [new TransientError('x', { status: 503 }), -5],
      [new MisconfiguredError('x'), -5],
      [new UnavailableError('EAGAIN', 'archived'), -11],
      [new UnavailableError('EACCES', 'no rights'), -13],
      [new UnavailableError('EIO', 'no size'), -5],
    ];
    for (const [err, want] of cases) expect(toErrno(err, log, 'read', '/s/f'), err.name).toBe(want);
  });

  it('maps every ErrnoCode of a plain FsError to the Linux number (ENOTSUP as EOPNOTSUPP, 95)', () => {
    const { log } = capturingLogger('debug');
    for (const [code, n] of Object.entries(LINUX)) {
      expect(toErrno(new FsError(code as ErrnoCode, 'x'), log, 'op', '/p'), code).toBe(-n);
    }
    expect(constants.errno.EOPNOTSUPP).toBe(95);
  });

  it('answers EIO for anything that is not an FsError, and logs it as an error with its reason', () => {
    const { log, lines } = capturingLogger('debug');
    const recent = new RecentEvents();
    const odd: unknown[] = [new Error('boom'), new TypeError('x is not a function'), 'a string', 42, null, undefined, { code: 'ENOENT' }];
    for (const e of odd) expect(toErrno(e, log, 'getattr', '/s/f', recent)).toBe(-5);
    expect(lines.filter((l) => l.level === 50)).toHaveLength(odd.length);
    expect(lines[0]!.msg).toBe('unexpected error; returning EIO: boom');
    expect(lines[1]!.msg).toBe('unexpected error; returning EIO: x is not a function');
    expect(recent.list().map((r) => r.message).slice(0, 2)).toEqual(['getattr: EIO: boom', 'getattr: EIO: x is not a function']);
    expect(recent.list().every((r) => r.path === '/s/f')).toBe(true);
  });

  it('warns for EIO/EACCES/EAGAIN and records them redacted; ENOENT and the like only at debug, not recorded', () => {
    const { log, lines } = daemonLogger();
    const recent = new RecentEvents();
    const url = 'https://acct.blob.core.windows.net/c/f.mp4?sv=2021&sig=SECRETSIG';
    expect(toErrno(new ExpiredError(`refused ${url}`), log, 'read', '/s/f.mp4', recent)).toBe(-13);
    expect(toErrno(new NotFoundError('/s/gone not found'), log, 'getattr', '/s/gone', recent)).toBe(-2);
    expect(lines.map((l) => [l.level, l.msg.split(':')[0]])).toEqual([
      [40, 'EACCES returned to the reader'],
      [20, 'operation failed'],
    ]);
    expect(lines[1]).toMatchObject({ op: 'getattr', path: '/s/gone', code: 'ENOENT' });
    expect(recent.list()).toHaveLength(1);
    expect(recent.list()[0]).toMatchObject({ message: 'read: EACCES: refused https://acct.blob.core.windows.net/c/f.mp4?…', path: '/s/f.mp4' });
    expect(JSON.stringify(lines)).not.toContain('SECRETSIG');
  });
});
