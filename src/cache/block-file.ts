/**
 * The block file format of the disk tier, and its reads and writes.
 *
 * A file is MAGIC, a 4-byte little-endian header length, the header (JSON: source, ref, version,
 * index, len, crc32, and `at` when the bytes do not follow it directly), then the block's bytes.
 * Written for direct I/O (blocks a page multiple long), the header is padded to one page (`at` = 4096).
 */
import { constants } from 'node:fs';
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import pLimit from 'p-limit';
import { join } from 'node:path';
import { DIRECT_IO_ALIGN } from '../util/aligned.js';

const MAGIC = Buffer.from('AFSBLK1\n');
/** Longest header JSON: with MAGIC and its length it always fits the one page a scan reads (and a direct write pads to). */
const MAX_HEADER = 3500;

/** Whether a block with this header can be stored (a name of thousands of bytes cannot). */
export function headerFits(header: Header): boolean {
  return Buffer.byteLength(JSON.stringify({ ...header, at: DIRECT_IO_ALIGN })) <= MAX_HEADER;
}

export interface Header {
  source: string;
  ref: string;
  version: string;
  index: number;
  len: number;
  crc: number;
  /** Where the bytes start, when not right after the header. */
  at?: number;
  /** When it was written (ms since the epoch), in slab slots: the start-up scan's order for eviction. */
  t?: number;
}

/**
 * Reads a block file in one syscall: its header into a small buffer, returned, and its bytes straight
 * into `data` (exactly `data.length` of them, or the read fails). Three thread-pool trips (open, readv,
 * close) instead of readFile's six, and no copy.
 */
export async function readBlockFile(file: string, dataOffset: number, data: Buffer): Promise<Buffer> {
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

/** A block file written by writeBlockFileDirect, with O_DIRECT: its header page into `page`, its bytes into `data`. */
export async function readBlockFileDirect(file: string, page: Buffer, data: Buffer): Promise<void> {
  const fh = await open(file, constants.O_RDONLY | constants.O_DIRECT);
  try {
    const { bytesRead } = await fh.readv([page, data], 0);
    if (bytesRead !== page.length + data.length) throw new Error(`short block file (${bytesRead} bytes)`);
  } finally {
    await fh.close();
  }
}

export function parseHeader(buf: Buffer): { header: Header; dataOffset: number } | undefined {
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const len = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (len > MAX_HEADER || buf.length < start + len) return undefined;
  try {
    const header = JSON.parse(buf.subarray(start, start + len).toString('utf8')) as Header;
    if (typeof header.version !== 'string' || typeof header.index !== 'number' || typeof header.crc !== 'number') return undefined;
    // `at`: the bytes start past padding (files written with direct I/O start them on a page).
    const at = header.at ?? start + len;
    if (!Number.isInteger(at) || at < start + len || at > DIRECT_IO_ALIGN) return undefined;
    return { header, dataOffset: at };
  } catch {
    return undefined;
  }
}

/** Sub-directories known to exist: a block write costs no mkdir once its directory is made. */
const madeDirs = new Set<string>();

/** Writes the block file (in place, see writeInPlace); returns where its bytes start. */
export async function writeBlockFile(file: string, header: Header, data: Buffer): Promise<number> {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  await writeInPlace(file, 'w', [MAGIC, len, json, data]);
  return MAGIC.length + len.length + json.length;
}

/**
 * The block file written with O_DIRECT, past the page cache: the header padded to one page in `page`
 * (page-aligned; the header fits, see headerFits), then `data` (page-aligned, a page multiple long).
 * Returns where the bytes start.
 */
export async function writeBlockFileDirect(file: string, header: Header, data: Buffer, page: Buffer): Promise<number> {
  fillHeaderPage(header, page);
  await writeInPlace(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT, [page, data]);
  return DIRECT_IO_ALIGN;
}

/** `page` (one page) := MAGIC, the header's length and the header, naming its bytes as starting one page in. */
export function fillHeaderPage(header: Header, page: Buffer): void {
  const json = Buffer.from(JSON.stringify({ ...header, at: DIRECT_IO_ALIGN }));
  page.fill(0);
  MAGIC.copy(page);
  page.writeUInt32LE(json.length, MAGIC.length);
  json.copy(page, MAGIC.length + 4);
}

/**
 * Write `buffers` to `file` (opened with `flags`, 0600). In place, not to a temp name renamed after: a
 * block file is only ever read once the index holds it, which happens after this resolves, and a
 * crash mid-write leaves a file shorter than its header says (the start-up scan deletes it) or bytes
 * its CRC rejects (deleted on read). The rename cost a fourth file operation per block.
 */
async function writeInPlace(file: string, flags: string | number, buffers: Buffer[]): Promise<void> {
  const dir = join(file, '..');
  const makeDir = async () => {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    madeDirs.add(dir);
  };
  if (!madeDirs.has(dir)) await makeDir();
  const fh = await open(file, flags, 0o600).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
    await makeDir(); // removed behind our back (clear(), or by hand): make it again
    return open(file, flags, 0o600);
  });
  try {
    const total = buffers.reduce((n, b) => n + b.length, 0);
    const { bytesWritten } = await fh.writev(buffers, 0);
    if (bytesWritten !== total) throw Object.assign(new Error('short write'), { code: 'ENOSPC' });
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(file).catch(() => undefined);
    throw e;
  }
  await fh.close();
}

/** Block files whose headers the start-up scan reads at once. */
const SCAN_CONCURRENCY = 32;

/**
 * The block files under `dir`/<sub>/, with their headers; an unreadable, foreign or torn one (shorter
 * than its header says: a crash mid-write) is deleted. Headers are read SCAN_CONCURRENCY at a time:
 * one after another, a 4 GiB cache took 1.5 s to index after a reboot (each read waits on the disk).
 */
export async function scanBlockFiles(dir: string): Promise<Array<{ file: string; header: Header; dataOffset: number; mtime: number }>> {
  const limit = pLimit(SCAN_CONCURRENCY);
  const reads: Array<Promise<{ file: string; header: Header; dataOffset: number; mtime: number } | undefined>> = [];
  for (const sub of await readdir(dir).catch(() => [] as string[])) {
    const d = join(dir, sub);
    for (const name of await readdir(d).catch(() => [] as string[])) {
      const file = join(d, name);
      if (!name.endsWith('.blk')) {
        reads.push(limit(() => unlink(file).then(() => undefined, () => undefined))); // not ours (or a temp file of an older version)
        continue;
      }
      reads.push(limit(() => readBlockFileHeader(file)));
    }
  }
  return (await Promise.all(reads)).filter((f) => f !== undefined);
}

async function readBlockFileHeader(file: string): Promise<{ file: string; header: Header; dataOffset: number; mtime: number } | undefined> {
  const fh = await open(file, 'r').catch(() => undefined);
  if (!fh) return undefined;
  let parsed: ReturnType<typeof parseHeader>;
  let mtime = 0;
  try {
    const head = Buffer.alloc(DIRECT_IO_ALIGN);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    parsed = parseHeader(head.subarray(0, bytesRead));
    const st = await fh.stat();
    mtime = st.mtimeMs;
    if (parsed && st.size < parsed.dataOffset + parsed.header.len) parsed = undefined;
  } catch {
    parsed = undefined;
  } finally {
    await fh.close().catch(() => undefined);
  }
  if (!parsed) {
    await unlink(file).catch(() => undefined);
    return undefined;
  }
  return { file, header: parsed.header, dataOffset: parsed.dataOffset, mtime };
}
