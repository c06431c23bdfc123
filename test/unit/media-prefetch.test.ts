import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isMp4Family, locateMoov } from '../../src/read/media-prefetch.js';
import { mediaDir } from '@assetfs/lab/demo/sample-media.js';

function box(type: string, payload: number | Buffer, large = false): Buffer {
  const body = typeof payload === 'number' ? Buffer.alloc(payload) : payload;
  if (large) {
    const h = Buffer.alloc(16);
    h.writeUInt32BE(1, 0);
    h.write(type, 4, 'latin1');
    h.writeBigUInt64BE(BigInt(16 + body.length), 8);
    return Buffer.concat([h, body]);
  }
  const h = Buffer.alloc(8);
  h.writeUInt32BE(8 + body.length, 0);
  h.write(type, 4, 'latin1');
  return Buffer.concat([h, body]);
}

function reader(file: Buffer) {
  const reads: Array<[number, number]> = [];
  return {
    reads,
    readAt: async (pos: number, len: number) => {
      reads.push([pos, len]);
      return file.subarray(pos, pos + len);
    },
  };
}

describe('media-aware prefetch: locating moov by walking top-level boxes', () => {
  it('recognises the MP4 family by name', () => {
    expect(['a.mp4', 'B.MOV', 'x.m4a', 'y.3gp'].every(isMp4Family)).toBe(true);
    expect(['a.mkv', 'b.srt', 'mp4'].some(isMp4Family)).toBe(false);
  });

  it('finds moov at the end of a real ffmpeg MP4 in a few header reads', async () => {
    const mp4 = await readFile(join(mediaDir(), 'sample.mp4'));
    const r = reader(mp4);
    const moov = await locateMoov(r.readAt, mp4.length);
    expect(moov).toBeDefined();
    expect(mp4.toString('latin1', moov!.start + 4, moov!.start + 8)).toBe('moov');
    expect(moov!.end).toBe(mp4.length);
    expect(r.reads.length).toBeLessThanOrEqual(5);
    expect(r.reads.every(([, len]) => len <= 16)).toBe(true);
  });

  it('follows 64-bit box sizes (a large mdat) and size-0 boxes', async () => {
    const file = Buffer.concat([box('ftyp', 16), box('mdat', 100_000, true), box('moov', 500)]);
    expect(await locateMoov(reader(file).readAt, file.length)).toEqual({ start: 24 + 100_016, end: file.length });
    const toEnd = Buffer.concat([box('ftyp', 16), box('moov', 10)]);
    toEnd.writeUInt32BE(0, 24); // moov's size 0: to end of file
    expect(await locateMoov(reader(toEnd).readAt, toEnd.length)).toEqual({ start: 24, end: toEnd.length });
  });

  it('gives up on files that are not box sequences, and on hostile sizes', async () => {
    const text = Buffer.from('this is not an mp4 file at all, just text');
    expect(await locateMoov(reader(text).readAt, text.length)).toBeUndefined();
    const tooBig = box('ftyp', 16);
    tooBig.writeUInt32BE(1_000_000, 0);
    expect(await locateMoov(reader(tooBig).readAt, tooBig.length)).toBeUndefined();
    const noMoov = Buffer.concat([box('ftyp', 16), box('mdat', 64)]);
    expect(await locateMoov(reader(noMoov).readAt, noMoov.length)).toBeUndefined();
    const many = Buffer.concat(Array.from({ length: 100 }, () => box('free', 0)));
    const r = reader(many);
    expect(await locateMoov(r.readAt, many.length, 64)).toBeUndefined();
    expect(r.reads.length).toBe(64);
  });
});
