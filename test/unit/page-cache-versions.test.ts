import { describe, expect, it } from 'vitest';
import { PageCacheVersions } from '../../src/vfs/page-cache-versions.js';

describe('PageCacheVersions: whether an open may keep the kernel page cache', () => {
  it('keeps the pages on a reopen of the same version, drops them for a new one', () => {
    const p = new PageCacheVersions();
    expect(p.opened('/s3/a', 'v1')).toBe(false); // nothing known yet
    p.served('/s3/a', 'v1');
    expect(p.opened('/s3/a', 'v1')).toBe(true);
    expect(p.opened('/s3/a', 'v2')).toBe(false);
    expect(p.opened('/s3/a', 'v2')).toBe(true);
  });

  it('a read served from another version (a handle opened before the change) poisons the entry', () => {
    const p = new PageCacheVersions();
    p.opened('/s3/a', 'v1'); // an old handle stays open
    p.opened('/s3/a', 'v2'); // a new open drops the pages
    p.served('/s3/a', 'v1'); // the old handle reads: the kernel may now cache v1 bytes again
    expect(p.opened('/s3/a', 'v2')).toBe(false);
  });

  it('an unknown version (no ETag) never keeps', () => {
    const p = new PageCacheVersions();
    expect(p.opened('/s3/a', '')).toBe(false);
    expect(p.opened('/s3/a', '')).toBe(false);
  });

  it('writes, unlinks and renames through the mount forget the path, a rename all under it', () => {
    const p = new PageCacheVersions();
    for (const f of ['/s3/a', '/s3/d/x', '/s3/d/y', '/s3/dd']) p.opened(f, 'v');
    p.forget('/s3/a');
    p.forgetTree('/s3/d');
    expect(p.opened('/s3/a', 'v')).toBe(false);
    expect(p.opened('/s3/d/x', 'v')).toBe(false);
    expect(p.opened('/s3/d/y', 'v')).toBe(false);
    expect(p.opened('/s3/dd', 'v')).toBe(true); // a sibling that shares the prefix is untouched
  });
});
