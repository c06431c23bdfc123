import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_TYPE, contentTypeOf } from '../../src/util/content-type.js';

describe('contentTypeOf', () => {
  it('knows the streaming and media formats uploads carry', () => {
    expect(contentTypeOf('master.m3u8')).toBe('application/vnd.apple.mpegurl');
    expect(contentTypeOf('manifest.mpd')).toBe('application/dash+xml');
    expect(contentTypeOf('subs.ttml')).toBe('application/ttml+xml');
    expect(contentTypeOf('audio.aac')).toBe('audio/aac');
    expect(contentTypeOf('lossless.flac')).toMatch(/^audio\/(x-)?flac$/);
    expect(contentTypeOf('movie.MP4')).toBe('video/mp4');
    expect(contentTypeOf('seg-001.ts')).toBe('video/mp2t');
    expect(contentTypeOf('master.mxf')).toBe('application/mxf');
  });

  it('answers application/octet-stream for no or an unknown extension', () => {
    expect(contentTypeOf('README')).toBe(DEFAULT_CONTENT_TYPE);
    expect(contentTypeOf('trailing.')).toBe(DEFAULT_CONTENT_TYPE);
    expect(contentTypeOf('data.nosuchext')).toBe(DEFAULT_CONTENT_TYPE);
    expect(contentTypeOf('dir.d/file')).toBe(DEFAULT_CONTENT_TYPE);
  });
});
