/**
 * MIME types by file name, for uploads (players and browsers use them): the maintained table of the
 * `mime-types` package (mime-db), which knows the media formats this project carries (m3u8, mpd,
 * ttml, aac, flac, mxf, …). An unknown or missing extension is application/octet-stream.
 */
import { lookup } from 'mime-types';

export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

export function contentTypeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot < 0 || dot === name.length - 1) return DEFAULT_CONTENT_TYPE;
  return lookup(name.slice(dot + 1)) || DEFAULT_CONTENT_TYPE;
}
