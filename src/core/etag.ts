/**
 * ETags compare after normalisation: S3 and Azure quote them (`"abc"`), listings sometimes do not,
 * and weak validators (`W/"…"`) are never trusted as a version (undici's retry handler drops them too).
 */
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
