/**
 * Nomad answers (search items and asset objects) → RemoteEntry. Tolerant of missing or renamed
 * fields (much of the shape is a guess: docs/providers.md#nomad), and the same rules for both answers, so that a
 * listed entry and a stat of it agree on kind, size and version.
 *
 * Version: the answer's eTag field when it carries one, else `lastModifiedDate:contentLength:id`,
 * which changes whenever Nomad records a new upload. Either is Nomad's own statement, not an ETag the
 * S3 GET of `fullUrl` was seen to carry, so the read path never compares it with a download's ETag
 * (locators leave `etagIsVersion` unset; core/etag.ts).
 */
import type { RemoteEntry, Unreadable } from '../../core/types.js';
import type { NomadAsset, SearchItem } from './api.js';
import type { EntryNumbers } from '../common/entry-numbers.js';

/** Statuses whose bytes can be read (a guess: only these two; docs/providers.md#nomad). */
const READABLE = new Set(['available', 'restored']);

/** Statuses that will not become readable by waiting: EACCES. Every other unreadable one is EAGAIN. */
const BLOCKED: Record<string, string> = {
  archived: 'is archived (in cold storage): restore it in Nomad first',
  archiving: 'is being archived to cold storage: restore it in Nomad first',
  pendingarchive: 'is queued for archiving to cold storage: restore it in Nomad first',
  error: 'is in an error state in Nomad',
  deleting: 'is being deleted',
  placeholder: 'is a placeholder without content',
};

/** Why an asset with this status cannot be read, or undefined when it can (or has no status). */
export function unreadableFor(name: string, status: string | null | undefined): Unreadable | undefined {
  if (!status) return undefined;
  const key = status.toLowerCase();
  if (READABLE.has(key)) return undefined;
  const blocked = BLOCKED[key];
  if (blocked) return { code: 'EACCES', reason: `"${name}" ${blocked} (assetStatus ${status})` };
  return { code: 'EAGAIN', reason: `"${name}" is not readable yet (assetStatus ${status}); try again later` };
}

/** The fields both answers are reduced to. */
export interface AssetFacts {
  id: string;
  name: string;
  /** Bucket, Folder, File, or '' when the answer did not say. */
  type: string;
  status: string | undefined;
  size: number | undefined;
  /** The size field as the answer had it (checked when the entry is built: entry-numbers.ts). */
  rawSize: unknown;
  etag: string | undefined;
  lastModified: string | undefined;
  created: string | undefined;
  fullUrl: string | undefined;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) && n >= 0 ? n : undefined;
};

export function factsOfItem(it: SearchItem): AssetFacts {
  const ids = it.identifiers ?? {};
  return {
    id: it.id,
    name: str(ids.name) ?? str(ids.displayName) ?? str(it.title) ?? it.id,
    type: str(ids.assetTypeDisplay) ?? str(ids.assetType) ?? str(it.assetType) ?? '',
    status: str(ids.assetStatus) ?? str(ids.assetStatusDisplay) ?? str(it.assetStatus),
    size: num(ids.contentLength) ?? num(it.contentLength),
    rawSize: ids.contentLength ?? it.contentLength,
    etag: str(ids.eTag) ?? str(ids.etag) ?? str(it.eTag),
    lastModified: str(it.lastModifiedDate) ?? str(ids.lastModifiedDate),
    created: str(it.createdDate) ?? str(ids.createdDate),
    fullUrl: str(ids.fullUrl),
  };
}

export function factsOfAsset(id: string, a: NomadAsset): AssetFacts {
  return {
    id: str(a.id) ?? id,
    name: str(a.displayName) ?? str(a.name) ?? str(a.bucketName) ?? id,
    type: str(a.assetType) ?? str(a.assetTypeDisplay) ?? '',
    status: str(a.assetStatus),
    size: num(a.contentLength),
    rawSize: a.contentLength,
    etag: str(a.eTag) ?? str(a.etag),
    lastModified: str(a.lastModifiedDate) ?? str(a.displayDate),
    created: str(a.createdDate),
    fullUrl: str(a.fullUrl),
  };
}

/** Folders and buckets are directories; so is an untyped answer without a size or a URL. */
export function isDir(f: AssetFacts): boolean {
  if (f.type) return /^(folder|bucket)$/i.test(f.type);
  return f.size === undefined && f.fullUrl === undefined;
}

export function versionOf(f: AssetFacts): string {
  if (f.etag) return f.etag.replace(/^"|"$/g, '');
  return `${f.lastModified ?? ''}:${f.size ?? ''}:${f.id}`;
}

export function toEntry(f: AssetFacts, numbers: EntryNumbers): RemoteEntry {
  const mtime = f.lastModified ?? f.created;
  const status = f.status ? { status: f.status } : {};
  if (isDir(f)) return { name: f.name, kind: 'dir', ref: f.id, id: f.id, size: 0, mtimeMs: numbers.mtime(f.id, f.name, mtime), version: '', ...status };
  const unreadable = unreadableFor(f.name, f.status);
  const n = numbers.file(f.id, f.name, { size: f.rawSize, mtime });
  return { name: f.name, kind: 'file', ref: f.id, id: f.id, ...n, version: versionOf(f), ...(unreadable ? { unreadable } : {}), ...status };
}

/** Epoch ms after which a presigned S3 URL is refused (X-Amz-Date + X-Amz-Expires), if it says. */
export function presignedExpiry(url: string): number | undefined {
  let q: URLSearchParams;
  try {
    q = new URL(url).searchParams;
  } catch {
    return undefined;
  }
  const date = q.get('X-Amz-Date');
  const expires = Number(q.get('X-Amz-Expires'));
  const m = date ? /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date) : null;
  if (!m || !Number.isFinite(expires)) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) + expires * 1000;
}
