/**
 * Sample content for `assetfs demo`, tests and benchmarks: real media files shipped in lab/src/demo/media,
 * plus large files generated deterministically (AES-CTR keystream), so any reader can recompute
 * the expected bytes from (seed, size) without storing them.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Directory of the shipped sample media. This module runs as lab/src/demo/sample-media.ts (vitest) or
 * lab/dist/demo/sample-media.js (node): both two levels below lab/, where src/demo/media is.
 */
export function mediaDir(): string {
  return fileURLToPath(new URL('../../src/demo/media', import.meta.url));
}

/** `size` pseudo-random bytes, the same for the same seed. */
export function deterministicBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface SampleFile {
  path: string;
  data: Buffer;
}

/** The demo tree of a plain storage source: real media, subtitles, nested folders and one large file. */
export async function storageSampleTree(opts: { bigFileBytes?: number } = {}): Promise<SampleFile[]> {
  const dir = mediaDir();
  const [mp4, png, en, fr] = await Promise.all(
    ['sample.mp4', 'poster.png', 'sample.en.srt', 'sample.fr.srt'].map((f) => readFile(join(dir, f))),
  );
  const big = opts.bigFileBytes ?? 72 * 1024 * 1024;
  return [
    { path: 'README.txt', data: Buffer.from('Files here are fetched lazily, block by block, only when a program reads them.\n') },
    { path: 'videos/sample.mp4', data: mp4! },
    { path: 'videos/subtitles/sample.en.srt', data: en! },
    { path: 'videos/subtitles/sample.fr.srt', data: fr! },
    { path: 'images/poster.png', data: png! },
    { path: 'projects/2026/launch/teaser.mp4', data: mp4! },
    { path: `large/random-${Math.round(big / 1024 / 1024)}MiB.bin`, data: deterministicBytes('assetfs-demo-large', big) },
  ];
}

/** A valid MP4 of about `size` bytes with its moov at the end: the sample's boxes, a large `free` box before moov. */
export async function sampleMp4WithMoovAtEnd(size: number): Promise<Buffer> {
  const sample = await readFile(join(mediaDir(), 'sample.mp4'));
  let at = 0;
  let moovAt = -1;
  while (at + 8 <= sample.length) {
    const len = sample.readUInt32BE(at);
    if (sample.toString('latin1', at + 4, at + 8) === 'moov') moovAt = at;
    if (len < 8) break;
    at += len;
  }
  if (moovAt < 0) throw new Error('sample.mp4 has no top-level moov');
  const pad = Math.max(16, size - sample.length);
  const free = Buffer.alloc(pad);
  free.writeUInt32BE(1, 0); // 64-bit size follows
  free.write('free', 4, 'latin1');
  free.writeBigUInt64BE(BigInt(pad), 8);
  return Buffer.concat([sample.subarray(0, moovAt), free, sample.subarray(moovAt)]);
}
