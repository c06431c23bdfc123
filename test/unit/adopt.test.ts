/**
 * adopt.ts: a remote copy is the local file only when a content digest says so: the MD5 of a
 * single-part upload, the S3 multipart ETag (MD5 of the parts' MD5s, "-N") for a part size that
 * gives N parts, or a stored content MD5; never size alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sameContent } from '../../src/upload/adopt.js';

const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash('md5').update(b).digest();
/** The ETag S3 gives an object uploaded in parts of `part` bytes. */
const multipartEtag = (data: Buffer, part: number) => {
  const parts: Buffer[] = [];
  for (let at = 0; at < data.length; at += part) parts.push(md5(data.subarray(at, at + part)));
  return `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
};

let dir: string;
let path: string;
const data = Buffer.alloc(11 * MiB + 5);
for (let i = 0; i < data.length; i += 4096) data[i] = (i / 4096) % 251;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'assetfs-adopt-'));
  path = join(dir, 'f.bin');
  await writeFile(path, data);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('sameContent', () => {
  const base = { version: 'v', size: data.length };
  it('matches the MD5 ETag of a single-part upload, and a stored content MD5', async () => {
    expect(await sameContent(path, data.length, { ...base, s3Etag: md5(data).toString('hex') }, 8 * MiB, false)).toBe(true);
    expect(await sameContent(path, data.length, { ...base, md5: md5(data).toString('hex') }, 8 * MiB, false)).toBe(true);
  });
  it('matches a multipart ETag made with our part size or a common one (8 MiB, 5 MiB)', async () => {
    expect(await sameContent(path, data.length, { ...base, s3Etag: multipartEtag(data, 7 * MiB) }, 7 * MiB, false)).toBe(true);
    expect(await sameContent(path, data.length, { ...base, s3Etag: multipartEtag(data, 8 * MiB) }, 7 * MiB, false)).toBe(true);
    expect(await sameContent(path, data.length, { ...base, s3Etag: multipartEtag(data, 5 * MiB) }, 7 * MiB, false)).toBe(true);
  });
  it('refuses other bytes of the same size, a size that differs, and an object without a digest', async () => {
    const other = Buffer.from(data);
    other[other.length - 1] = 1;
    expect(await sameContent(path, data.length, { ...base, s3Etag: md5(other).toString('hex') }, 8 * MiB, false)).toBe(false);
    expect(await sameContent(path, data.length, { ...base, s3Etag: multipartEtag(other, 8 * MiB) }, 8 * MiB, false)).toBe(false);
    expect(await sameContent(path, data.length, { ...base, size: data.length + 1, s3Etag: md5(data).toString('hex') }, 8 * MiB, false)).toBe(false);
    expect(await sameContent(path, data.length, { ...base }, 8 * MiB, false)).toBe(false);
    expect(await sameContent(path, data.length, { ...base, s3Etag: 'not-an-md5' }, 8 * MiB, false)).toBe(false);
  });
});
