/**
 * Remote names → local names, per folder listing; and local names → remote names for writes. The
 * scheme and its reasons are in docs/semantics.md ("Names"). Invariants:
 *  - a remote name Linux can hold is its own local name, byte for byte (`%`, `#`, `?`, spaces, leading
 *    dashes, control characters, Unicode — fullwidth lookalikes and U+201B included), unless another
 *    entry of the same folder holds that very name;
 *  - a local name is one safe path segment: no '/', no NUL, never '' / '.' / '..', at most 255 UTF-8
 *    bytes, and well-formed Unicode (its UTF-8 bytes say exactly what it is);
 *  - within one folder no two entries share a local name, and none takes the name of a real entry;
 *  - the mapping of a folder depends on its set of entries only (not their order), so every listing of
 *    an unchanged folder gives the same names.
 *
 * What Linux cannot hold is escaped with rclone's lookalike characters (lib/encoder), each behind the
 * quote U+201B '‛'. rclone quotes the real lookalike instead and shows the replacement bare; we cannot
 * (a real '／', common in CJK names, must show as itself), so here the quote marks the replacement:
 *
 *   '/' → ‛／    NUL → ‛␀    a lone UTF-16 surrogate (JSON "\ud800") → ‛D800    '‛' → ‛‛ (only in an
 *   escaped name)    whole names: '' → ‛∅    '.' → ‛．    '..' → ‛．‛．
 *
 * An escaped name can equal a real one (a remote `a‛／b` beside `a/b`): the real one keeps it and the
 * escaped one gets the duplicate suffix. Names over 255 bytes are shortened with a hash suffix. Neither
 * suffix is parsed back: the VFS keeps local name → entry, and writes to a listed name go to its entry.
 */
import { createHash } from 'node:crypto';
import type { RemoteEntry } from '../core/types.js';

export const MAX_NAME_BYTES = 255;

const QUOTE = '\u201B'; // ‛ SINGLE HIGH-REVERSED-9 QUOTATION MARK, rclone's QuoteRune
const SLASH = '\uFF0F'; // ／ FULLWIDTH SOLIDUS
const NUL = '\u2400'; // ␀ SYMBOL FOR NULL
const DOT = '\uFF0E'; // ． FULLWIDTH FULL STOP
const EMPTY = '\u2205'; // ∅ EMPTY SET

const WHOLE: ReadonlyMap<string, string> = new Map([
  ['', QUOTE + EMPTY],
  ['.', QUOTE + DOT],
  ['..', QUOTE + DOT + QUOTE + DOT],
]);
const WHOLE_BACK: ReadonlyMap<string, string> = new Map([...WHOLE].map(([remote, local]) => [local, remote]));

/** A lone UTF-16 surrogate: a JS string can hold one (JSON "\ud800"), UTF-8 cannot (it becomes U+FFFD). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Characters Linux cannot hold in a name: '/', NUL, and lone surrogates. */
const UNHOLDABLE = new RegExp(`[/\\0]|${LONE_SURROGATE.source}`);
const UNHOLDABLE_G = new RegExp(UNHOLDABLE.source, 'g');
/** An escape that stands for a character Linux cannot hold: an escaped name has at least one. */
const HARD_ESCAPE = new RegExp(`${QUOTE}(?:[${SLASH}${NUL}]|D[89A-F][0-9A-F]{2})`);
const ANY_ESCAPE_G = new RegExp(`${QUOTE}(?:[${SLASH}${NUL}${QUOTE}]|D[89A-F][0-9A-F]{2})`, 'g');

/** Whether Linux can hold `name` as one file name exactly as it is. */
export function isHoldable(name: string): boolean {
  return !WHOLE.has(name) && !UNHOLDABLE.test(name) && Buffer.byteLength(name) <= MAX_NAME_BYTES;
}

