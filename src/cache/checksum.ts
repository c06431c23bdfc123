/**
 * The disk tier's block checksum: CRC-32 (the IEEE polynomial, the same value zlib computes, so
 * blocks written by either implementation verify with the other).
 *
 * Every block is checksummed once when written and once per read from disk, on the main thread, so
 * its speed is the disk tier's CPU cost per byte. @node-rs/crc32 folds with the CPU's carry-less
 * multiply (PCLMULQDQ) where the CPU has one, several times faster than Node's zlib, which does not
 * use it (docs/perf-log.md). Where its prebuilt binary is missing (a platform it does not ship for),
 * zlib's gives the same values more slowly.
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

type Crc32 = (data: Buffer) => number;

function loadFast(): Crc32 | undefined {
  try {
    const { crc32 } = createRequire(import.meta.url)('@node-rs/crc32') as { crc32: Crc32 };
    // The check value of CRC-32/ISO-HDLC (zlib's): a binding that computes anything else is not used.
    return crc32(Buffer.from('123456789')) === 0xcbf43926 ? crc32 : undefined;
  } catch {
    return undefined;
  }
}

const fast = loadFast();

/** Which implementation `blockCrc32` uses, reported in the disk tier's stats. */
export const crc32Implementation: '@node-rs/crc32' | 'zlib' = fast ? '@node-rs/crc32' : 'zlib';

export const blockCrc32: Crc32 = fast ?? zlibCrc32;
