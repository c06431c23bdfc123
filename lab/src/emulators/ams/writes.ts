/**
 * The write side of the AMS v2 emulator (docs/providers.md#ams, "Uploads and edits"):
 *
 *  - `GET CreateFileInfos?assetid='nb:cid:UUID:…'` → 204: an AssetFile for every committed blob of the
 *    asset's container that has none (GUESS: 204 No Content, as for other AMS functions without a result).
 *  - `MERGE Files('id') {ContentFileSize, MimeType, IsPrimary[, ContentChecksum]}` → 204.
 *  - `MERGE Assets('id') {Name[, AlternateId]}` → 204 (renames an asset).
 *  - `DELETE Files('id')`, `DELETE Assets('id')` → 204; the blob (or container) goes with the entity.
 *  - OData clients that cannot send MERGE/DELETE tunnel them: `POST` with `X-HTTP-Method: MERGE|DELETE`.
 *
 * Invariants / GUESSes:
 *  - An AssetFile's Name is its blob's name, so MERGE refuses a Name change with 400 (docs/providers.md#ams: file
 *    rename is not supported).
 *  - Names follow AMS's name rules (docs/providers.md#ams) (≤ 260 characters, none of !*'();:@&=+$,/?%#[]"); a bad
 *    asset Name is a 400. The "exactly one ." rule is about file names (the extension): CreateFileInfos
 *    cannot refuse a blob, so the emulator does not police it; clients do.
 *  - Bytes never pass through here: clients put them into Azurite through a write SAS locator.
 */
import type { IncomingMessage } from 'node:http';
import { HttpError, sendEmpty, type Ctx, type Router } from '../common/server.js';
import type { AssetRec, Catalog, FileRec } from './catalog.js';
import { parseKey, type Mode } from './odata.js';

export interface WriteHost {
  readonly catalog: Catalog;
  /** The service-root wrapper of index.ts: bearer token, x-ms-version, answer mode. */
  api(fn: (c: Ctx, m: Mode) => Promise<void> | void): (c: Ctx) => Promise<void>;
  keyOf(c: Ctx, m: Mode, what: string): string;
  assetOf(c: Ctx, m: Mode): AssetRec;
}

const NAME_FORBIDDEN = /[!*'();:@&=+$,/?%#[\]"]/;
export const MAX_NAME = 260;

/** AMS's name rule for an entity Name (docs/providers.md#ams); undefined when fine. */
export function badName(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'Name must be a non-empty string.';
  if (name.length > MAX_NAME) return `Name is ${name.length} characters long; at most ${MAX_NAME} are allowed.`;
  const c = NAME_FORBIDDEN.exec(name);
  if (c) return `Name '${name}' contains '${c[0]}'; names cannot contain any of !*'();:@&=+$,/?%#[]".`;
  return undefined;
}

const bad = (message: string, m: Mode) => new HttpError(400, message, { verbose: m.verbose });
const notFound = (what: string, m: Mode) => new HttpError(404, `Resource ${what} not found`, { verbose: m.verbose });

function tunnelled(req: IncomingMessage): string | undefined {
  const v = req.headers['x-http-method'];
  return (Array.isArray(v) ? v[0] : v)?.toUpperCase();
}

export function addWriteRoutes(r: Router, h: WriteHost): void {
  const key = "\\(([^/)]*)\\)";
  const cat = h.catalog;

  const fileOf = (c: Ctx, m: Mode): FileRec => {
    const f = cat.files.get(h.keyOf(c, m, 'File'));
    if (!f) throw notFound('File', m);
    return f;
  };

  const mergeFile = async (c: Ctx, m: Mode) => {
    const f = fileOf(c, m);
    const b = await c.json<Record<string, unknown>>();
    if (b.Name !== undefined && b.Name !== f.Name) throw bad(`The Name of an AssetFile is the name of its blob and cannot be changed (${f.Id}).`, m);
    const patch: Parameters<Catalog['mergeFile']>[1] = {};
    if (b.ContentFileSize !== undefined) {
      const n = typeof b.ContentFileSize === 'string' && /^\d+$/.test(b.ContentFileSize) ? Number(b.ContentFileSize) : b.ContentFileSize;
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw bad(`ContentFileSize must be a non-negative Int64, got ${JSON.stringify(b.ContentFileSize)}.`, m);
      patch.ContentFileSize = n;
    }
    if (b.MimeType !== undefined) {
      if (typeof b.MimeType !== 'string') throw bad('MimeType must be a string.', m);
      patch.MimeType = b.MimeType;
    }
    if (b.IsPrimary !== undefined) {
      if (typeof b.IsPrimary !== 'boolean') throw bad('IsPrimary must be a Boolean.', m);
      patch.IsPrimary = b.IsPrimary;
    }
    if (b.ContentChecksum !== undefined && b.ContentChecksum !== null) patch.ContentChecksum = String(b.ContentChecksum);
    await cat.mergeFile(f, patch);
    sendEmpty(c.res, 204);
  };

  const mergeAsset = async (c: Ctx, m: Mode) => {
    const a = h.assetOf(c, m);
    const b = await c.json<{ Name?: unknown; AlternateId?: unknown }>();
    if (b.Name !== undefined) {
      const why = badName(b.Name);
      if (why) throw bad(why, m);
      a.Name = b.Name as string;
    }
    if (b.AlternateId !== undefined) a.AlternateId = b.AlternateId === null ? null : String(b.AlternateId);
    a.LastModified = Date.now();
    sendEmpty(c.res, 204);
  };

  const deleteFile = async (c: Ctx, m: Mode) => {
    await cat.deleteFile(fileOf(c, m));
    sendEmpty(c.res, 204);
  };

  const deleteAsset = async (c: Ctx, m: Mode) => {
    await cat.deleteAsset(h.assetOf(c, m));
    sendEmpty(c.res, 204);
  };

  r.on('GET', /^\/api\/CreateFileInfos\/?$/, h.api(async (c, m) => {
    const raw = c.url.searchParams.get('assetid');
    const id = raw === null ? undefined : parseKey(raw);
    if (!id) throw bad(`Bad Request - CreateFileInfos needs assetid='nb:cid:UUID:…', got ${JSON.stringify(raw)}.`, m);
    const a = cat.assets.get(id);
    if (!a || a.State === 2) throw notFound('Asset', m);
    await cat.createFileInfos(a.Id);
    sendEmpty(c.res, 204);
  }));
  r.on('MERGE', new RegExp(`^/api/Files${key}/?$`), h.api(mergeFile));
  r.on('DELETE', new RegExp(`^/api/Files${key}/?$`), h.api(deleteFile));
  r.on('MERGE', new RegExp(`^/api/Assets${key}/?$`), h.api(mergeAsset));
  r.on('DELETE', new RegExp(`^/api/Assets${key}/?$`), h.api(deleteAsset));
  // The OData verb tunnel: POST with X-HTTP-Method.
  for (const [set, merge, del] of [['Files', mergeFile, deleteFile], ['Assets', mergeAsset, deleteAsset]] as const) {
    r.on('POST', new RegExp(`^/api/${set}${key}/?$`), h.api(async (c, m) => {
      const verb = tunnelled(c.req);
      if (verb === 'MERGE' || verb === 'PATCH') return merge(c, m);
      if (verb === 'DELETE') return del(c, m);
      throw new HttpError(405, `POST is not allowed on ${set}('…') without X-HTTP-Method: MERGE or DELETE.`, { verbose: m.verbose });
    }));
  }
}
