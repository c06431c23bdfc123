import { describe, expect, it } from 'vitest';
import { DirPages } from '../../src/fuse/dir-pages.js';
import type { DirEntry } from '../../src/core/types.js';

const entries = (prefix: string, n: number): DirEntry[] =>
  Array.from({ length: n }, (_, i) => ({ name: `${prefix}${i}`, attr: { kind: 'file', mode: 0o100644, size: i, mtimeMs: 0 } }) as unknown as DirEntry);

describe('DirPages: a directory listing served by offset', () => {
  it('one listing per open handle: a listing that changes between pages shifts nothing', async () => {
    const pages = new DirPages();
    let listing = entries('a', 300);
    let listed = 0;
    const list = async () => (listed++, listing);
    const fh = pages.opendir();
    const seen: string[] = [];
    let offset = 0;
    for (;;) {
      const page = await pages.page(fh, offset, list);
      if (page.length === 0) break;
      const taken = page.slice(0, 50); // the kernel's buffer holds 50 entries
      seen.push(...taken.map((e) => e.name));
      offset += taken.length;
      listing = entries('b', 10); // the remote folder changed meanwhile
    }
    expect(listed).toBe(1);
    expect(seen).toEqual(entries('a', 300).map((e) => e.name));
    pages.releasedir(fh);
    expect(pages.size).toBe(0);
  });

  it('offset 0 (rewinddir, or a new handle) takes the listing again', async () => {
    const pages = new DirPages();
    let n = 0;
    const list = async () => entries(`v${++n}-`, 5);
    const fh = pages.opendir();
    expect((await pages.page(fh, 0, list))[0]!.name).toBe('v1-0');
    expect((await pages.page(fh, 0, list))[0]!.name).toBe('v2-0');
    expect((await pages.page(pages.opendir(), 0, list))[0]!.name).toBe('v3-0');
  });

  it('a handle it did not open (fh 0) gets its page, and nothing is kept for it', async () => {
    const pages = new DirPages();
    const all = entries('e', 300);
    expect((await pages.page(0, 200, async () => all)).map((e) => e.name)).toEqual(all.slice(200, 300).map((e) => e.name));
    expect(pages.size).toBe(0);
  });

  it('pages are sized by what the previous page consumed, plus slack', async () => {
    const pages = new DirPages();
    const all = entries('e', 1000);
    const fh = pages.opendir();
    expect((await pages.page(fh, 0, async () => all)).length).toBe(128);
    expect((await pages.page(fh, 40, async () => all)).length).toBe(40 + 16); // the kernel took 40
    expect((await pages.page(fh, 80, async () => all)).length).toBe(40 + 16);
    expect((await pages.page(fh, 990, async () => all)).length).toBe(10); // the end
  });
});
