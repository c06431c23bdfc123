/**
 * One read of an object version, byte-exact across block boundaries: the blocks it touches are asked
 * for in parallel and each is copied into `into` as soon as it arrives.
 */
import type { BlockSource, ObjectVersion } from '../core/types.js';
import { blocksForRead } from '../core/blocks.js';
import { FsError } from '../core/errors.js';

/** Reads up to `length` bytes at `position` into `into[0…]`; returns the bytes read, 0 at or past EOF. */
export async function readInto(
  source: BlockSource,
  obj: ObjectVersion,
  into: Buffer,
  length: number,
  position: number,
  signal?: AbortSignal,
): Promise<number> {
  if (position < 0 || !Number.isSafeInteger(position)) throw new FsError('EINVAL', `invalid read position ${position}`);
  const want = Math.min(length, into.length);
  const blockSize = source.blockSize;
  const span = blocksForRead(position, want, obj.size, blockSize);
  if (!span) return 0;
  const end = Math.min(position + want, obj.size);
  const copies: Array<Promise<void>> = [];
  for (let index = span.first; index <= span.last; index++) {
    copies.push(
      source.readBlock(obj, index, signal).then((block) => {
        if (!copyFromBlock(block, index, blockSize, into, position, end)) {
          throw new FsError('EIO', `block ${index} of ${obj.source}:${obj.ref} has ${block.length} bytes, too few for this read`);
        }
      }),
    );
  }
  // Settle all before failing: no late copy may land in `into` after the caller got its answer.
  const results = await Promise.allSettled(copies);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
  return end - position;
}

/**
 * readInto answered synchronously, when every block the read touches is in memory: no promise, no
 * microtask hop (a hot read is one of these per 128 KiB FUSE request). Undefined, with nothing
 * copied, when any block is missing: the caller then takes readInto.
 */
export function readIntoCached(source: BlockSource, obj: ObjectVersion, into: Buffer, length: number, position: number): number | undefined {
  if (!source.peekBlock || position < 0 || !Number.isSafeInteger(position)) return undefined;
  const want = Math.min(length, into.length);
  const blockSize = source.blockSize;
  const span = blocksForRead(position, want, obj.size, blockSize);
  if (!span) return 0;
  const end = Math.min(position + want, obj.size);
  const blocks: Buffer[] = [];
  for (let index = span.first; index <= span.last; index++) {
    const block = source.peekBlock(obj, index);
    if (!block || !covers(block, index, blockSize, end)) return undefined;
    blocks.push(block);
  }
  blocks.forEach((block, i) => copyFromBlock(block, span.first + i, blockSize, into, position, end));
  return end - position;
}

/** Whether block `index` holds all its share of a read ending at `end`. */
function covers(block: Buffer, index: number, blockSize: number, end: number): boolean {
  return block.length >= Math.min(end, (index + 1) * blockSize) - index * blockSize;
}

/** Copy block `index`'s share of the read [position, end) into `into`; false when the block is too short for it. */
function copyFromBlock(block: Buffer, index: number, blockSize: number, into: Buffer, position: number, end: number): boolean {
  if (!covers(block, index, blockSize, end)) return false;
  const blockStart = index * blockSize;
  const from = Math.max(position, blockStart);
  block.copy(into, from - position, from - blockStart, Math.min(end, blockStart + blockSize) - blockStart);
  return true;
}
