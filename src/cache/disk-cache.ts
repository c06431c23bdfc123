/**
 * The disk tier of the block cache: full-size blocks in the slots of <cacheDir>/blocks/blocks.slab
 * (slab.ts), an object's shorter last block in a file of its own, <cacheDir>/blocks/<2 hex>/<sha256>.blk.
 *
 * Invariants:
 *  - A block file, and a slot, starts with a header naming (source, ref, version, index, length,
 *    crc32) that is checked on every read: a torn, corrupted or foreign block is dropped (file deleted,
 *    slot freed) and reported as a miss, and a block of another object version can never be returned
 *    (the version is in the key and the header).
 *  - Blocks are written in place: a crash mid-write leaves a file shorter than its header says, which
 *    the start-up scan deletes, or bytes whose CRC fails on read. A block is indexed only once written.
 *  - Blocks in page-aligned memory (the memory tier's, util/aligned.ts) and a page multiple long are
 *    written and read with O_DIRECT, the header padded to one page (`at` in it says where the bytes
 *    start). Streaming gigabytes through the cache thus costs no page-cache copy and evicts nobody's
 *    pages. Other blocks (an object's short last one) are buffered; a filesystem that refuses direct
 *    I/O (EINVAL) gets buffered I/O from then on. Both layouts read back either way.
 *  - The index lives in memory (an LRU bounded by bytes) and is rebuilt at start by scanning headers,
 *    oldest first (file mtime, slot write time): there is no second copy of the truth to disagree with.
 *  - A full disk never fails a read: put() evicts and retries once, then gives up silently (the block
 *    simply is not cached). Files are 0600 in 0700 directories.
 *  - Nothing here blocks the event loop: all file I/O is async.
 *  - Blocks of pinned objects (setPinned) live outside the LRU: never evicted, not counted against
 *    `maxBytes`, until unpinned (they then rejoin the LRU as its most recent entries).
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { BlockCache, CacheStats, ObjectVersion, Ref } from '../core/types.js';
import { DIRECT_IO_ALIGN, alignedBuffer, isDirectIoReady } from '../util/aligned.js';
import { fillHeaderPage, headerFits, parseHeader, readBlockFile, readBlockFileDirect, scanBlockFiles, writeBlockFile, writeBlockFileDirect, type Header } from './block-file.js';
import { blockCrc32, crc32Implementation } from './checksum.js';
import { Slab } from './slab.js';

/** Direct reads and writes in flight at once (each needs an aligned header page); more are buffered. */
const HEADER_PAGES = 64;
interface IndexEntry {
  /** The block file, or the slab's file when `slot` is set. */
  file: string;
  /** The block's slot in the slab (full-size blocks), else it has a file of its own. */
  slot?: number;
  len: number;
  /** Where the block's bytes start in the file (after magic, header length and header). */
  dataOffset: number;
  source: string;
  ref: string;
}

const blockKey = (source: string, ref: Ref, version: string, index: number) => JSON.stringify([source, ref, version, index]);

export interface DiskCacheOptions {
  dir: string;
  maxBytes: number;
  blockSize: number;
}

export class DiskBlockCache implements BlockCache {
  readonly blockSize: number;
  private readonly index: LRUCache<string, IndexEntry>;
  private readonly byObject = new Map<string, Set<string>>();
  private readonly pinnedObjects = new Set<string>();
  private readonly pinned = new Map<string, IndexEntry>();
  private pinnedBytes = 0;
  /** Set while entries move between the LRU and the pinned map: their files must survive. */
  private moving = false;
  private hits = 0;
  private misses = 0;
  private corrupt = 0;
  /** Blocks the cache dropped to make room (LRU, full disk). */
  private evictions = 0;
  private scanned: Promise<void> | undefined;
  /** Whether aligned blocks are written with O_DIRECT (see put). */
  private direct = true;
  private headerArena: Buffer | undefined;
  private readonly headerPages: Buffer[] = [];
  private readonly slab: Slab;
  /** Keys whose put() is writing: a second put of one waits for nothing and writes nothing. */
  private readonly writingKeys = new Set<string>();

  constructor(private readonly o: DiskCacheOptions) {
    this.blockSize = o.blockSize;
    this.slab = new Slab(join(o.dir, 'blocks.slab'), o.blockSize);
    this.index = new LRUCache<string, IndexEntry>({
      maxSize: Math.max(1, o.maxBytes),
      sizeCalculation: (e) => Math.max(1, e.len),
      dispose: (e, key, reason) => {
        if (reason === 'evict') this.evictions++;
        this.unindex(e, key);
        if (reason !== 'set' && !this.moving) this.discard(e);
      },
    });
  }

