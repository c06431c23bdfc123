import { describe, expect, it } from 'vitest';
import { capturingLogger } from '../helpers/capture-log.js';
import { EntryNumbers, FUTURE_SLACK_MS, MAX_SIZE, UNKNOWN_MTIME, checkSize, checkTime } from '../../src/providers/common/entry-numbers.js';

const settle = () => new Promise((r) => setImmediate(r));

describe('entry numbers: sizes', () => {
  it('believes whole byte counts from 0 to 1 PiB, as numbers, digit strings or bigints', () => {
    for (const [raw, want] of [[0, 0], [1, 1], [123456789, 123456789], ['42', 42], [' 7 ', 7], [10n, 10], [MAX_SIZE, MAX_SIZE]] as const) {
      expect(checkSize(raw)).toEqual({ ok: true, value: want });
    }
  });
  it('refuses negative, fractional, NaN, infinite, 2^64−1, over 1 PiB, garbage and absent sizes', () => {
    for (const raw of [-1, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 64 - 1, '18446744073709551615', 18446744073709551615n, -1n,
      MAX_SIZE + 1, '1e3', '12abc', '-5', '', null, undefined, {}, true]) {
      expect(checkSize(raw).ok, String(raw)).toBe(false);
    }
  });
});

describe('entry numbers: times', () => {
  const now = Date.UTC(2026, 5, 1);
  it('believes times from 1980 to a day past our clock, as Dates, epoch ms or date strings', () => {
    expect(checkTime(new Date('2024-03-01T10:00:00Z'), now)).toEqual({ ok: true, value: Date.UTC(2024, 2, 1, 10) });
    expect(checkTime('Fri, 01 Mar 2024 10:00:00 GMT', now)).toEqual({ ok: true, value: Date.UTC(2024, 2, 1, 10) });
    expect(checkTime(Date.UTC(1980, 0, 1), now).ok).toBe(true);
    expect(checkTime(now + FUTURE_SLACK_MS, now).ok).toBe(true);
  });
  it('refuses 1970, seconds read as ms, negative, NaN, year 9999, far future, garbage and absent times', () => {
    for (const raw of [0, 1_700_000_000, -1, Number.NaN, new Date(Number.NaN), '9999-12-31T23:59:59Z', now + FUTURE_SLACK_MS + 1, 'yesterday', '', null, undefined, {}, '1970-01-01T00:00:00Z']) {
      expect(checkTime(raw, now).ok, String(raw)).toBe(false);
    }
  });
});

describe('EntryNumbers: unknown numbers in entries, logged once', () => {
  it('a bad size gives size 0, unreadable EIO naming the value; a bad time gives UNKNOWN_MTIME', async () => {
    const { log, lines } = capturingLogger();
    const n = new EntryNumbers({ log, what: 's3 source "x"' });
    const e = n.file('k', 'clip.mp4', { size: -1, mtime: '1970-01-01T00:00:00Z' });
    expect(e.size).toBe(0);
    expect(e.mtimeMs).toBe(UNKNOWN_MTIME);
    expect(e.unreadable?.code).toBe('EIO');
    expect(e.unreadable?.reason).toMatch(/size -1/);
    const huge = n.file('h', 'huge.bin', { size: '18446744073709551615', mtime: new Date('2024-01-01T00:00:00Z') });
    expect(huge.size).toBe(0);
    expect(huge.mtimeMs).toBe(Date.UTC(2024, 0, 1));
    await settle();
    expect(lines.map((l) => l.msg)).toEqual([
      's3 source "x": "clip.mp4": the server sent time "1970-01-01T00:00:00Z"; shown with the mount\'s start time',
      's3 source "x": "clip.mp4": the server sent size -1; listed with size 0 and unreadable (EIO)',
      's3 source "x": "huge.bin": the server sent size "18446744073709551615"; listed with size 0 and unreadable (EIO)',
    ]);
  });
  it('logs a bad number once per entry and value, however often the entry is listed again', async () => {
    const { log, lines } = capturingLogger();
    const n = new EntryNumbers({ log, what: 'w' });
    for (let i = 0; i < 50; i++) n.file('k', 'a', { size: 1.5, mtime: undefined });
    await settle();
    expect(lines).toHaveLength(1);
    n.file('k', 'a', { size: -2, mtime: undefined }); // a new bad value is news
    n.file('other', 'b', { size: 1.5, mtime: undefined });
    await settle();
    expect(lines).toHaveLength(3);
  });
  it('good numbers pass through, an absent time is unknown without a log line, an absent size is unreadable', async () => {
    const { log, lines } = capturingLogger();
    const n = new EntryNumbers({ log, what: 'w' });
    expect(n.file('k', 'a', { size: 10, mtime: '2025-02-03T04:05:06.789Z' })).toEqual({ size: 10, mtimeMs: Date.UTC(2025, 1, 3, 4, 5, 6, 789) });
    expect(n.mtime('d/', 'dir', undefined)).toBe(UNKNOWN_MTIME);
    await settle();
    expect(lines).toHaveLength(0);
    expect(n.file('k', 'a', { size: undefined, mtime: undefined }).unreadable?.reason).toMatch(/no size/);
  });
});
