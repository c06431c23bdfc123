import { describe, expect, it } from 'vitest';
import { DownloadEtag, etagConflict, etagMatches, normalizeEtag } from '../../src/core/etag.js';

const loc = (etagIsVersion?: boolean) => ({ url: 'http://x/o', expiresAt: Infinity, ...(etagIsVersion === undefined ? {} : { etagIsVersion }) });

describe('versions are compared only with versions of the same kind', () => {
  it('normalises quotes and never trusts weak validators', () => {
    expect(normalizeEtag('"abc"')).toBe('abc');
    expect(normalizeEtag('W/"abc"')).toBe('');
    expect(etagMatches('"abc"', 'abc')).toBe(true);
    expect(etagMatches('abc', undefined)).toBe(true);
  });

  it('a listed storage ETag (etagIsVersion) is compared with the download ETag', () => {
    expect(etagConflict(loc(true), { version: 'abc', size: 1 }, '"abc"')).toBeUndefined();
    expect(etagConflict(loc(true), { version: 'abc', size: 1 }, '"xyz"')).toMatch(/not the listed version/);
    expect(etagConflict(loc(true), { version: 'abc', size: 1 }, undefined)).toBeUndefined();
  });

  it('a platform version (the default) is never compared with a download ETag', () => {
    for (const version of ['v7f3-120', '120-1700000000000', 'nb:cid:UUID:1:120:17', 'abc']) {
      expect(etagConflict(loc(), { version, size: 1 }, '"xyz"')).toBeUndefined();
      expect(etagConflict(loc(false), { version, size: 1 }, '"xyz"')).toBeUndefined();
    }
  });

  it('a download is compared with the ETag earlier downloads of the version carried', () => {
    const seen = new DownloadEtag();
    const expect1 = { version: 'rev-1', size: 1, downloadEtag: seen };
    expect(etagConflict(loc(), expect1, undefined)).toBeUndefined(); // nothing pinned by an answer without ETag
    expect(etagConflict(loc(), expect1, 'W/"weak"')).toBeUndefined();
    expect(seen.value).toBe('');
    expect(etagConflict(loc(), expect1, '"first"')).toBeUndefined();
    expect(etagConflict(loc(), expect1, 'first')).toBeUndefined();
    expect(etagConflict(loc(), expect1, undefined)).toBeUndefined();
    expect(etagConflict(loc(), expect1, '"second"')).toMatch(/differs from first/);
  });
});