  private objKey(source: string, ref: Ref) {
    return `${source}\0${ref}`;
  }

  private unindex(e: IndexEntry, key: string) {
    const set = this.byObject.get(this.objKey(e.source, e.ref));
    set?.delete(key);
    if (set && set.size === 0) this.byObject.delete(this.objKey(e.source, e.ref));
  }

  /** The storage of a block no longer indexed: its slot is freed, its file deleted. */
  private discard(e: IndexEntry) {
    if (e.slot !== undefined) this.slab.release(e.slot);
    else void unlink(e.file).catch(() => undefined);
  }

  private addIndex(key: string, e: IndexEntry) {
    // A second copy of a block (the scan found it twice): the older entry goes, and its storage
    // with it unless the new entry reuses it.
    const old = this.index.peek(key) ?? this.pinned.get(key);
    if (old) {
      this.moving = true;
      try {
        this.index.delete(key);
      } finally {
        this.moving = false;
      }
      if (this.pinned.delete(key)) this.pinnedBytes -= old.len;
      if (old.file !== e.file || old.slot !== e.slot) this.discard(old);
    }
    if (this.pinnedObjects.has(this.objKey(e.source, e.ref))) {
      if (!this.pinned.has(key)) this.pinnedBytes += e.len;
      this.pinned.set(key, e);
      return;
    }
    this.index.set(key, e);
    if (!this.index.has(key)) return this.discard(e); // larger than the whole cache
    const ok = this.objKey(e.source, e.ref);
    let set = this.byObject.get(ok);
    if (!set) this.byObject.set(ok, (set = new Set()));
    set.add(key);
  }

  private fileFor(key: string): string {
    const h = createHash('sha256').update(key).digest('hex');
    return join(this.o.dir, h.slice(0, 2), `${h}.blk`);
  }

  /** Create the directory and index the blocks a previous run left. Call once before use. */
  init(): Promise<void> {
    this.scanned ??= this.scan();
    return this.scanned;
  }

