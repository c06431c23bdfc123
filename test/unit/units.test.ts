import { describe, expect, it } from 'vitest';
import { formatBytes, parseDuration, parseSize } from '../../src/config/units.js';

describe('parseSize', () => {
  it.each([
    ['0', 0],
    ['4096', 4096],
    ['4096B', 4096],
    ['1k', 1024],
    ['1KiB', 1024],
    ['1kB', 1000],
    ['512MiB', 512 * 1024 ** 2],
    ['512m', 512 * 1024 ** 2],
    ['1MB', 1_000_000],
    ['20GiB', 20 * 1024 ** 3],
    ['1GB', 1e9],
    ['2TiB', 2 * 1024 ** 4],
    ['1TB', 1e12],
    ['1.5MiB', 1.5 * 1024 ** 2],
    ['  8 MiB  ', 8 * 1024 ** 2],
    ['0.5k', 512],
  ] as const)('%j is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it('takes numbers as bytes, rounded down', () => {
    expect(parseSize(1_048_576)).toBe(1_048_576);
    expect(parseSize(10.9)).toBe(10);
    expect(parseSize(0)).toBe(0);
  });

  it('rounds fractional byte counts down', () => {
    expect(parseSize('1.0001k')).toBe(1024);
  });

  it.each(['', ' ', 'lots', '12 parsecs', '-1', '-1MiB', '1e6', 'MiB', '1,5MiB', '1 2 MiB', '0x10', '1.MiB', '.5MiB', 'NaN'])(
    'rejects %j',
    (text) => {
      expect(parseSize(text)).toBeUndefined();
    },
  );

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects the number %d', (n) => {
    expect(parseSize(n)).toBeUndefined();
  });
});

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['60s', 60_000],
    ['60', 60_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['0', 0],
    [' 10 S ', 10_000],
    ['15MS', 15],
  ] as const)('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('takes numbers as milliseconds (what a YAML or JSON number means)', () => {
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration(0)).toBe(0);
  });

  it.each(['', 'soon', '5 minutes', '-1s', '1w', '1y', 'ms', '1h30m', '1e3', '5mins'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it.each([-5, Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY])('rejects the number %d', (n) => {
    expect(parseDuration(n)).toBeUndefined();
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [512 * 1024 ** 2, '512.0 MiB'],
    [20 * 1024 ** 3, '20.0 GiB'],
    [3 * 1024 ** 4, '3.0 TiB'],
    [2048 * 1024 ** 4, '2048.0 TiB'],
  ] as const)('%d is %j', (n, text) => {
    expect(formatBytes(n)).toBe(text);
  });
});
