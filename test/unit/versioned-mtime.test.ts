import { describe, expect, it } from 'vitest';
import { versionedMtime } from '../../src/vfs/vfs.js';

describe('versionedMtime', () => {
  it('gives two versions of one second different mtimes (the kernel keeps a page cache while size and mtime match)', () => {
    const second = Date.UTC(2026, 10, 28, 20, 24, 31);
    const a = versionedMtime(second, '"etag-1"');
    const b = versionedMtime(second, '"etag-2"');
    expect(a).not.toBe(b);
    for (const t of [a, b]) expect(Math.floor(t / 1000) * 1000).toBe(second); // the second itself is kept
    expect(versionedMtime(second, '"etag-1"')).toBe(a); // stable for one version
  });

  it('leaves an mtime with milliseconds, and one without a version, as it is', () => {
    expect(versionedMtime(1_795_895_693_983, '"etag"')).toBe(1_795_895_693_983);
    expect(versionedMtime(1_795_895_693_000, '')).toBe(1_795_895_693_000);
  });
});
