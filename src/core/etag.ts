/**
 * Versions and HTTP ETags. A version is compared only with a version of the same kind:
 *  - An object's version comes from where the provider learnt it: a storage listing or HEAD (S3, Azure:
 *    the very ETag that storage's GETs carry), or a platform's own listing (Wordbee's `v`, a Nomad or
 *    MediaHub record's eTag field, an AMS revision, size and mtime). Only the first kind is an HTTP
 *    ETag of the same kind of response as a download; a locator says so with `etagIsVersion: true`.
 *  - Every other download ETag is compared only with the ETag an earlier download of the same object
 *    version carried (DownloadEtag): the first one seen is pinned, a later different one means the
 *    bytes changed under that version. A download with an ETag its listing never showed is therefore
 *    not "changed", and a download without an ETag is never refused for it.
 * ETags compare after normalisation: S3 and Azure quote them (`"abc"`), listings sometimes do not, and
 * weak validators (`W/"…"`) are never trusted as a version (undici's retry handler drops them too).
 */
import type { Expectation, SeenEtag, SignedLocator } from './types.js';

export function normalizeEtag(etag: string | undefined | null): string {
  if (!etag) return '';
  let e = etag.trim();
  if (e.startsWith('W/')) return '';
  if (e.startsWith('"') && e.endsWith('"') && e.length >= 2) e = e.slice(1, -1);
  return e;
}

/** True when a response's ETag is compatible with the version we mean to read ('' means unknown: accept). */
export function etagMatches(expected: string, got: string | undefined | null): boolean {
  if (!expected) return true;
  const g = normalizeEtag(got);
  return g === '' || g === normalizeEtag(expected);
}

/**
 * The ETag that downloads of one object version carry: the first strong one seen is pinned, and a
 * later response with another one is refused. Shared by every read of that version (block-source.ts).
 */
export class DownloadEtag implements SeenEtag {
  private pinned = '';

  /** The ETag pinned so far ('' when no download has carried one). */
  get value(): string {
    return this.pinned;
  }

  /** Notes a response's ETag; false when it differs from the one pinned before. */
  admit(got: string | undefined | null): boolean {
    const g = normalizeEtag(got);
    if (g === '') return true;
    if (this.pinned === '') this.pinned = g;
    return g === this.pinned;
  }
}

/**
 * Why a download response cannot be of the expected version, judged by its ETag alone; undefined
 * when it can. Sizes are the transport's to check.
 */
export function etagConflict(loc: SignedLocator, expect: Expectation, got: string | undefined): string | undefined {
  if (loc.etagIsVersion === true && !etagMatches(expect.version, got)) {
    return `ETag ${got} is not the listed version ${expect.version}`;
  }
  const seen = expect.downloadEtag;
  if (seen && !seen.admit(got)) return `ETag ${got} differs from ${seen.value}, which earlier downloads of this version carried`;
  return undefined;
}
