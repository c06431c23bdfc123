/**
 * The disk tier of the block cache: one file per block under <cacheDir>/blocks/<2 hex>/<sha256>.blk.
 *
 * Invariants:
 *  - A block file starts with a header naming (source, ref, version, index, length, crc32) that is
 *    checked on every read: a torn, corrupted or foreign file is deleted and reported as a miss, and a
 *    block of another object version can never be returned (the version is in the key and the header).
 *  - Files are written to a temp name and renamed, so a crash leaves either the old state or a whole block.
 *  - The index lives in memory (an LRU bounded by bytes) and is rebuilt at start by scanning headers,
 *    oldest first: there is no second copy of the truth to disagree with the files.
 *  - A full disk never fails a read: put() evicts and retries once, then gives up silently (the block
 *    simply is not cached). Files are 0600 in 0700 directories.
 *  - Nothing here blocks the event loop: all file I/O is async.
 *  - Blocks of pinned objects (setPinned) live outside the LRU: never evicted, not counted against
 *    `maxBytes`, until unpinned (they then rejoin the LRU as its most recent entries).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import type { BlockCache, CacheStats, ObjectVersion, Ref } from '../core/types.js';

const MAGIC = Buffer.from('AFSBLK1\n');

interface Header {
  source: string;
  ref: string;
  version: string;
  index: number;
  len: number;
  crc: number;
}

interface IndexEntry {
  file: string;
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
  private scanned: Promise<void> | undefined;

  constructor(private readonly o: DiskCacheOptions) {
    this.blockSize = o.blockSize;
    this.index = new LRUCache<string, IndexEntry>({
      maxSize: Math.max(1, o.maxBytes),
      sizeCalculation: (e) => Math.max(1, e.len),
      dispose: (e, key, reason) => {
        this.unindex(e, key);
        if (reason !== 'set' && !this.moving) void unlink(e.file).catch(() => undefined);
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

  private addIndex(key: string, e: IndexEntry) {
    if (this.pinnedObjects.has(this.objKey(e.source, e.ref))) {
      if (!this.pinned.has(key)) this.pinnedBytes += e.len;
      this.pinned.set(key, e);
      return;
    }
    this.index.set(key, e);
    if (!this.index.has(key)) return; // larger than the whole cache
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
    for (const sub of await readdir(this.o.dir).catch(() => [] as string[])) {
      const d = join(this.o.dir, sub);
      for (const name of await readdir(d).catch(() => [] as string[])) {
        const file = join(d, name);
        if (!name.endsWith('.blk')) {
          await unlink(file).catch(() => undefined); // a temp file from an interrupted write
          continue;
        }
        const parsed = await this.readHeader(file);
        const h = parsed?.header;
        if (!h) {
          await unlink(file).catch(() => undefined);
          continue;
        }
        const st = await stat(file).catch(() => undefined);
        if (!st) continue;
        found.push({ key: blockKey(h.source, h.ref, h.version, h.index), e: { file, len: h.len, dataOffset: parsed.dataOffset, source: h.source, ref: h.ref }, mtime: st.mtimeMs });
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) this.addIndex(f.key, f.e);
  }

  private async readHeader(file: string): Promise<{ header: Header; dataOffset: number } | undefined> {
    const fh = await open(file, 'r').catch(() => undefined);
    if (!fh) return undefined;
    try {
      const head = Buffer.alloc(4096);
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      return parseHeader(head.subarray(0, bytesRead));
    } finally {
      await fh.close();
    }
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

  /** Whether a block is on disk (no read, no statistics). */
  has(obj: ObjectVersion, index: number): boolean {
    const key = blockKey(obj.source, obj.ref, obj.version, index);
    return this.index.has(key) || this.pinned.has(key);
  }

  /**
   * The block, verified against its header. `into` (at least the block's length) receives the bytes
   * when given — the memory tier's recycled buffers, so a warm read allocates nothing.
   */
  async get(obj: ObjectVersion, index: number, into?: Buffer): Promise<Buffer | undefined> {
    const key = blockKey(obj.source, obj.ref, obj.version, index);
    const e = this.index.get(key) ?? this.pinned.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    const data = into && into.length >= e.len ? into.subarray(0, e.len) : Buffer.allocUnsafe(e.len);
    const head = await readBlockFile(e.file, e.dataOffset, data).catch(() => undefined);
    const h = head && parseHeader(head)?.header;
    const valid = h && h.source === obj.source && h.ref === obj.ref && h.version === obj.version && h.index === index && h.len === data.length && crc32(data) === h.crc;
    if (!valid) {
      this.corrupt++;
      this.misses++;
      this.index.delete(key); // dispose unlinks the file
      if (this.pinned.delete(key)) {
        this.pinnedBytes -= e.len;
        void unlink(e.file).catch(() => undefined);
      }
      return undefined;
    }
    this.hits++;
    return data;
  }

  async put(obj: ObjectVersion, index: number, data: Buffer): Promise<void> {
    const key = blockKey(obj.source, obj.ref, obj.version, index);
    if (this.index.has(key) || this.pinned.has(key)) return;
    if (data.length > this.o.maxBytes && !this.pinnedObjects.has(this.objKey(obj.source, obj.ref))) return;
    const file = this.fileFor(key);
    const header: Header = { source: obj.source, ref: obj.ref, version: obj.version, index, len: data.length, crc: crc32(data) };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const dataOffset = await writeBlockFile(file, header, data);
        this.addIndex(key, { file, len: data.length, dataOffset, source: obj.source, ref: obj.ref });
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOSPC' && code !== 'EDQUOT') return; // caching is best effort: never fail the read
        this.evictBytes(Math.max(data.length * 8, 64 * 1024 * 1024));
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  /** Drop the least recently used blocks worth at least `bytes`. */
  private evictBytes(bytes: number) {
    let freed = 0;
    while (freed < bytes) {
      const k = this.index.rkeys().next().value as string | undefined;
      if (k === undefined) return;
      freed += this.index.get(k, { updateAgeOnGet: false })?.len ?? 0;
      this.index.delete(k);
    }
  }

  async dropObject(source: string, ref: Ref): Promise<void> {
    for (const k of [...(this.byObject.get(this.objKey(source, ref)) ?? [])]) this.index.delete(k);
    for (const [k, e] of [...this.pinned]) {
      if (e.source !== source || e.ref !== ref) continue;
      this.pinned.delete(k);
      this.pinnedBytes -= e.len;
      await unlink(e.file).catch(() => undefined);
    }
  }

  stats(): CacheStats & { corrupt: number; blocks: number; pinnedBytes: number; pinnedBlocks: number } {
    return {
      bytes: this.index.calculatedSize, limit: this.o.maxBytes, hits: this.hits, misses: this.misses, corrupt: this.corrupt, blocks: this.index.size,
      pinnedBytes: this.pinnedBytes, pinnedBlocks: this.pinned.size,
    };
  }

  /** Remove every block file (tests, `assetfs cache clear`). */
  async clear(): Promise<void> {
    this.index.clear();
    this.pinned.clear();
    this.pinnedBytes = 0;
    await rm(this.o.dir, { recursive: true, force: true });
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 });
  }
}