  private async scan(): Promise<void> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    const found: Array<{ key: string; e: IndexEntry; mtime: number }> = [];
    for (const { file, header: h, dataOffset, mtime } of await scanBlockFiles(this.o.dir)) {
      found.push({ key: blockKey(h.source, h.ref, h.version, h.index), e: { file, len: h.len, dataOffset, source: h.source, ref: h.ref }, mtime });
    }
    for (const { slot, header: h } of await this.slab.scan()) {
      const e: IndexEntry = { file: this.slab.file, slot, len: h.len, dataOffset: DIRECT_IO_ALIGN, source: h.source, ref: h.ref };
      found.push({ key: blockKey(h.source, h.ref, h.version, h.index), e, mtime: h.t ?? 0 });
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) this.addIndex(f.key, f.e);
    await this.slab.trim(); // a smaller cap than last time evicted blocks at the end of the slab
  }

  /** Keep every block of (source, ref), of any version, out of eviction (or let them go again). */
  setPinned(source: string, ref: Ref, on: boolean): void {
    const ok = this.objKey(source, ref);
    if (on === this.pinnedObjects.has(ok)) return;
    this.moving = true;
    try {
      if (on) {
        this.pinnedObjects.add(ok);
        for (const k of [...(this.byObject.get(ok) ?? [])]) {
          const e = this.index.peek(k);
          this.index.delete(k);
          if (e) this.addIndex(k, e);
        }
      } else {
        this.pinnedObjects.delete(ok);
        for (const [k, e] of [...this.pinned]) {
          if (e.source !== source || e.ref !== ref) continue;
          this.pinned.delete(k);
          this.pinnedBytes -= e.len;
          this.addIndex(k, e);
        }
      }
    } finally {
      this.moving = false;
    }
  }

  /** Whether the blocks of (source, ref) are pinned. */
  isPinned(source: string, ref: Ref): boolean {
    return this.pinnedObjects.has(this.objKey(source, ref));
  }

  /** Drop every block that is not pinned (`assetfs cache clear`); pinned blocks stay. */
  evictUnpinned(): void {
    this.index.clear(); // dispose frees each block's slot or file
  }

  /** Whether a block is on disk (no read, no statistics). */
  has(obj: ObjectVersion, index: number): boolean {
    const key = blockKey(obj.source, obj.ref, obj.version, index);
    return this.index.has(key) || this.pinned.has(key);
  }

  /**
   * The block, verified against its header. `into` (at least the block's length) receives the bytes
   * when given — the memory tier's recycled buffers, so a warm read allocates nothing; with O_DIRECT
   * when they are page-aligned and the file was written for it.
   */
  async get(obj: ObjectVersion, index: number, into?: Buffer): Promise<Buffer | undefined> {
    const key = blockKey(obj.source, obj.ref, obj.version, index);
    const e = this.index.get(key) ?? this.pinned.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    const data = into && into.length >= e.len ? into.subarray(0, e.len) : Buffer.allocUnsafe(e.len);
    const h = await this.readHeaderAndData(e, data).catch(() => undefined);
    const valid = h && h.source === obj.source && h.ref === obj.ref && h.version === obj.version && h.index === index && h.len === data.length && blockCrc32(data) === h.crc;
    if (!valid) {
      this.misses++;
      // A slot freed and reused while this read waited to start holds another block: a miss, not corruption.
      if ((this.index.peek(key) ?? this.pinned.get(key)) !== e) return undefined;
      this.corrupt++;
      this.index.delete(key); // dispose frees its storage
      if (this.pinned.delete(key)) {
        this.pinnedBytes -= e.len;
        this.discard(e);
      }
      return undefined;
    }
    this.hits++;
    return data;
  }

  /**
   * Store a block: with O_DIRECT when `data` is ready for it (util/aligned.ts), so streaming a large
   * file through the cache neither copies it into nor floods the page cache. The caller keeps `data`
   * unchanged until this resolves.
   */
  async put(obj: ObjectVersion, index: number, data: Buffer): Promise<void> {
    const key = blockKey(obj.source, obj.ref, obj.version, index);
    if (this.index.has(key) || this.pinned.has(key) || this.writingKeys.has(key)) return;
    if (data.length > this.o.maxBytes && !this.pinnedObjects.has(this.objKey(obj.source, obj.ref))) return;
    const header: Header = { source: obj.source, ref: obj.ref, version: obj.version, index, len: data.length, crc: 0 };
    if (!headerFits(header)) return; // a name too long for a block file's header: not cached on disk
    header.crc = blockCrc32(data);
    this.writingKeys.add(key);
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const stored = await this.store(key, header, data);
          if (stored) this.addIndex(key, stored);
          return;
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOSPC' && code !== 'EDQUOT') return; // caching is best effort: never fail the read
          // Evicted slots are reused first, and overwriting one needs no new space.
          this.evictBytes(Math.max(data.length * 8, 64 * 1024 * 1024));
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    } finally {
      this.writingKeys.delete(key);
    }
  }

  /**
   * Write the block: a full-size one into a slab slot, another (an object's short last block) into a
   * file of its own. Undefined when no slot can be had: the block is then not cached.
   */
  private async store(key: string, header: Header, data: Buffer): Promise<IndexEntry | undefined> {
    const at = { source: header.source, ref: header.ref, len: data.length };
    if (data.length !== this.blockSize) {
      const file = this.fileFor(key);
      return { ...at, file, dataOffset: await this.writeFile(file, header, data) };
    }
    const slot = this.takeSlot();
    if (slot === undefined) return undefined;
    try {
      const stamped = { ...header, t: Date.now() };
      const write = (page: Buffer, direct: boolean) => {
        fillHeaderPage(stamped, page);
        return this.slab.write(slot, page, data, direct);
      };
      const viaPage = await this.withHeaderPage(isDirectIoReady(data), (page) => write(page, true));
      if (!viaPage.done) await write(Buffer.alloc(DIRECT_IO_ALIGN), false);
    } catch (e) {
      this.slab.release(slot);
      throw e;
    }
    return { ...at, file: this.slab.file, slot, dataOffset: DIRECT_IO_ALIGN };
  }

  /**
   * A slot, keeping the slab within the cap (and the pinned blocks): when none is free and the file
   * has as many slots as the cap holds, the least recently used block makes room first. Undefined when
   * even that frees none (its slot is being read): the block is then not cached.
   */
  private takeSlot(): number | undefined {
    const maxSlots = Math.ceil(this.o.maxBytes / this.blockSize) + this.pinned.size;
    const slot = this.slab.take(maxSlots);
    if (slot !== undefined) return slot;
    this.evictBytes(this.blockSize);
    return this.slab.take(maxSlots);
  }

  /** The file's parsed header, with the block's bytes read into `data`. */
  private async readHeaderAndData(e: IndexEntry, data: Buffer): Promise<Header | undefined> {
    const slot = e.slot;
    if (slot !== undefined) {
      const viaPage = await this.withHeaderPage(isDirectIoReady(data), (page) => this.slab.read(slot, page, data, true));
      return viaPage.done ? viaPage.value : this.slab.read(slot, Buffer.alloc(DIRECT_IO_ALIGN), data, false);
    }
    const direct = e.dataOffset === DIRECT_IO_ALIGN && isDirectIoReady(data);
    const viaPage = await this.withHeaderPage(direct, async (page) => {
      await readBlockFileDirect(e.file, page, data);
      return parseHeader(page)?.header;
    });
    if (viaPage.done) return viaPage.value;
    return parseHeader(await readBlockFile(e.file, e.dataOffset, data))?.header;
  }

  private async writeFile(file: string, header: Header, data: Buffer): Promise<number> {
    const viaPage = await this.withHeaderPage(isDirectIoReady(data), (page) => writeBlockFileDirect(file, header, data, page));
    return viaPage.done ? viaPage.value : writeBlockFile(file, header, data);
  }

  /**
   * Direct I/O with an aligned header page, when `wanted` and it can be had: not done when no page is
   * free, or when the filesystem refuses direct I/O (EINVAL), which turns it off for good.
   */
  private async withHeaderPage<T>(wanted: boolean, io: (page: Buffer) => Promise<T>): Promise<{ done: true; value: T } | { done: false }> {
    const page = wanted && this.direct ? this.takeHeaderPage() : undefined;
    if (!page) return { done: false };
    try {
      return { done: true, value: await io(page) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      this.direct = false;
      return { done: false };
    } finally {
      this.headerPages.push(page);
    }
  }

  /** An aligned page for a direct read's or write's header; none when all are in use (that one is buffered). */
  private takeHeaderPage(): Buffer | undefined {
    if (!this.headerArena) {
      try {
        this.headerArena = alignedBuffer(HEADER_PAGES * DIRECT_IO_ALIGN);
      } catch {
        this.direct = false;
        return undefined;
      }
      for (let i = 0; i < HEADER_PAGES; i++) this.headerPages.push(this.headerArena.subarray(i * DIRECT_IO_ALIGN, (i + 1) * DIRECT_IO_ALIGN));
    }
    return this.headerPages.pop();
  }

  /** Drop the least recently used blocks worth at least `bytes`. */
  private evictBytes(bytes: number) {
    let freed = 0;
    while (freed < bytes) {
      const k = this.index.rkeys().next().value as string | undefined;
      if (k === undefined) return;
      freed += this.index.get(k, { updateAgeOnGet: false })?.len ?? 0;
      this.index.delete(k);
      this.evictions++;
    }
  }

  async dropObject(source: string, ref: Ref): Promise<void> {
    for (const k of [...(this.byObject.get(this.objKey(source, ref)) ?? [])]) this.index.delete(k);
    for (const [k, e] of [...this.pinned]) {
      if (e.source !== source || e.ref !== ref) continue;
      this.pinned.delete(k);
      this.pinnedBytes -= e.len;
      this.discard(e);
    }
  }

  stats(): CacheStats & { corrupt: number; evictions: number; blocks: number; pinnedBytes: number; pinnedBlocks: number; slabSlots: number; directIo: boolean; checksum: string } {
    return {
      bytes: this.index.calculatedSize, limit: this.o.maxBytes, hits: this.hits, misses: this.misses, corrupt: this.corrupt, evictions: this.evictions, blocks: this.index.size,
      pinnedBytes: this.pinnedBytes, pinnedBlocks: this.pinned.size, slabSlots: this.slab.slots, directIo: this.direct, checksum: crc32Implementation,
    };
  }

  /** Close the slab (shutdown; a tier used after this must init() again). */
  async close(): Promise<void> {
    this.scanned = undefined;
    await this.slab.reset();
  }

  /** Remove every block file (tests, `assetfs cache clear`). */
  async clear(): Promise<void> {
    this.index.clear();
    this.pinned.clear();
    this.pinnedBytes = 0;
    await this.slab.reset();
    await rm(this.o.dir, { recursive: true, force: true });
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
    await this.slab.scan();
  }
}
