/** Names the engine gives remote files: path segments as the journal keeps them, and conflict copies (the same rule for the sync and the mount). */
import { hostname } from 'node:os';

/** A segment that '/'-joining (or SQLite text) would not keep: empty, with '/' or NUL, or a lone UTF-16 surrogate. */
const UNJOINABLE = /^$|[/\0]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * A job's remote path as the journal keeps it: the segments joined by '/', or, when a segment would not
 * survive that (remote names Linux cannot hold, docs/semantics.md "Names"), '/' and the segments' JSON
 * (a joined path never starts with '/'). splitRemote() reads both.
 */
export function joinRemote(segments: readonly string[]): string {
  return segments.some((s) => UNJOINABLE.test(s)) ? `/${JSON.stringify(segments)}` : segments.join('/');
}

export function splitRemote(remotePath: string): string[] {
  if (remotePath.startsWith('/[')) {
    try {
      const segments: unknown = JSON.parse(remotePath.slice(1));
      if (Array.isArray(segments) && segments.every((s) => typeof s === 'string')) return segments as string[];
    } catch { /* a plain path after all */ }
  }
  return remotePath.split('/').filter(Boolean);
}

/**
 * `name.conflict-<host>-<UTC time>.ext` for `name.ext` (the extension kept last, so players still know
 * it). `mark` replaces `.conflict-` where the platform limits dots in names (AMS: exactly one).
 */
export function conflictName(name: string, now = new Date(), host = hostname(), mark = '.conflict-'): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const dot = name.lastIndexOf('.');
  const safeHost = host.replace(/[^A-Za-z0-9_-]/g, '_');
  return dot > 0 ? `${name.slice(0, dot)}${mark}${safeHost}-${stamp}${name.slice(dot)}` : `${name}${mark}${safeHost}-${stamp}`;
}
