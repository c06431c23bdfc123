/**
 * Remote names → local names, per directory listing. Invariants (docs/semantics.md#names):
 *  - a local name is one safe path segment: no '/', no NUL, never '' / '.' / '..', at most 255 bytes;
 *  - the mapping is stable: the same remote entries give the same local names on every listing;
 *  - two entries that would share a local name are told apart by a stable suffix from their id,
 *    directories keeping the plain name (S3's `a` object beside the `a/` prefix is common).
 * The VFS keeps local name → entry, so the mapping never has to be inverted by parsing.
 */
import { createHash } from 'node:crypto';
import type { RemoteEntry } from '../core/types.js';

const MAX_NAME_BYTES = 255;

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

/** Split `name.ext` so suffixes go before the extension (players still recognise the type). */
function splitExt(name: string): [string, string] {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || name.length - dot > 12) return [name, ''];
  return [name.slice(0, dot), name.slice(dot)];
}

/** Truncate to at most `max` UTF-8 bytes without cutting a code point. */
function truncateUtf8(text: string, max: number): string {
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > max) break;
    out += ch;
    bytes += b;
  }
  return out;
}

/** The safe form of one remote name, before de-duplication. */
export function safeName(remote: string): string {
  let name = remote.replace(/%/g, '%25').replace(/\//g, '%2F').replace(/\0/g, '%00');
  if (name === '') name = '%00empty';
  if (name === '.' || name === '..') name = name.replace(/\./g, '%2E');
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
    const [stem, ext] = splitExt(name);
    const tail = `~${shortHash(remote)}${ext}`;
    name = truncateUtf8(stem, MAX_NAME_BYTES - Buffer.byteLength(tail)) + tail;
  }
  return name;
}

function withSuffix(name: string, id: string): string {
  const [stem, ext] = splitExt(name);
  const tail = `~${shortHash(id)}${ext}`;
  return truncateUtf8(stem, MAX_NAME_BYTES - Buffer.byteLength(tail)) + tail;
}

/** Local name → entry for one directory listing. */
export function mapListing(entries: Iterable<RemoteEntry>): Map<string, RemoteEntry> {
  const groups = new Map<string, RemoteEntry[]>();
  for (const e of entries) {
    const n = safeName(e.name);
    const g = groups.get(n);
    if (g) g.push(e);
    else groups.set(n, [e]);
  }
  const out = new Map<string, RemoteEntry>();
  const taken = new Set(groups.keys());
  for (const [name, group] of groups) {
    if (group.length === 1) {
      out.set(name, group[0]!);
      continue;
    }
    // Stable order: directories first, then by id; the first keeps the plain name.
    group.sort((a, b) => (a.kind === b.kind ? cmp(a.id ?? a.ref, b.id ?? b.ref) : a.kind === 'dir' ? -1 : 1));
    out.set(name, group[0]!);
    for (const e of group.slice(1)) {
      let alt = withSuffix(name, e.id ?? e.ref);
      for (let i = 2; taken.has(alt) || out.has(alt); i++) alt = withSuffix(name, `${e.id ?? e.ref}#${i}`);
      taken.add(alt);
      out.set(alt, e);
    }
  }
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
