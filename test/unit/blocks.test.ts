import { describe, expect, it } from 'vitest';
import { blockCount, blockIndex, blockRange, blocksForRead, chunkRuns } from '../../src/core/blocks.js';

describe('block math (src/core/blocks.ts)', () => {
  it('maps offsets to block indices', () => {
    expect(blockIndex(0, 4)).toBe(0);
    expect(blockIndex(3, 4)).toBe(0);
    expect(blockIndex(4, 4)).toBe(1);
    expect(blockIndex(2 ** 40 + 5, 2 ** 20)).toBe(2 ** 20);
  });

  it('gives each block its byte range, the last one short', () => {
    expect(blockRange(0, 4, 10)).toEqual({ start: 0, end: 4 });
    expect(blockRange(1, 4, 10)).toEqual({ start: 4, end: 8 });
    expect(blockRange(2, 4, 10)).toEqual({ start: 8, end: 10 });
    expect(blockRange(2, 4, 12)).toEqual({ start: 8, end: 12 });
  });

  it('counts blocks, 0 for an empty object', () => {
    expect(blockCount(0, 4)).toBe(0);
    expect(blockCount(1, 4)).toBe(1);
    expect(blockCount(4, 4)).toBe(1);
    expect(blockCount(5, 4)).toBe(2);
  });

  it('lists the blocks a read touches, clamped at EOF', () => {
    expect(blocksForRead(0, 4, 10, 4)).toEqual({ first: 0, last: 0 });
    expect(blocksForRead(3, 2, 10, 4)).toEqual({ first: 0, last: 1 });
    expect(blocksForRead(0, 100, 10, 4)).toEqual({ first: 0, last: 2 });
    expect(blocksForRead(9, 100, 10, 4)).toEqual({ first: 2, last: 2 });
    expect(blocksForRead(8, 4, 12, 4)).toEqual({ first: 2, last: 2 });
  });

  it('returns undefined for empty reads and reads at or past EOF', () => {
    expect(blocksForRead(0, 0, 10, 4)).toBeUndefined();
    expect(blocksForRead(10, 5, 10, 4)).toBeUndefined();
    expect(blocksForRead(11, 5, 10, 4)).toBeUndefined();
    expect(blocksForRead(0, 5, 0, 4)).toBeUndefined();
  });

  it('agrees with a byte-by-byte model for every small read', () => {
    const bs = 3;
    for (let size = 0; size <= 10; size++) {
      for (let pos = 0; pos <= 11; pos++) {
        for (let len = 0; len <= 11; len++) {
          const touched = new Set<number>();
          for (let b = pos; b < Math.min(pos + len, size); b++) touched.add(Math.floor(b / bs));
          const got = blocksForRead(pos, len, size, bs);
          if (touched.size === 0) expect(got).toBeUndefined();
          else expect(got).toEqual({ first: Math.min(...touched), last: Math.max(...touched) });
        }
      }
    }
  });

  it('splits a block span into runs of at most maxBlocks', () => {
    expect(chunkRuns(0, 9, 4)).toEqual([
      { first: 0, last: 3 },
      { first: 4, last: 7 },
      { first: 8, last: 9 },
    ]);
    expect(chunkRuns(5, 5, 8)).toEqual([{ first: 5, last: 5 }]);
    expect(chunkRuns(3, 2, 8)).toEqual([]);
  });
});
