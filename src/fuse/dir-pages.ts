/**
 * Directory listings served page by page, by offset (fuse-native patch 5): the kernel asks for the
 * entries after offset N, one request per buffer it fills, so offset N must mean the same entry on
 * every request of one open directory.
 *
 * Invariants:
 *  - Each open directory handle reads one listing, taken when it asks for offset 0 (the first page,
 *    or a rewinddir) and kept until releasedir: a listing refreshed between two pages would otherwise
 *    shift the offsets and skip or repeat names.
 *  - A page holds about as many entries as the previous page of the handle consumed (the kernel's
 *    buffer size, which the next offset reveals), plus some slack: converting entries that do not fit
 *    is wasted work, repeated on every page.
 */
import type { DirEntry } from '../core/types.js';

const FIRST_PAGE = 128;
const SLACK = 16;

interface OpenDir {
  entries?: DirEntry[];
  lastOffset: number;
  pageSize: number;
}

export class DirPages {
  private next = 1;
  private readonly open = new Map<number, OpenDir>();

  /** A new directory handle (never 0: fuse-native keeps a 0 as "no handle"). */
  opendir(): number {
    const fh = this.next;
    this.next = this.next >= 0x7ffffff0 ? 1 : this.next + 1;
    this.open.set(fh, { lastOffset: 0, pageSize: FIRST_PAGE });
    return fh;
  }

  /** The entries of handle `fh` after `offset`; `list` takes the listing when one is needed. */
  async page(fh: number, offset: number, list: () => Promise<DirEntry[]>): Promise<DirEntry[]> {
    const d = this.open.get(fh);
    if (!d) return (await list()).slice(offset, offset + FIRST_PAGE); // a handle we did not open: nothing to keep
    if (offset === 0 || !d.entries) d.entries = await list();
    if (offset > d.lastOffset) d.pageSize = offset - d.lastOffset + SLACK;
    d.lastOffset = offset;
    return d.entries.slice(offset, offset + d.pageSize);
  }

  releasedir(fh: number): void {
    this.open.delete(fh);
  }

  /** Directory handles open now. */
  get size(): number {
    return this.open.size;
  }
}
