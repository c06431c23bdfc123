/**
 * The name mapping under random folders (seeded: a failure names its seed and reproduces). Names come
 * from random bytes read as UTF-8 (what an SDK decoding a storage listing hands us, U+FFFD for invalid
 * bytes) and from random UTF-16 units (what JSON.parse gives for "\ud800" escapes), over an alphabet
 * heavy in every mapped character, every lookalike and quote the escapes use, and near-collisions:
 * real entries named like another entry's escaped, shortened or suffixed local name.
 */
import { describe, expect, it } from 'vitest';
import { escapeName, isHoldable, mapListing, remoteNameOf } from '../../src/vfs/names.js';
import type { RemoteEntry } from '../../src/core/types.js';

const SEEDS = 300;

/** mulberry32: a small seeded PRNG, so a failing seed can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const UNITS = ['/', '\0', '.', '\u201B', '\uFF0F', '\u2400', '\uFF0E', '\u2205', 'D', '8', 'F', 'a', '~', '%', '#', '?', ' ', '-', '\n', '\x7F',
  'é', '😀', '\uD800', '\uDBFF', '\uDC00', '\uDFFF', '\uFFFD', '0', '.mp4'];
const WHOLE = ['', '.', '..', '\u201B\u2205', '\u201B\uFF0E', '\u201B\uFF0E\u201B\uFF0E', '/', '\0', '\u201B'];

function randomName(r: () => number): string {
  const pick = r();
  if (pick < 0.1) return WHOLE[Math.floor(r() * WHOLE.length)]!;
  if (pick < 0.3) {
    const bytes = Buffer.alloc(Math.floor(r() * 12), 0);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
    return bytes.toString('utf8');
  }
  const len = r() < 0.1 ? 80 + Math.floor(r() * 120) : Math.floor(r() * 10);
  let s = '';
  for (let i = 0; i < len; i++) s += UNITS[Math.floor(r() * UNITS.length)]!;
  return s;
}

const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function entry(name: string, i: number, r: () => number): RemoteEntry {
  const ref = `ref-${i}`;
  return r() < 0.3 ? { name, kind: 'dir', ref: `${ref}/`, size: 0, mtimeMs: 0, version: '' } : { name, kind: 'file', ref, size: 1, mtimeMs: 0, version: 'v' };
}

/** Every invariant of one folder's mapping (src/vfs/names.ts). */
function check(entries: RemoteEntry[]): Map<string, RemoteEntry> {
  const m = mapListing(entries);
  expect(m.size).toBe(entries.length); // injective: no entry lost or merged
  const count = new Map<string, number>();
  for (const e of entries) count.set(e.name, (count.get(e.name) ?? 0) + 1);
  for (const [local, e] of m) {
    expect(local.includes('/') || local.includes('\0')).toBe(false);
    expect(['', '.', '..']).not.toContain(local);
    expect(Buffer.byteLength(local)).toBeLessThanOrEqual(255);
    expect(LONE.test(local)).toBe(false);
    expect(Buffer.from(local, 'utf8').toString('utf8')).toBe(local); // what the kernel gets is exactly this name
    // A holdable name that was changed is still there, held by another entry of that very name.
    if (local !== e.name && isHoldable(e.name)) expect(m.get(e.name)?.name).toBe(e.name);
  }
  for (const e of entries) {
    const esc = escapeName(e.name);
    // A holdable name shared with no other entry is its own local name (only a duplicate changes it).
    if (isHoldable(e.name) && count.get(e.name) === 1) expect(m.get(e.name)).toBe(e);
    // An escaped name that nothing else claims reads back to its remote name.
    if (!isHoldable(e.name) && Buffer.byteLength(esc) <= 255 && m.get(esc) === e) expect(remoteNameOf(esc)).toBe(e.name);
  }
  return m;
}

describe('names: fuzzer', () => {
  it(`maps random folders injectively, safely, exactly and stably (${SEEDS} seeds)`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = rng(seed);
      try {
        const entries: RemoteEntry[] = [];
        const n = 1 + Math.floor(r() * 40);
        for (let i = 0; i < n; i++) entries.push(entry(randomName(r), i, r));
        // Near-collisions: real entries named after the escaped forms of others, and duplicates.
        for (const e of entries.slice(0, 5)) entries.push(entry(escapeName(e.name), entries.length, r));
        if (entries.length > 2) entries.push(entry(entries[1]!.name, entries.length, r));
        const m = check(entries);
        // Real entries named after every local name the mapping invented (suffixes, shortened names).
        const invented = [...m].filter(([local, e]) => local !== e.name).map(([local]) => local);
        const more = [...entries, ...invented.map((name, i) => entry(name, entries.length + i, r))];
        check(more);
        // The same set of entries in another order gives the same names.
        const shuffled = [...more].sort(() => r() - 0.5);
        const a = [...mapListing(more)].map(([k, e]) => `${k}\u0001${e.ref}`).sort();
        const b = [...mapListing(shuffled)].map(([k, e]) => `${k}\u0001${e.ref}`).sort();
        expect(b).toEqual(a);
      } catch (e) {
        throw new Error(`names fuzzer, seed ${seed}: ${(e as Error).message}`, { cause: e });
      }
    }
  });

  it(`reads every escaped name back, and leaves every other name alone (${SEEDS * 20} names)`, () => {
    const r = rng(424242);
    for (let i = 0; i < SEEDS * 20; i++) {
      const name = randomName(r);
      if (isHoldable(name)) {
        if (!name.includes('\u201B')) expect(remoteNameOf(name)).toBe(name);
      } else {
        expect(remoteNameOf(escapeName(name)), JSON.stringify(name)).toBe(name);
      }
    }
  });
});
