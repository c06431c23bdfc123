/**
 * Whether a remote object already is a local file, told from what the platform says of its content.
 * Used when the journal has no record of a watched file (a journal set aside as unreadable, a folder
 * synced before by another run): a remote copy with the same bytes is adopted instead of being seen
 * as "changed by someone else" and answered with a conflict copy of every file.
 *
 * Only a content digest counts, never size alone: an S3-style ETag (the MD5 of a single-part upload,
 * or the MD5 of the parts' MD5s with "-N" for N parts, recomputed here for each candidate part size
 * that gives N parts) or a content MD5 the platform stored (Azure Content-MD5). Without a digest, or
 * with an ETag of another kind (encrypted objects, other stores), nothing is adopted: the conflict
 * copy stays the answer, which loses nothing.
 */
import { createHash } from 'node:crypto';
import { openForUpload } from './local-file.js';
import type { RemoteContent } from './types.js';

/** The digests of the local file: whole-file MD5 and the S3 multipart ETag for each part size asked. */
async function digests(path: string, partSizes: readonly number[], exactPath: boolean): Promise<{ md5: string; multipart: Map<number, string> }> {
  const whole = createHash('md5');
  const perSize = partSizes.map((size) => ({ size, part: createHash('md5'), inPart: 0, parts: [] as Buffer[] }));
  const { fh } = await openForUpload(path, { exactPath });
  try {
    for await (const chunk of fh.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 })) {
      const c = chunk as Buffer;
      whole.update(c);
      for (const s of perSize) {
        for (let at = 0; at < c.length; ) {
          const take = Math.min(s.size - s.inPart, c.length - at);
          s.part.update(c.subarray(at, at + take));
          s.inPart += take;
          at += take;
          if (s.inPart === s.size) {
            s.parts.push(s.part.digest());
            s.part = createHash('md5');
            s.inPart = 0;
          }
        }
      }
    }
  } finally {
    await fh.close();
  }
  const multipart = new Map<number, string>();
  for (const s of perSize) {
    const parts = s.inPart > 0 || s.parts.length === 0 ? [...s.parts, s.part.digest()] : s.parts;
    multipart.set(s.size, `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`);
  }
  return { md5: whole.digest('hex'), multipart };
}

/** Part sizes S3 clients commonly use (ours, the AWS CLI's 8 MiB, rclone's 5 MiB, 16 MiB, 64 MiB). */
const COMMON_PART_SIZES = [5, 8, 16, 64].map((m) => m * 1024 * 1024);

/**
 * Whether the local file at `path` (`size` bytes) has the remote object's content. `ourPartSize` is
 * the part size our own uploader uses for a file of that size.
 */
export async function sameContent(path: string, size: number, remote: RemoteContent, ourPartSize: number, exactPath: boolean): Promise<boolean> {
  if (remote.size !== size) return false;
  const etag = remote.s3Etag?.toLowerCase();
  const multi = etag && /^[0-9a-f]{32}-(\d+)$/.exec(etag);
  const count = multi ? Number(multi[1]) : 0;
  const sizes = multi ? [...new Set([ourPartSize, ...COMMON_PART_SIZES])].filter((p) => Math.max(1, Math.ceil(size / p)) === count) : [];
  const wantMd5 = remote.md5?.toLowerCase() ?? (etag && /^[0-9a-f]{32}$/.test(etag) ? etag : undefined);
  if (!wantMd5 && sizes.length === 0) return false;
  const local = await digests(path, sizes, exactPath);
  if (wantMd5 && local.md5 === wantMd5) return true;
  return sizes.some((p) => local.multipart.get(p) === etag);
}
