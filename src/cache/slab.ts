/**
 * The slots of the disk tier's full-size blocks: one file, `blocks.slab`, where slot i starts at
 * i × (one page + blockSize) and holds a header page (block-file.ts's layout: the header padded to a
 * page, `at` = one page) and then the block's bytes.
 *
 * Why one file: a block file per block cost three thread-pool trips (open with O_CREAT, write, close)
 * and an inode per block; a slot write is one pwritev, a warm read one preadv instead of open, readv
 * and close. Cold reads got both faster and cheaper in CPU (docs/perf-log.md).
 *
 * Invariants:
 *  - A slot is either free, being written (taken, not yet indexed by the caller), or holds the block
 *    the caller indexed. A slot released while reads of it are running goes back to the free list only
 *    when the last of them ends: no read sees its slot rewritten under it.
 *  - Nothing is trusted from the file: every read returns the header page for the caller to check
 *    (name, version, index, length, CRC), so a torn write, a slot reused after a crash, or a stale
 *    header of a freed slot can never serve wrong bytes.
 *  - Freed slots are reused before the file grows (LIFO), and reusing a slot overwrites space the
 *    file already has: a full disk is answered by evicting blocks and writing into their slots.
 *  - The file is 0600 in the tier's 0700 directory.
 */
import { constants, readv as readvCb, writev as writevCb } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import pLimit from 'p-limit';
import { DIRECT_IO_ALIGN } from '../util/aligned.js';
import { parseHeader, type Header } from './block-file.js';

// The callback API with the handles' fds: one thread-pool trip per slot read or write, without the
// FileHandle method's extra promise machinery on the main thread.
const readv = promisify(readvCb);
const writev = promisify(writevCb);

/** Slot headers the start-up scan reads at once. */
const SCAN_CONCURRENCY = 32;

export interface SlotFound {
  slot: number;
  header: Header;
}

export class Slab {
  readonly slotSize: number;
  private buffered: FileHandle | undefined;
  private direct: Promise<FileHandle> | undefined;
  /** Slots below this exist in the file (or are being written); the file grows past it only. */
  private next = 0;
  private readonly free: number[] = [];
  /** The slots in `free`: releasing a slot twice must not hand it to two writers. */
  private readonly isFree = new Set<number>();
  private readonly reading = new Map<number, number>();
  /** Released while being read: freed when the last read ends. */
  private readonly releasedWhileRead = new Set<number>();

  constructor(
    readonly file: string,
    readonly blockSize: number,
  ) {
    this.slotSize = DIRECT_IO_ALIGN + blockSize;
  }

  /** Open the file (creating it) and return the header of every slot that holds a block. */
  async scan(): Promise<SlotFound[]> {
    const fh = await open(this.file, constants.O_RDWR | constants.O_CREAT, 0o600);
    this.buffered = fh;
    const { size } = await fh.stat();
    // A slot the file does not hold whole (a write cut short by a crash) is free.
    const whole = Math.floor(size / this.slotSize);
    const limit = pLimit(SCAN_CONCURRENCY);
    const found = await Promise.all(
      Array.from({ length: whole }, (_, slot) =>
        limit(async () => {
          const page = Buffer.alloc(DIRECT_IO_ALIGN);
          const { bytesRead } = await fh.read(page, 0, page.length, slot * this.slotSize).catch(() => ({ bytesRead: 0 }));
          const parsed = parseHeader(page.subarray(0, bytesRead));
          const ok = parsed && parsed.dataOffset === DIRECT_IO_ALIGN && parsed.header.len === this.blockSize;
          return ok ? { slot, header: parsed.header } : undefined;
        }),
      ),
    );
    this.next = Math.ceil(size / this.slotSize);
    const held = found.filter((f) => f !== undefined);
    const used = new Set(held.map((f) => f.slot));
    for (let slot = this.next - 1; slot >= 0; slot--) if (!used.has(slot)) this.pushFree(slot);
    return held;
  }

  /** A slot to write a block into: a freed one, else a new one at the end of the file while it has fewer than `maxSlots`. */
  take(maxSlots: number): number | undefined {
    const slot = this.free.pop();
    if (slot !== undefined) {
      this.isFree.delete(slot);
      return slot;
    }
    return this.next < maxSlots ? this.next++ : undefined;
  }

  /** The slot's block is gone (evicted, dropped, corrupt, or its write failed): the slot may be reused. */
  release(slot: number): void {
    if (this.reading.has(slot)) this.releasedWhileRead.add(slot);
    else this.pushFree(slot);
  }

  /** Header page (`page`, one page) and bytes (`data`, blockSize) into `slot`, with O_DIRECT when `direct`. */
  async write(slot: number, page: Buffer, data: Buffer, direct: boolean): Promise<void> {
    const fd = await this.fd(direct);
    const { bytesWritten } = await writev(fd, [page, data], slot * this.slotSize);
    if (bytesWritten !== page.length + data.length) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
  }

  /** The slot's header page into `page` and its bytes into `data`; the parsed header, if any. */
  async read(slot: number, page: Buffer, data: Buffer, direct: boolean): Promise<Header | undefined> {
    this.reading.set(slot, (this.reading.get(slot) ?? 0) + 1);
    try {
      const fd = await this.fd(direct);
      const { bytesRead } = await readv(fd, [page, data], slot * this.slotSize);
      if (bytesRead !== page.length + data.length) return undefined;
      const parsed = parseHeader(page);
      return parsed?.dataOffset === DIRECT_IO_ALIGN ? parsed.header : undefined;
    } finally {
      const n = this.reading.get(slot)! - 1;
      if (n > 0) this.reading.set(slot, n);
      else {
        this.reading.delete(slot);
        if (this.releasedWhileRead.delete(slot)) this.pushFree(slot);
      }
    }
  }

  /**
   * Cut the file after its last slot in use (at start, once the caller has indexed what it keeps: a
   * smaller cap than the last run's leaves free slots at the end). Only call with no slot being written.
   */
  async trim(): Promise<void> {
    let end = this.next;
    while (end > 0 && this.isFree.has(end - 1)) end--;
    if (end === this.next) return;
    await this.buffered?.truncate(end * this.slotSize);
    this.next = end;
    for (let i = this.free.length - 1; i >= 0; i--) {
      if (this.free[i]! < end) continue;
      this.isFree.delete(this.free[i]!);
      this.free.splice(i, 1);
    }
  }

  /** Close the file and forget every slot (clear() removes the file). Call scan() again before use. */
  async reset(): Promise<void> {
    const handles = [this.buffered, await this.direct?.catch(() => undefined)];
    this.buffered = this.direct = undefined;
    this.next = 0;
    this.free.length = 0;
    this.isFree.clear();
    this.releasedWhileRead.clear();
    await Promise.all(handles.map((h) => h?.close().catch(() => undefined)));
  }

  private pushFree(slot: number): void {
    if (this.isFree.has(slot)) return;
    this.isFree.add(slot);
    this.free.push(slot);
  }

  /** Slots the file holds (blocks and free ones), for tests and status. */
  get slots(): number {
    return this.next;
  }

  /** The buffered handle's fd, or the O_DIRECT one's (opened once; EINVAL, no direct I/O here, is the caller's to handle). */
  private async fd(direct: boolean): Promise<number> {
    if (!this.buffered) throw new Error('slab used before scan()');
    if (!direct) return this.buffered.fd;
    this.direct ??= open(this.file, constants.O_RDWR | constants.O_DIRECT);
    return (await this.direct).fd;
  }
}
