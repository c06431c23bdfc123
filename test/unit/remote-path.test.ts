import { describe, expect, it } from 'vitest';
import { joinRemote, splitRemote } from '../../src/upload/engine.js';

describe('upload journal: remote paths keep every remote name', () => {
  it('joins ordinary names with "/" as before, and splits them back', () => {
    expect(joinRemote(['media-bucket', '100% done.txt'])).toBe('media-bucket/100% done.txt');
    expect(splitRemote('media-bucket/100% done.txt')).toEqual(['media-bucket', '100% done.txt']);
  });
  it('keeps names with "/", NUL, lone surrogates and empty names apart from the separator', () => {
    for (const segments of [['media-bucket', 'AC/DC', 'new.txt'], ['b', ''], ['', 'x'], ['a\0b'], ['bad\uD800'], ['[', ']'], ['/[']]) {
      expect(splitRemote(joinRemote(segments))).toEqual(segments);
    }
    expect(joinRemote(['media-bucket', 'AC/DC', 'new.txt'])).toBe('/["media-bucket","AC/DC","new.txt"]');
  });
  it('reads a plain path that merely looks like JSON as a plain path', () => {
    expect(splitRemote('[draft]/x')).toEqual(['[draft]', 'x']);
    expect(splitRemote('["a","b"]')).toEqual(['["a","b"]']);
  });
});
