import { describe, expect, it } from 'vitest';
import { mapListing, safeName } from '../../src/vfs/names.js';
import type { RemoteEntry } from '../../src/core/types.js';

const file = (name: string, ref = name, id?: string): RemoteEntry => ({ name, kind: 'file', ref, size: 1, mtimeMs: 0, version: 'v', id });
const dir = (name: string, ref = `${name}/`): RemoteEntry => ({ name, kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' });

describe('safeName (SPEC §Directory tree: names mapped safely)', () => {
  it('never produces a separator, NUL, "", "." or ".."', () => {
    for (const hostile of ['a/b', '/', '\0', 'x\0y', '', '.', '..', '../../etc/passwd', '%2F']) {
      const n = safeName(hostile);
      expect(n).not.toContain('/');
      expect(n).not.toContain('\0');
      expect(['', '.', '..']).not.toContain(n);
    }
  });
  it('keeps ordinary names unchanged', () => {
    for (const ok of ['video.mp4', 'Ünïcødé ✓.srt', 'with space', '...hidden', '.profile']) expect(safeName(ok)).toBe(ok);
  });
  it('escapes % so that an escaped name cannot collide with a literal one', () => {
    expect(safeName('a/b')).toBe('a%2Fb');
    expect(safeName('a%2Fb')).toBe('a%252Fb');
  });
  it('shortens names over 255 bytes with a stable hash suffix, keeping the extension', () => {
    const long = `${'é'.repeat(200)}.mp4`;
    const a = safeName(long);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(255);
    expect(a.endsWith('.mp4')).toBe(true);
    expect(safeName(long)).toBe(a);
    expect(safeName(`${'é'.repeat(201)}.mp4`)).not.toBe(a);
  });
});

describe('mapListing', () => {
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
  it('maps names that escape to the same text apart', () => {
    const m = mapListing([file('..'), file('%2E%2E')]);
    expect(m.size).toBe(2);
    for (const k of m.keys()) expect(['.', '..']).not.toContain(k);
  });
});
