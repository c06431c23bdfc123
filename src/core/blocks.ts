/** Byte-range ↔ block-index arithmetic. Pure; every other module uses these instead of its own math. */
import type { ByteRange, ObjectVersion } from './types.js';

/**
 * Bytes per ranged GET when readahead fetches several blocks together (`readahead.part`'s default).
 * 16 MiB, not 8: the daemon's heap grows with the number of GETs (docs/design.md#readahead).
 */
export const DEFAULT_PART_BYTES = 16 * 1024 ** 2;

/** Index of the block holding byte `offset`. */
export function blockIndex(offset: number, blockSize: number): number {
  return Math.floor(offset / blockSize);
}

/** The byte range of block `index` of an object of `size` bytes (the last block may be short). */
export function blockRange(index: number, blockSize: number, size: number): ByteRange {
  const start = index * blockSize;
  return { start, end: Math.min(start + blockSize, size) };
}

/** Number of blocks of an object of `size` bytes (0 for an empty object). */
export function blockCount(size: number, blockSize: number): number {
  return Math.ceil(size / blockSize);
}

/**
 * Blocks touched by reading `length` bytes at `position` of an object of `size` bytes,
 * as an inclusive [first, last] pair, or undefined when the read is empty or past EOF.
 */
export function blocksForRead(
  position: number,
  length: number,
  size: number,
  blockSize: number,
): { first: number; last: number } | undefined {
  const end = Math.min(position + length, size);
  if (length <= 0 || position >= end) return undefined;
  return { first: blockIndex(position, blockSize), last: blockIndex(end - 1, blockSize) };
}

/** Split blocks [first, last] into runs of at most `maxBlocks` consecutive blocks (one ranged GET each). */
export function chunkRuns(first: number, last: number, maxBlocks: number): Array<{ first: number; last: number }> {
  const runs: Array<{ first: number; last: number }> = [];
  for (let i = first; i <= last; i += maxBlocks) runs.push({ first: i, last: Math.min(i + maxBlocks - 1, last) });
  return runs;
}

/*
 * The in-memory keys of the caches and the read path, one nested in the next: an object (source, ref),
 * one version of it, one block of that version. NUL separates the parts: source names are checked by
 * the config and versions are ETags or revisions, neither holds one, so no two keys of different
 * blocks are equal.
 */

/** The key of an object (source, ref), over all its versions (per-object indexes, pins). */
export function objectKey(source: string, ref: string): string {
  return `${source}\0${ref}`;
}

/** The key of one version of an object (whole-body downloads). */
export function versionKey(obj: Pick<ObjectVersion, 'source' | 'ref' | 'version'>): string {
  return `${blockKeyPrefix(obj.source, obj.ref)}${obj.version}`;
}

/** The key of block `index` of an object version (memory and disk tiers, tiered writes, in-flight fetches). */
export function blockKey(obj: Pick<ObjectVersion, 'source' | 'ref' | 'version'>, index: number): string {
  return `${versionKey(obj)}\0${index}`;
}

/** What every blockKey and versionKey of (source, ref), of any version, starts with. */
export function blockKeyPrefix(source: string, ref: string): string {
  return `${objectKey(source, ref)}\0`;
}