/** The escaped form of a name that holds something Linux cannot (see the table above); injective. */
export function escapeName(remote: string): string {
  const whole = WHOLE.get(remote);
  if (whole !== undefined) return whole;
  return remote.replaceAll(QUOTE, QUOTE + QUOTE).replace(UNHOLDABLE_G, (c) => {
    if (c === '/') return QUOTE + SLASH;
    if (c === '\0') return QUOTE + NUL;
    return QUOTE + c.charCodeAt(0).toString(16).toUpperCase();
  });
}

/**
 * The remote name a local name stands for when no listed entry has it (a new file, a new folder): the
 * escaped form of a name read back, every other name as it is. A name is read as escaped only when it
 * is a whole-name token or holds an escape of '/', NUL or a surrogate, so ordinary names with '‛' or
 * lookalikes in them are never changed.
 */
export function remoteNameOf(local: string): string {
  const whole = WHOLE_BACK.get(local);
  if (whole !== undefined) return whole;
  if (!HARD_ESCAPE.test(local)) return local;
  return local.replace(ANY_ESCAPE_G, (esc) => {
    const c = esc.slice(1);
    if (c === SLASH) return '/';
    if (c === NUL) return '\0';
    if (c === QUOTE) return QUOTE;
    return String.fromCharCode(parseInt(c, 16));
  });
}

/** Eight hex digits of `text`; ids from JSON may hold lone surrogates, which UTF-8 would merge, so those hash as UTF-16. */
function shortHash(text: string): string {
  return createHash('sha256').update(!LONE_SURROGATE.test(text) ? text : Buffer.from(text, 'utf16le')).digest('hex').slice(0, 8);
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

/** `name` with `~<hash of key>` before its extension, within 255 bytes. */
function withSuffix(name: string, key: string): string {
  const [stem, ext] = splitExt(name);
  const tail = `~${shortHash(key)}${ext}`;
  return truncateUtf8(stem, MAX_NAME_BYTES - Buffer.byteLength(tail)) + tail;
}

/** How a remote name became its candidate local name; lower ranks win a shared name. */
const EXACT = 0;
const ESCAPED = 1;
const SHORTENED = 2;
type Form = typeof EXACT | typeof ESCAPED | typeof SHORTENED;

function candidate(remote: string): { name: string; form: Form } {
  const escape = WHOLE.has(remote) || UNHOLDABLE.test(remote);
  const name = escape ? escapeName(remote) : remote;
  if (Buffer.byteLength(name) <= MAX_NAME_BYTES) return { name, form: escape ? ESCAPED : EXACT };
  return { name: withSuffix(name, name), form: SHORTENED };
}

/** The local name of one remote name on its own, before the names of its folder are considered. */
export function safeName(remote: string): string {
  return candidate(remote).name;
}

/** Local name → entry for one folder listing. */
export function mapListing(entries: Iterable<RemoteEntry>): Map<string, RemoteEntry> {
  const groups = new Map<string, { e: RemoteEntry; form: Form }[]>();
  for (const e of entries) {
    const c = candidate(e.name);
    const g = groups.get(c.name);
    if (g) g.push({ e, form: c.form });
    else groups.set(c.name, [{ e, form: c.form }]);
  }
  const out = new Map<string, RemoteEntry>();
  const taken = new Set(groups.keys()); // every candidate, so that no suffix takes a real name
  for (const name of [...groups.keys()].sort(cmp)) {
    const group = groups.get(name)!;
    // The exact name first, then folders (S3's `a/` beside the object `a`), then by id: the first keeps the name.
    group.sort((a, b) => a.form - b.form || (a.e.kind === b.e.kind ? cmp(idOf(a.e), idOf(b.e)) : a.e.kind === 'dir' ? -1 : 1));
    out.set(name, group[0]!.e);
    for (const { e } of group.slice(1)) {
      let alt = withSuffix(name, idOf(e));
      for (let i = 2; taken.has(alt); i++) alt = withSuffix(name, `${idOf(e)}#${i}`);
      taken.add(alt);
      out.set(alt, e);
    }
  }
  return out;
}

const idOf = (e: RemoteEntry) => e.id ?? e.ref;

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