/**
 * Reads a block file in one syscall: its header into a small buffer, returned, and its bytes straight
 * into `data` (exactly `data.length` of them, or the read fails). Three thread-pool trips (open, readv,
 * close) instead of readFile's six, and no copy.
 */
async function readBlockFile(file: string, dataOffset: number, data: Buffer): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.allocUnsafe(dataOffset);
    const { bytesRead } = await fh.readv([head, data], 0);
    if (bytesRead !== dataOffset + data.length) throw new Error(`short block file (${bytesRead} bytes)`);
    return head;
  } finally {
    await fh.close();
  }
}

function parseHeader(buf: Buffer): { header: Header; dataOffset: number } | undefined {
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const len = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (len > 3500 || buf.length < start + len) return undefined;
  try {
    const header = JSON.parse(buf.subarray(start, start + len).toString('utf8')) as Header;
    if (typeof header.version !== 'string' || typeof header.index !== 'number' || typeof header.crc !== 'number') return undefined;
    return { header, dataOffset: start + len };
  } catch {
    return undefined;
  }
}

/** Sub-directories known to exist: a block write costs no mkdir once its directory is made. */
const madeDirs = new Set<string>();

/** Writes the block file (temp name, then rename); returns where its bytes start. */
async function writeBlockFile(file: string, header: Header, data: Buffer): Promise<number> {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const dir = join(file, '..');
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const makeDir = async () => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    madeDirs.add(dir);
  };
  if (!madeDirs.has(dir)) await makeDir();
  const fh = await open(tmp, 'w', 0o600).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
    await makeDir(); // removed behind our back (clear(), or by hand): make it again
    return open(tmp, 'w', 0o600);
  });
  try {
    const total = MAGIC.length + len.length + json.length + data.length;
    const { bytesWritten } = await fh.writev([MAGIC, len, json, data]);
    if (bytesWritten !== total) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await fh.close();
  await rename(tmp, file);
  return MAGIC.length + len.length + json.length;
}
