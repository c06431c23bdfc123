import { describe, expect, it } from 'vitest';
import { escapeName, mapListing, remoteNameOf, safeName } from '../../src/vfs/names.js';
import type { RemoteEntry } from '../../src/core/types.js';

const file = (name: string, ref = name, id?: string): RemoteEntry => ({ name, kind: 'file', ref, size: 1, mtimeMs: 0, version: 'v', id });
const dir = (name: string, ref = `${name}/`): RemoteEntry => ({ name, kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' });
const localOf = (m: Map<string, RemoteEntry>, ref: string) => [...m].find(([, e]) => e.ref === ref)?.[0];

describe('names: what Linux can hold comes through exactly', () => {
  it('keeps %, #, ?, spaces, leading dashes, control characters and Unicode byte for byte', () => {
    const names = ['100%.mp4', 'a%2Fb', '%00', '#1 take?.mov', ' lead and trail ', '-rf', '--help', 'tab\there', 'line\nbreak', 'del\x7f',
      'Ünïcødé ✓.srt', '日本語／タイトル.mp4', 'quote ‛ here', '‛‛', '␀', '．', '．．', '‛∅', 'U+FFFD \uFFFD', '...hidden', '.profile', '😀.png'];
    for (const n of names) expect(safeName(n)).toBe(n);
    const m = mapListing(names.map((n) => file(n)));
    for (const n of names) expect(m.get(n)?.name).toBe(n);
  });
});

describe('names: what Linux cannot hold is escaped reversibly', () => {
  it('escapes /, NUL, ., .., the empty name and lone surrogates with quoted lookalikes', () => {
    expect(safeName('AC/DC')).toBe('AC‛／DC');
    expect(safeName('x\0y')).toBe('x‛␀y');
    expect(safeName('.')).toBe('‛．');
    expect(safeName('..')).toBe('‛．‛．');
    expect(safeName('')).toBe('‛∅');
    expect(safeName('bad\uD800name')).toBe('bad‛D800name');
    expect(safeName('\uDFFF')).toBe('‛DFFF');
    // a quote inside an escaped name is doubled, so the escape stays unambiguous
    expect(safeName('a‛／/b')).toBe('a‛‛／‛／b');
  });
  it('never produces a separator, NUL, "", "." or ".." for hostile names', () => {
    for (const hostile of ['a/b', '/', '\0', 'x\0y', '', '.', '..', '../../etc/passwd', '%2F', '/..', '\uD800']) {
      const n = safeName(hostile);
      expect(n).not.toContain('/');
      expect(n).not.toContain('\0');
      expect(['', '.', '..']).not.toContain(n);
    }
  });
  it('reads an escaped name back to the remote name (writes of new files)', () => {
    for (const remote of ['AC/DC', 'x\0y', '.', '..', '', 'bad\uD800name', '\uDC00\uD800', 'a‛／/b', '‛D800/', '/‛‛', 'a/‛∅']) {
      expect(remoteNameOf(escapeName(remote))).toBe(remote);
    }
  });
  it('takes every other local name as it is, lookalikes and quotes included', () => {
    for (const local of ['日本語／タイトル.mp4', '‛', '‛‛', 'He said ‛‛hi’’', '‛∅x', 'a‛．b', '．', '␀', '‛d800', '‛DEAF'.toLowerCase(), 'plain']) {
      expect(remoteNameOf(local)).toBe(local);
    }
  });
  it('tells two lone surrogates apart, and both from U+FFFD (UTF-8 would merge all three)', () => {
    const m = mapListing([file('a\uD800', 'r1'), file('a\uD801', 'r2'), file('a\uFFFD', 'r3')]);
    expect(new Set([localOf(m, 'r1'), localOf(m, 'r2'), localOf(m, 'r3')]).size).toBe(3);
    expect(localOf(m, 'r3')).toBe('a\uFFFD');
    for (const local of m.keys()) expect(Buffer.from(local).toString()).toBe(local);
  });
});

describe('names: collisions within a folder', () => {
  it('lets a real name keep it when an escaped name equals it; the escaped one gets a suffix', () => {
    const m = mapListing([file('AC/DC', 'escaped'), file('AC‛／DC', 'real')]);
    expect(m.get('AC‛／DC')?.ref).toBe('real');
    expect(localOf(m, 'escaped')).toMatch(/^AC‛／DC~[0-9a-f]{8}$/);
  });
  it('tells duplicates apart with a stable id suffix, the folder keeping the plain name', () => {
    const entries = [file('a', 'a'), dir('a', 'a/'), file('clip.mp4', 'id-2', 'id-2'), file('clip.mp4', 'id-1', 'id-1')];
    const m = mapListing(entries);
    expect(m.get('a')?.kind).toBe('dir');
    expect(m.size).toBe(4);
    expect(m.get('clip.mp4')?.ref).toBe('id-1');
    const again = mapListing([...entries].reverse());
    expect([...again.keys()].sort()).toEqual([...m.keys()].sort());
    for (const [k, v] of m) expect(again.get(k)?.ref).toBe(v.ref);
    const suffixed = [...m.keys()].find((k) => k.startsWith('clip~'));
    expect(suffixed).toMatch(/^clip~[0-9a-f]{8}\.mp4$/);
  });
  it('never gives a duplicate suffix that is the name of a real entry', () => {
    const dups = [file('clip.mp4', 'id-1', 'id-1'), file('clip.mp4', 'id-2', 'id-2')];
    const alt = localOf(mapListing(dups), 'id-2')!;
    const m = mapListing([...dups, file(alt, 'real')]);
    expect(m.get(alt)?.ref).toBe('real');
    expect(m.size).toBe(3);
  });
  it('maps names that escape alike apart', () => {
    const m = mapListing([file('..'), file('‛．‛．'), file('%2E%2E')]);
    expect(m.size).toBe(3);
    expect(m.get('‛．‛．')?.name).toBe('‛．‛．');
    for (const k of m.keys()) expect(['.', '..']).not.toContain(k);
  });
});

describe('names: over-long names', () => {
  it('shortens names over 255 bytes with a stable hash suffix, keeping the extension', () => {
    const long = `${'é'.repeat(200)}.mp4`;
    const a = safeName(long);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(255);
    expect(a.endsWith('.mp4')).toBe(true);
    expect(safeName(long)).toBe(a);
    expect(safeName(`${'é'.repeat(201)}.mp4`)).not.toBe(a);
  });
  it('keeps a name of exactly 255 bytes, shortens 256', () => {
    expect(safeName('x'.repeat(255))).toBe('x'.repeat(255));
    expect(safeName('x'.repeat(256))).not.toBe('x'.repeat(256));
  });
});
