/**
 * OData v3 wire format of the AMS v2 REST emulator (docs/providers.md#ams):
 *  - `Accept: application/json;odata=verbose` → `{"d":{"results":[…]}}` for sets and `{"d":{…}}` for one
 *    entity, each entity with `__metadata`, dates as `/Date(ms)/`, errors as `{"error":{…}}`;
 *  - anything else (JSON light / minimal metadata) → `{"odata.metadata":…,"value":[…]}`, ISO dates,
 *    errors as `{"odata.error":{…}}`.
 * Int64 values (ContentFileSize) are JSON strings in both modes, as OData v3 writes them.
 */
import type { ServerResponse } from 'node:http';
import { sendJson } from '../common/server.js';

export interface Mode {
  readonly verbose: boolean;
  /** The service root as the client reached it, with a trailing slash (`http://host/api/`). */
  readonly root: string;
}

const TYPE_NS = 'Microsoft.Cloud.Media.Vod.Rest.Data.Models';

/** The error body of both modes; `code` is empty in every AMS error seen in the docs. */
export function odataError(message: string, verbose: boolean): unknown {
  const error = { code: '', message: { lang: 'en-US', value: message } };
  return verbose ? { error } : { 'odata.error': error };
}

export function sendError(res: ServerResponse, status: number, message: string, verbose: boolean, headers: Record<string, string> = {}): void {
  sendJson(res, status, odataError(message, verbose), { ...headers, dataserviceversion: '3.0;' });
}

export function fmtDate(ms: number, mode: Mode): string {
  return mode.verbose ? `/Date(${ms})/` : new Date(ms).toISOString();
}

/** A date the client sent: ISO 8601, `/Date(ms)/` or epoch ms. */
export function parseDate(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v !== 'string' || !v) return undefined;
  const m = /^\/?Date\((-?\d+)(?:[+-]\d{4})?\)\/?$/.exec(v.trim());
  if (m) return Number(m[1]);
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t;
}

/** `'nb:cid:UUID:…'` (already URI-decoded by the router) → the id; undefined when not a quoted key. */
export function parseKey(raw: string): string | undefined {
  const m = /^'([^']+)'$/.exec(raw.trim());
  return m?.[1];
}

export const keyUri = (mode: Mode, set: string, id: string) => `${mode.root}${set}('${encodeURIComponent(id)}')`;

/** One entity as the mode writes it; `nav` names its navigation properties (deferred links in verbose). */
export function entity(mode: Mode, set: string, type: string, id: string, fields: Record<string, unknown>, nav: readonly string[] = []): Record<string, unknown> {
  if (!mode.verbose) return fields;
  const uri = keyUri(mode, set, id);
  const out: Record<string, unknown> = { __metadata: { id: uri, uri, type: `${TYPE_NS}.${type}` }, ...fields };
  for (const n of nav) out[n] = { __deferred: { uri: `${uri}/${n}` } };
  return out;
}

export function sendEntity(res: ServerResponse, status: number, mode: Mode, set: string, body: Record<string, unknown>): void {
  const payload = mode.verbose ? { d: body } : { 'odata.metadata': `${mode.root}$metadata#${set}/@Element`, ...body };
  sendJson(res, status, payload, { dataserviceversion: '3.0;' });
}

/** One page of a set; `next` is the link to the rest when the server cut the page short. */
export function sendSet(res: ServerResponse, mode: Mode, set: string, items: readonly Record<string, unknown>[], next?: string): void {
  const payload = mode.verbose
    ? { d: { results: items, ...(next ? { __next: next } : {}) } }
    : { 'odata.metadata': `${mode.root}$metadata#${set}`, value: items, ...(next ? { 'odata.nextLink': next } : {}) };
  sendJson(res, 200, payload, { dataserviceversion: '3.0;' });
}

/** Most entities one query returns, whatever $top asks for. */
export const MAX_PAGE = 1000;

/**
 * `$skip`/`$top` of a request → the slice to answer, and a next link when the server (not the client)
 * cut the answer short. Throws a message for a malformed value.
 */
export function page<T>(all: readonly T[], url: URL, mode: Mode, path: string): { items: T[]; next?: string } {
  const num = (name: string): number | undefined => {
    const v = url.searchParams.get(name);
    if (v === null) return undefined;
    if (!/^\d+$/.test(v)) throw new Error(`Invalid ${name} value '${v}': expected a non-negative integer`);
    return Number(v);
  };
  const skip = num('$skip') ?? 0;
  const top = num('$top');
  const take = Math.min(top ?? MAX_PAGE, MAX_PAGE);
  const items = all.slice(skip, skip + take);
  const cut = items.length === take && (top === undefined || top > take) && skip + take < all.length;
  if (!cut) return { items };
  const q = new URLSearchParams(url.searchParams);
  q.set('$skip', String(skip + take));
  if (top !== undefined) q.set('$top', String(top - take));
  return { items, next: `${mode.root}${path}?${q.toString().replace(/%24/g, '$')}` }; // OData writes $skip, not %24skip
}
