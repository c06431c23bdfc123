/**
 * The AMS v2 REST client (OData v3): headers, the service-root redirect, `$skip`/`$top` paging and
 * tolerant parsing of both OData JSON flavours. Shared by the provider and its uploader (upload.ts).
 *
 * Invariants:
 *  - Every call carries `x-ms-version: 2.19`, `DataServiceVersion`/`MaxDataServiceVersion: 3.0` and asks
 *    for verbose JSON; answers are read whether they come verbose (`d.results`, `d`) or light (`value`).
 *  - A 301 (the legacy `media.windows.net/API/` root) is followed for that call only, at most 3 times,
 *    and only within the configured origin: the service root never moves (a redirect must not decide
 *    where later calls and their token go). A 301 to another origin fails with a message naming the new
 *    root to configure (docs/semantics.md, "Credentials and origins").
 *  - Dates are read from ISO strings, `/Date(ms)/` or numbers; Int64 fields from strings or numbers.
 */
import type { ApiClient, ApiRequest, ApiResponse } from '../common/api-client.js';
import { pagedList, type ListingLimits } from '../common/paging.js';
import { FsError } from '../../core/errors.js';
import { crossOriginMessage } from '../../transports/origins.js';
import { silentLogger, type Logger } from '../../util/logger.js';

export const AMS_HEADERS: Readonly<Record<string, string>> = {
  'x-ms-version': '2.19',
  dataserviceversion: '3.0',
  maxdataserviceversion: '3.0',
  accept: 'application/json;odata=verbose',
};

/** Most entities one AMS query returns. */
export const AMS_MAX_PAGE = 1000;

export interface AmsAsset {
  readonly Id: string;
  readonly Name: string;
  readonly State: number;
  readonly Options: number;
  readonly LastModified: number;
}

export interface AmsFile {
  readonly Id: string;
  readonly Name: string;
  readonly ContentFileSize: number;
  readonly ParentAssetId: string | undefined;
  readonly IsEncrypted: boolean;
  readonly EncryptionScheme: string | undefined;
  readonly LastModified: number;
  readonly ContentChecksum: string | undefined;
  readonly MimeType: string | undefined;
}

export interface AmsLocator {
  readonly Id: string;
  readonly BaseUri: string;
  readonly ContentAccessComponent: string;
  readonly ExpirationDateTime: number;
}

type Json = Record<string, unknown>;

export function parseDate(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return 0;
  const m = /^\/?Date\((-?\d+)(?:[+-]\d{4})?\)\/?$/.exec(v.trim());
  if (m) return Number(m[1]);
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : t;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : 0);

export const toAsset = (j: Json): AmsAsset => ({
  Id: String(j.Id), Name: String(j.Name ?? ''), State: num(j.State), Options: num(j.Options), LastModified: parseDate(j.LastModified ?? j.Created),
});

export const toFile = (j: Json): AmsFile => ({
  Id: String(j.Id), Name: String(j.Name ?? ''), ContentFileSize: num(j.ContentFileSize), ParentAssetId: str(j.ParentAssetId),
  IsEncrypted: j.IsEncrypted === true || j.IsEncrypted === 'true', EncryptionScheme: str(j.EncryptionScheme),
  LastModified: parseDate(j.LastModified ?? j.Created), ContentChecksum: str(j.ContentChecksum),
  MimeType: str(j.MimeType),
});

export function toLocator(j: Json): AmsLocator {
  let base = str(j.BaseUri);
  let sas = str(j.ContentAccessComponent);
  const path = str(j.Path);
  if ((!base || !sas) && path) {
    const q = path.indexOf('?');
    base ??= q < 0 ? path : path.slice(0, q);
    sas ??= q < 0 ? '' : path.slice(q);
  }
  if (!base) throw new FsError('EIO', `AMS locator ${String(j.Id)} has neither BaseUri nor Path`);
  return { Id: String(j.Id), BaseUri: base.replace(/\/+$/, ''), ContentAccessComponent: sas ?? '', ExpirationDateTime: parseDate(j.ExpirationDateTime) };
}

/** A file's version: its ContentChecksum when the platform gives one, else `Id:ContentFileSize:LastModified`. */
export function fileVersion(f: AmsFile): string {
  return f.ContentChecksum ?? `${f.Id}:${f.ContentFileSize}:${f.LastModified}`;
}

/** The entities of a set answer (verbose `d.results` or `d`, light `value`), its next link and count if any. */
export function parseSet(body: unknown): { items: Json[]; next?: string; count?: number } {
  const b = (body ?? {}) as Json;
  const d = b.d as Json | Json[] | undefined;
  const items = (Array.isArray(d) ? d : (d?.results as Json[] | undefined)) ?? (b.value as Json[] | undefined) ?? [];
  const next = str((d as Json | undefined)?.__next) ?? str(b['odata.nextLink']) ?? str(b['@odata.nextLink']);
  const rawCount = (Array.isArray(d) ? undefined : d?.__count) ?? b['odata.count'] ?? b['@odata.count'];
  const count = rawCount === undefined ? undefined : num(rawCount);
  return { items: Array.isArray(items) ? items : [], next, count: count !== undefined && Number.isFinite(count) ? count : undefined };
}

