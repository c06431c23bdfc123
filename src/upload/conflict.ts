/** Names the engine gives remote files: path segments, and conflict copies (the same rule for the sync and the mount). */
import { hostname } from 'node:os';

export function splitRemote(remotePath: string): string[] {
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
