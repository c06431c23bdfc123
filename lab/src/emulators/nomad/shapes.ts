/**
 * The JSON shapes the Nomad emulator answers with (docs/providers.md#nomad): search items, the asset (stat)
 * object, the asset detail, and RFC 7807 problem details for every error.
 * Fields marked as guesses in docs/providers.md#nomad, or added here, are noted where they are made.
 */
import type { AssetRecord, Catalog } from './catalog.js';

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Payload Too Large', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway',
  503: 'Service Unavailable', 504: 'Gateway Timeout',
};

const SECTIONS: Record<number, string> = { 400: '15.5.1', 401: '15.5.2', 403: '15.5.4', 404: '15.5.5', 405: '15.5.6', 409: '15.5.10', 429: '', 500: '15.6.1', 503: '15.6.4' };

/** RFC 7807 problem details, as ASP.NET Core writes them (`instance` is the request path, when known). */
export function errorBody(status: number, message: string, extra: Record<string, unknown>): unknown {
  const section = SECTIONS[status];
  return {
    type: section ? `https://tools.ietf.org/html/rfc9110#section-${section}` : status === 429 ? 'https://tools.ietf.org/html/rfc6585#section-4' : 'about:blank',
    title: TITLES[status] ?? 'Error',
    status,
    detail: message,
    instance: typeof extra.instance === 'string' ? extra.instance : null,
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

function mediaType(rec: AssetRecord): string | null {
  if (rec.type !== 'File') return null;
  const ext = /\.([^.]+)$/.exec(rec.name)?.[1]?.toLowerCase() ?? '';
  if (['mp4', 'mov', 'mxf', 'mkv', 'webm', 'avi', 'ts'].includes(ext)) return 'Video';
  if (['mp3', 'wav', 'aac', 'flac', 'm4a'].includes(ext)) return 'Audio';
  if (['png', 'jpg', 'jpeg', 'gif', 'webp', 'tif', 'tiff'].includes(ext)) return 'Image';
  if (['srt', 'vtt', 'txt', 'pdf', 'doc', 'docx'].includes(ext)) return 'Document';
  return 'Other';
}

/** The `searchResultFields` names asked for, or undefined when the request asks for no projection. */
export function wantedFields(raw: unknown): Set<string> | undefined {
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  return new Set(raw.map((f) => (typeof f === 'string' ? f : String((f as { name?: unknown })?.name ?? ''))));
}

/**
 * One search item. `identifiers` holds only the requested `identifiers.*` fields when the request
 * names any (as the real search projects); id, title and the dates are always present.
 * `assetStatus`, `eTag` and `parentId` in identifiers are GUESSes (the item shape in docs/providers.md#nomad
 * shows neither status nor a content hash); folders and buckets carry no fullUrl nor contentLength.
 */
export function searchItem(cat: Catalog, rec: AssetRecord, fields: Set<string> | undefined, fullUrl: string | null): unknown {
  const ids: Record<string, unknown> = {
    name: rec.name,
    displayName: rec.name,
    url: rec.type === 'File' ? `${rec.bucketName}::${rec.objectKey}` : `${rec.bucketName}::`,
    assetTypeDisplay: rec.type,
    mediaTypeDisplay: mediaType(rec),
    displayPath: cat.displayPath(rec),
    assetStatus: rec.assetStatus,
    parentId: rec.parentId,
  };
  if (rec.type === 'File') {
    ids.contentLength = rec.size;
    ids.eTag = rec.etag;
    if (fullUrl) ids.fullUrl = fullUrl;
  }
  let identifiers = ids;
  if (fields && !fields.has('identifiers')) {
    identifiers = {};
    for (const [k, v] of Object.entries(ids)) if (fields.has(`identifiers.${k}`)) identifiers[k] = v;
  }
  return { id: rec.id, title: rec.name, createdDate: iso(rec.createdMs), lastModifiedDate: iso(rec.modifiedMs), identifiers };
}

/**
 * `GET /api/admin/asset/{id}`: the documented stat fields, plus (GUESS) contentLength, the dates and
 * the eTag, which the documented shape lacks but a stat needs.
 */
export function assetBody(cat: Catalog, rec: AssetRecord, fullUrl: string | null): unknown {
  const file = rec.type === 'File';
  return {
    id: rec.id,
    parentId: rec.parentId,
    displayName: rec.name,
    displayDate: iso(rec.createdMs),
    bucketName: rec.bucketName,
    objectKey: file ? rec.objectKey : null,
    fullUrl,
    assetStatus: rec.assetStatus,
    storageClass: file ? (/archiv/i.test(rec.assetStatus) || rec.assetStatus === 'PendingRestore' ? 'GLACIER' : 'STANDARD') : null,
    assetType: rec.type,
    contentLength: file ? rec.size : null,
    eTag: file ? rec.etag : null,
    displayPath: cat.displayPath(rec),
    createdDate: iso(rec.createdMs),
    lastModifiedDate: iso(rec.modifiedMs),
  };
}

/** `GET /api/admin/asset/{id}/detail` (a subset: the fields docs/providers.md#nomad names). */
export function detailBody(cat: Catalog, rec: AssetRecord, fullUrl: string | null): unknown {
  const files = rec.type === 'File' ? [rec] : cat.descendants(rec.id).filter((r) => r.type === 'File');
  return {
    assetId: rec.id,
    displayName: rec.name,
    assetType: rec.type,
    assetStatus: rec.assetStatus,
    properties: { displayName: rec.name, displayPath: cat.displayPath(rec), bucketName: rec.bucketName, objectKey: rec.type === 'File' ? rec.objectKey : null },
    assetStats: { totalContentLength: files.reduce((n, f) => n + f.size, 0), fileCount: files.length, createdDate: iso(rec.createdMs), lastModifiedDate: iso(rec.modifiedMs) },
    parents: cat.parents(rec).map((p) => ({ id: p.id, displayName: p.name, assetType: p.type })),
    relatedVideos: rec.type === 'File' && mediaType(rec) === 'Video' && fullUrl ? [{ id: rec.id, fullUrl, contentLength: rec.size }] : [],
  };
}
