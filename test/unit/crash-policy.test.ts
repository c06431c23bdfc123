/**
 * The process-wide policy for escaped errors (src/daemon/crash-policy.ts), without a process to lose:
 * which escapes keep the daemon serving, and that a fatal one stops cleanly first, then exits 70, once.
 * test/fuse/crash-policy.test.ts injects the same failures into a real daemon.
 */
import { describe, expect, it } from 'vitest';
import { EXIT_INTERNAL_ERROR, crashHandler, faultRoutes, safeToContinue } from '../../src/daemon/crash-policy.js';
import { silentLogger } from '../../src/util/logger.js';

describe('safeToContinue', () => {
  it('keeps serving after unhandled rejections and connection errnos, not after other exceptions', () => {
    expect(safeToContinue('rejection', new TypeError('x'))).toBe(true);
    expect(safeToContinue('rejection', 'a string')).toBe(true);
    expect(safeToContinue('exception', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBe(true);
    expect(safeToContinue('exception', Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(safeToContinue('exception', new TypeError('cannot read properties of undefined'))).toBe(false);
    expect(safeToContinue('exception', Object.assign(new Error('disk'), { code: 'EIO' }))).toBe(false);
    expect(safeToContinue('exception', null)).toBe(false);
  });
});

describe('crashHandler', () => {
  function harness() {
    const events: string[] = [];
    let finishStop: () => void = () => undefined;
    const handle = crashHandler({
      log: silentLogger,
      mountpoint: '/mnt/assets',
      stop: () => {
        events.push('stop');
        return new Promise<void>((r) => (finishStop = r));
      },
      exit: ((code: number) => {
        events.push(`exit ${code}`);
      }) as (code: number) => never,
      stderr: (line) => events.push(line),
    });
    return { events, handle, finishStop: () => finishStop() };
  }

  it('a safe escape neither stops nor exits', () => {
    const h = harness();
    h.handle('rejection', new Error('background task failed'));
    h.handle('exception', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(h.events).toEqual([]);
  });

  it('a fatal one prints one redacted line, stops cleanly, then exits 70; a second exits at once', async () => {
    const h = harness();
    h.handle('exception', new TypeError('bad https://x.example/a?sig=SECRET\nsecond line'));
    expect(h.events).toEqual(['assetfs: internal error (TypeError: bad https://x.example/a?…): unmounting /mnt/assets and exiting; the log has the details\n', 'stop']);
    h.handle('exception', new RangeError('again'));
    expect(h.events.at(-1)).toBe(`exit ${EXIT_INTERNAL_ERROR}`);
    h.finishStop();
    await new Promise((r) => setImmediate(r));
    expect(h.events.filter((e) => e.startsWith('exit'))).toEqual([`exit ${EXIT_INTERNAL_ERROR}`, `exit ${EXIT_INTERNAL_ERROR}`]);
  });
});

describe('faultRoutes', () => {
  it('exist only with ASSETFS_TEST_FAULTS=1', () => {
    expect(Object.keys(faultRoutes({}))).toEqual([]);
    expect(Object.keys(faultRoutes({ ASSETFS_TEST_FAULTS: '1' }))).toEqual(['POST /test/fault']);
  });
});
