import { describe, expect, it } from 'vitest';
import { Readahead, fitReadahead } from '../../src/read/readahead.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BS = MiB;

/** Reads an object sequentially in `chunk`-sized reads and collects every prefetch request. */
function sequential(ra: Readahead, size: number, chunk: number, from = 0) {
  const asked: Array<{ first: number; last: number }> = [];
  for (let pos = from; pos < size; pos += chunk) {
    const r = ra.onRead(pos, chunk, size);
    if (r) asked.push(r);
  }
  return asked;
}

describe('Readahead', () => {
  it('a first read at 0 starts a stream covering the read plus the initial window', () => {
    const ra = new Readahead({ blockSize: BS, maxWindow: 64 * MiB, initialWindow: MiB });
    expect(ra.onRead(0, 128 * KiB, 1024 * MiB)).toEqual({ first: 0, last: 1 });
  });

  it('sequential reads cover every block exactly once; the window grows to the cap and stays full in part-sized top-ups', () => {
    const size = 1024 * MiB + 123;
    const ra = new Readahead({ blockSize: BS, maxWindow: 64 * MiB, step: 8 * MiB });
    const asked: Array<{ first: number; last: number }> = [];
    let maxAhead = 0;
    let minSteadyAhead = Infinity;
    for (let pos = 0; pos < size; pos += 128 * KiB) {
      const r = ra.onRead(pos, 128 * KiB, size);
      if (r) asked.push(r);
      const requestedEnd = (asked.at(-1)!.last + 1) * MiB;
      const ahead = Math.min(requestedEnd, size) - Math.min(pos + 128 * KiB, size);
      maxAhead = Math.max(maxAhead, ahead);
      if (pos > 128 * MiB && requestedEnd < size) minSteadyAhead = Math.min(minSteadyAhead, ahead);
    }
    const blocks = asked.flatMap((r) => Array.from({ length: r.last - r.first + 1 }, (_, i) => r.first + i));
    expect(blocks).toEqual(Array.from({ length: 1025 }, (_, i) => i));
    const sizes = asked.map((r) => r.last - r.first + 1);
    // The window grows: early requests are smaller than the window at its cap.
    expect(sizes[0]).toBeLessThan(8);
    expect(maxAhead).toBeLessThanOrEqual(64 * MiB);
    // Once full, the pipeline never drains below a window minus one part, topped up one part at a time.
    expect(minSteadyAhead).toBeGreaterThanOrEqual(64 * MiB - 8 * MiB - 128 * KiB);
    const steady = sizes.slice(10, -1);
    expect(steady.every((n) => n >= 8)).toBe(true);
  });

  it('never requests past the end of the object', () => {
    const ra = new Readahead({ blockSize: BS });
    const asked = sequential(ra, 3 * MiB + 1, 64 * KiB);
    for (const r of asked) expect(r.last).toBeLessThanOrEqual(3);
    expect(ra.onRead(10 * MiB, 10, 3 * MiB + 1)).toBeUndefined();
  });

  it('random reads ask for nothing beyond what they touch', () => {
    const ra = new Readahead({ blockSize: BS });
    const size = 1024 * MiB;
    ra.onRead(0, 4 * KiB, size); // a stream may start at 0 …
    for (const pos of [700 * MiB, 3 * MiB + 17, 512 * MiB, 100 * MiB, 900 * MiB, 2 * MiB]) {
      expect(ra.onRead(pos, 4 * KiB, size)).toBeUndefined(); // … but every seek ends it
    }
  });

  it('a small forward seek inside the requested window keeps the stream', () => {
    const ra = new Readahead({ blockSize: BS, initialWindow: 4 * MiB });
    const size = 1024 * MiB;
    expect(ra.onRead(0, 128 * KiB, size)).toEqual({ first: 0, last: 4 });
    // Skip ahead 2 MiB (within the 5 MiB requested): still a stream, and the next request follows on.
    expect(ra.onRead(2 * MiB, 128 * KiB, size)).toBeUndefined();
    const next = ra.onRead(3 * MiB, 128 * KiB, size);
    expect(next?.first).toBe(5);
  });

  it('a backward seek resets; reading on from there starts a new small stream', () => {
    const ra = new Readahead({ blockSize: BS });
    const size = 1024 * MiB;
    sequential(ra, 40 * MiB, 128 * KiB);
    expect(ra.onRead(10 * MiB, 128 * KiB, size)).toBeUndefined();
    const restart = ra.onRead(10 * MiB + 128 * KiB, 128 * KiB, size);
    expect(restart).toEqual({ first: 10, last: 11 });
  });

  it('keeps the stream when a raised kernel readahead delivers a whole MiB of reads out of order', () => {
    const ra = new Readahead({ blockSize: BS });
    const size = 1024 * MiB;
    for (let pos = 0; pos < 8 * MiB; pos += 128 * KiB) ra.onRead(pos, 128 * KiB, size);
    // The eight 128 KiB requests of the next MiB arrive last-first.
    for (let i = 7; i >= 0; i--) ra.onRead(8 * MiB + i * 128 * KiB, 128 * KiB, size);
    const more: Array<{ first: number; last: number }> = [];
    for (let pos = 9 * MiB; pos < 40 * MiB; pos += 128 * KiB) {
      const r = ra.onRead(pos, 128 * KiB, size);
      if (r) more.push(r);
    }
    expect(more.length).toBeGreaterThan(0);
    expect(more.every((r) => r.last - r.first + 1 >= 8)).toBe(true); // part-sized top-ups, not single blocks
  });

  it('a large forward seek resets', () => {
    const ra = new Readahead({ blockSize: BS });
    const size = 1024 * MiB;
    ra.onRead(0, 128 * KiB, size);
    expect(ra.onRead(500 * MiB, 128 * KiB, size)).toBeUndefined();
  });

  it('tolerates slightly out-of-order reads within a stream', () => {
    const ra = new Readahead({ blockSize: BS });
    const size = 1024 * MiB;
    sequential(ra, 8 * MiB, 128 * KiB);
    // The kernel may deliver two adjacent reads swapped.
    ra.onRead(8 * MiB + 128 * KiB, 128 * KiB, size);
    ra.onRead(8 * MiB, 128 * KiB, size);
    const more = sequential(ra, 40 * MiB, 128 * KiB, 8 * MiB + 256 * KiB);
    expect(more.length).toBeGreaterThan(0);
    expect(Math.max(...more.map((r) => r.last - r.first + 1))).toBeGreaterThan(2);
  });

  it('reset() forgets the stream', () => {
    const ra = new Readahead({ blockSize: BS });
    ra.onRead(0, 128 * KiB, 100 * MiB);
    ra.reset();
    expect(ra.onRead(0, 128 * KiB, 100 * MiB)).toEqual({ first: 0, last: 1 });
  });

  it('passed() names each block a stream has read and left 2 MiB behind, once', () => {
    const ra = new Readahead({ blockSize: BS });
    const size = 100 * MiB;
    const passed: number[] = [];
    for (let pos = 0; pos < 10 * MiB; pos += 128 * KiB) {
      ra.onRead(pos, 128 * KiB, size);
      const p = ra.passed();
      if (p) for (let i = p.first; i <= p.last; i++) passed.push(i);
    }
    expect(passed).toEqual([0, 1, 2, 3, 4, 5, 6, 7]); // read up to 10 MiB: blocks 8 and 9 are within the tolerance
    expect(ra.passed()).toBeUndefined();
  });

  it('passed() names nothing for random reads, and a new stream starts from its own first whole block', () => {
    const ra = new Readahead({ blockSize: BS });
    const size = 100 * MiB;
    for (const pos of [37, 5, 22, 41].map((b) => b * MiB + 4096)) {
      ra.onRead(pos, 4096, size);
      expect(ra.passed()).toBeUndefined();
    }
    // A stream continuing the last random read (it started mid-block 41): block 41 was not read whole.
    for (let pos = 41 * MiB + 8192; pos < 50 * MiB; pos += 128 * KiB) ra.onRead(pos, 128 * KiB, size);
    expect(ra.passed()).toEqual({ first: 42, last: 47 }); // read to 50 MiB: 48 and 49 are within the tolerance
  });

  it('ignores empty reads and reads past EOF', () => {
    const ra = new Readahead({ blockSize: BS });
    expect(ra.onRead(0, 0, 100)).toBeUndefined();
    expect(ra.onRead(100, 10, 100)).toBeUndefined();
  });
});

describe('fitReadahead', () => {
  it('keeps the configured window and budget when the memory tier holds them', () => {
    expect(fitReadahead({ max: 64 * MiB, budget: 256 * MiB }, 512 * MiB)).toEqual({ max: 64 * MiB, budget: 256 * MiB });
  });
  it('shrinks them to a quarter and a half of a smaller memory tier', () => {
    expect(fitReadahead({ max: 64 * MiB, budget: 256 * MiB }, 16 * MiB)).toEqual({ max: 4 * MiB, budget: 8 * MiB });
  });
});