/** One entity (verbose `{"d":{…}}`, or light: the object itself). */
export function parseEntity(body: unknown): Json {
  const b = (body ?? {}) as Json;
  return (b.d && typeof b.d === 'object' && !Array.isArray(b.d) ? b.d : b) as Json;
}

/** `Assets('nb:cid:UUID:…')` with the key URL-encoded, as the AMS docs write it. */
export const keyed = (set: string, id: string) => `${set}('${encodeURIComponent(id)}')`;

export class AmsRest {
  private readonly root: string;

  constructor(
    private readonly api: ApiClient,
    restUrl: string,
  ) {
    this.root = restUrl.endsWith('/') ? restUrl : `${restUrl}/`;
  }

  /** The configured service root (redirects never move it). */
  get serviceRoot(): string {
    return this.root;
  }

  /** One call relative to the service root; statuses in `accept` come back instead of throwing. */
  async call(req: ApiRequest): Promise<ApiResponse> {
    const headers = { ...AMS_HEADERS, ...(req.json !== undefined ? { 'content-type': 'application/json;odata=verbose' } : {}), ...req.headers };
    let root = this.root;
    for (let hop = 0; ; hop++) {
      const r = await this.api.send({ ...req, path: root + req.path.replace(/^\//, ''), headers, accept: req.accept === 'any' ? 'any' : [...(req.accept ?? []), 301] });
      if (r.status !== 301) return r;
      const loc = r.headers.location;
      const target = Array.isArray(loc) ? loc[0] : loc;
      if (!target || hop >= 3) throw new FsError('EIO', `AMS: too many or empty redirects from ${root}`);
      root = newRoot(new URL(target, root), req.path);
      if (new URL(root).origin !== this.api.origin) {
        throw new FsError('EIO', crossOriginMessage(`AMS: ${req.method ?? 'GET'} ${req.path}`, root, this.api.origin));
      }
    }
  }

  async json(req: ApiRequest): Promise<unknown> {
    const r = await this.call(req);
    if (!r.text) return undefined;
    try {
      return JSON.parse(r.text);
    } catch {
      throw new FsError('EIO', `AMS: ${req.method ?? 'GET'} ${req.path}: answer is not JSON`);
    }
  }

  async entity(path: string, signal?: AbortSignal): Promise<Json> {
    return parseEntity(await this.json({ path, signal }));
  }

  /**
   * Every entity of a set, `pageSize` (≤ 1000) per request (common/paging.ts). AMS returns at most
   * 1000 entities per query, and a server may return fewer than `$top` without saying so: a short page
   * is not the end. The set ends with an empty page, or once the stated count (`__count`) arrived. A
   * next link (`__next`, server-driven paging) is followed when it lies under the service root;
   * otherwise `$skip` advances by the entities received.
   */
  pages(path: string, pageSize: number, signal?: AbortSignal, bounds?: { what: string; log: Logger; limits?: ListingLimits }): AsyncIterable<Json> {
    const top = Math.max(1, Math.min(AMS_MAX_PAGE, pageSize));
    type At = { skip: number; link?: string };
    return pagedList<Json, At>({
      what: bounds?.what ?? `AMS ${path}`,
      log: bounds?.log ?? silentLogger,
      limits: bounds?.limits,
      first: { skip: 0 },
      key: (j) => String(j.Id ?? JSON.stringify(j)),
      token: (at) => at.link ?? `$skip=${at.skip}`,
      fetch: async (at) => {
        const body = at.link !== undefined ? await this.json({ path: at.link, signal }) : await this.json({ path, query: { $skip: at.skip, $top: top }, signal });
        const { items, next, count } = parseSet(body);
        const skip = at.skip + items.length;
        const link = next?.startsWith(this.root) ? next.slice(this.root.length) : undefined;
        if (link !== undefined) return { items, total: count, next: { skip, link } };
        return { items, total: count, next: items.length > 0 ? { skip } : undefined };
      },
    });
  }
}

/** The service root implied by a redirect of a call to `path` (relative to the old root). */
function newRoot(target: URL, path: string): string {
  const rel = path.replace(/^\//, '').split('?')[0]!;
  const t = `${target.origin}${target.pathname}`;
  for (const suffix of [rel, encodeURI(rel)]) {
    if (suffix && t.endsWith(suffix)) return t.slice(0, t.length - suffix.length);
  }
  if (!rel) return t.endsWith('/') ? t : `${t}/`;
  const api = t.toLowerCase().indexOf('/api/');
  return api >= 0 ? t.slice(0, api + 5) : `${target.origin}/api/`;
}
