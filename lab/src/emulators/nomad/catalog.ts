/**
 * The Nomad emulator's asset catalog: buckets at the root, folders below them, files below those
 * (docs/providers.md#nomad). Records only; a file's bytes live in the S3 backing under `objectKey`.
 *
 * Invariants:
 *  - Names are unique per folder (a guess, docs/providers.md#nomad): putting a file under an existing name replaces
 *    that record's bytes and bumps its lastModifiedDate (strictly increasing), keeping its id.
 *  - Search pages are cut from one stable order (the requested sort, ties broken by id), so a client
 *    paging with `pageOffset` sees every matching record exactly once while nothing changes.
 *  - The default order of a folder's children (title ascending) is cached and dropped on any change
 *    of that folder, so paging a 10,000-entry folder does not sort it once per page.
 *  - relocate() and remove() keep the name index, the cached orders and (across buckets) the
 *    bucketName of a whole subtree consistent; callers check name clashes and cycles first.
 */
import { randomUUID } from 'node:crypto';
import { HttpError } from '../common/server.js';

export type AssetType = 'Bucket' | 'Folder' | 'File';

export interface AssetRecord {
  readonly id: string;
  /** null for buckets (the catalog root). */
  parentId: string | null;
  name: string;
  readonly type: AssetType;
  /** The bucket the record lives in (its own name for a bucket); changes when a move crosses buckets. */
  bucketName: string;
  /** S3 key of the bytes in the backing; '' for buckets and folders. */
  objectKey: string;
  assetStatus: string;
  size: number;
  /** S3 ETag of the bytes (unquoted); '' for buckets and folders. */
  etag: string;
  readonly createdMs: number;
  modifiedMs: number;
}

/** Filter operators in the order their numbers (0–10) stand for (docs/providers.md#nomad lists them so). */
export const OPERATORS = ['Equals', 'NotEquals', 'Contains', 'NotContains', 'Like', 'NotLike', 'LessThan', 'GreaterThan', 'LessThanEquals', 'GreaterThanEquals', 'Prefix'] as const;
type Operator = (typeof OPERATORS)[number];

export interface SearchFilter {
  fieldName: string;
  operator: Operator | number | string;
  values: unknown;
}

export interface SortField {
  fieldName: string;
  sortType?: string;
}

const FIELDS = new Set(['id', 'parentId', 'uuidSearchField', 'title', 'name', 'displayName', 'assetType', 'assetTypeDisplay', 'assetStatus', 'contentLength', 'lastModifiedDate', 'createdDate', 'bucketName']);

export class Catalog {
  readonly assets = new Map<string, AssetRecord>();
  /** parentId ('' for the root) → child name → child id. */
  private readonly names = new Map<string, Map<string, string>>();
  private readonly sortedCache = new Map<string, AssetRecord[]>();
  private lastMs = 0;

  /** A modification time strictly after every one handed out before (so a replace always changes it). */
  tick(): number {
    this.lastMs = Math.max(Date.now(), this.lastMs + 1);
    return this.lastMs;
  }

  get(id: string): AssetRecord | undefined {
    return this.assets.get(id);
  }

  child(parentId: string | null, name: string): AssetRecord | undefined {
    const id = this.names.get(parentId ?? '')?.get(name);
    return id === undefined ? undefined : this.assets.get(id);
  }

  /** Adds a record (a new id) under its parent; the caller checked that the name is free. */
  add(rec: Omit<AssetRecord, 'id' | 'createdMs' | 'modifiedMs'> & { id?: string }): AssetRecord {
    if (rec.parentId !== null) {
      const parent = this.assets.get(rec.parentId);
      if (!parent) throw new HttpError(404, `parent asset ${rec.parentId} not found`);
      if (parent.type === 'File') throw new HttpError(400, `parent asset ${rec.parentId} is not a folder`);
    }
    const now = this.tick();
    const full: AssetRecord = { ...rec, id: rec.id ?? randomUUID(), createdMs: now, modifiedMs: now };
    this.assets.set(full.id, full);
    const key = full.parentId ?? '';
    let m = this.names.get(key);
    if (!m) this.names.set(key, (m = new Map()));
    m.set(full.name, full.id);
    this.sortedCache.delete(key);
    return full;
  }

  /** Marks a record changed (bytes or status): bumps lastModifiedDate and drops cached orders. */
  touch(rec: AssetRecord): void {
    rec.modifiedMs = this.tick();
    this.sortedCache.delete(rec.parentId ?? '');
  }

  /** Renames and/or moves `rec` to `name` under `parentId`; the caller checked that the name is free there. */
  relocate(rec: AssetRecord, parentId: string | null, name: string): void {
    const from = rec.parentId ?? '';
    this.names.get(from)?.delete(rec.name);
    this.sortedCache.delete(from);
    rec.parentId = parentId;
    rec.name = name;
    const to = parentId ?? '';
    let m = this.names.get(to);
    if (!m) this.names.set(to, (m = new Map()));
    m.set(name, rec.id);
    const bucket = parentId === null ? name : this.assets.get(parentId)?.bucketName;
    if (bucket !== undefined && bucket !== rec.bucketName) {
      for (const r of [rec, ...(rec.type === 'File' ? [] : this.descendants(rec.id))]) r.bucketName = bucket;
    }
    this.touch(rec);
  }

  /** Removes `rec` and everything below it; returns the removed records (their bytes are the caller's). */
  remove(rec: AssetRecord): AssetRecord[] {
    const gone = rec.type === 'File' ? [rec] : [rec, ...this.descendants(rec.id)];
    for (const r of gone) {
      const key = r.parentId ?? '';
      this.names.get(key)?.delete(r.name);
      this.sortedCache.delete(key);
      this.names.delete(r.id);
      this.sortedCache.delete(r.id);
      this.assets.delete(r.id);
    }
    this.tick();
    return gone;
  }

  /** Children of `parentId` ('' / null = root), title ascending, ties by id. */
  children(parentId: string | null): AssetRecord[] {
    const key = parentId ?? '';
    let sorted = this.sortedCache.get(key);
    if (!sorted) {
      const ids = [...(this.names.get(key)?.values() ?? [])];
      sorted = ids.map((id) => this.assets.get(id)!).sort(byName);
      this.sortedCache.set(key, sorted);
    }
    return sorted;
  }

  /** Every record below `id` (not `id` itself), depth first. */
  descendants(id: string): AssetRecord[] {
    const out: AssetRecord[] = [];
    const stack = [id];
    while (stack.length) {
      for (const c of this.children(stack.pop()!)) {
        out.push(c);
        if (c.type !== 'File') stack.push(c.id);
      }
    }
    return out;
  }

  /** Ancestors from the bucket down to the direct parent. */
  parents(rec: AssetRecord): AssetRecord[] {
    const out: AssetRecord[] = [];
    for (let p = rec.parentId ? this.assets.get(rec.parentId) : undefined; p; p = p.parentId ? this.assets.get(p.parentId) : undefined) out.unshift(p);
    return out;
  }

  /** `/bucket/folder/name` (the emulator's displayPath). */
  displayPath(rec: AssetRecord): string {
    return `/${[...this.parents(rec), rec].map((r) => r.name).join('/')}`;
  }

  /**
   * The records matching every filter, in the requested order. A `parentId` or `uuidSearchField`
   * Equals filter picks the candidate set (a folder's children / everything below it); the other
   * filters then narrow it. Unknown fields and operators are the caller's error (400).
   */
  search(filters: SearchFilter[], sortFields: SortField[]): AssetRecord[] {
    const norm = filters.map((f) => ({ field: f.fieldName, op: operatorOf(f.operator), values: valuesOf(f.values) }));
    for (const f of norm) if (!FIELDS.has(f.field)) throw new HttpError(400, `unknown filter field "${f.field}"`);
    let candidates: AssetRecord[];
    const parent = norm.find((f) => f.field === 'parentId' && f.op === 'Equals' && f.values.length === 1);
    const under = norm.find((f) => f.field === 'uuidSearchField' && f.op === 'Equals' && f.values.length === 1);
    // Buckets are exactly the root's children: no need to sort the whole catalog for them.
    const buckets = norm.find((f) => (f.field === 'assetType' || f.field === 'assetTypeDisplay') && f.op === 'Equals' && f.values.length === 1 && f.values[0] === 'Bucket');
    if (parent) candidates = this.children(parent.values[0]!);
    else if (under) candidates = this.descendants(under.values[0]!);
    else if (buckets) candidates = this.children(null);
    else candidates = [...this.assets.values()].sort(byName);
    const rest = norm.filter((f) => f !== parent && f !== under && f !== buckets);
    let out = rest.length ? candidates.filter((r) => rest.every((f) => this.matches(r, f.field, f.op, f.values))) : candidates;
    const sort = sortFields[0];
    const desc = /^desc/i.test(sort?.sortType ?? '');
    const field = sort?.fieldName ?? 'title';
    if (field === 'lastModifiedDate' || field === 'createdDate' || field === 'contentLength') {
      const key = (r: AssetRecord) => (field === 'contentLength' ? r.size : field === 'createdDate' ? r.createdMs : r.modifiedMs);
      out = [...out].sort((a, b) => key(a) - key(b) || (a.id < b.id ? -1 : 1));
    } else if (field !== 'title' && field !== 'name' && field !== 'displayName' && field !== 'id') {
      throw new HttpError(400, `cannot sort by "${field}"`);
    } else if (field === 'id') {
      out = [...out].sort((a, b) => (a.id < b.id ? -1 : 1));
    }
    return desc ? [...out].reverse() : out;
  }

  private matches(r: AssetRecord, field: string, op: Operator, values: string[]): boolean {
    if (field === 'uuidSearchField') {
      const ids = new Set(this.parents(r).map((p) => p.id));
      const hit = values.some((v) => ids.has(v));
      return op === 'NotEquals' ? !hit : hit;
    }
    const v = fieldValue(r, field);
    const num = typeof v === 'number';
    const test = (want: string): boolean => {
      const s = String(v);
      switch (op) {
        case 'Equals': return s === want;
        case 'NotEquals': return s !== want;
        case 'Contains': return s.toLowerCase().includes(want.toLowerCase());
        case 'NotContains': return !s.toLowerCase().includes(want.toLowerCase());
        case 'Like': return likeRe(want).test(s);
        case 'NotLike': return !likeRe(want).test(s);
        case 'Prefix': return s.startsWith(want);
        default: {
          const a = num ? v : Date.parse(s);
          const b = num ? Number(want) : Date.parse(want);
          if (op === 'LessThan') return a < b;
          if (op === 'GreaterThan') return a > b;
          if (op === 'LessThanEquals') return a <= b;
          return a >= b;
        }
      }
    };
    // Several values: any of them for the positive operators, none of them for the negative ones.
    return op.startsWith('Not') ? values.every(test) : values.some(test);
  }
}

function byName(a: AssetRecord, b: AssetRecord): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function fieldValue(r: AssetRecord, field: string): string | number {
  switch (field) {
    case 'id': return r.id;
    case 'parentId': return r.parentId ?? '';
    case 'title': case 'name': case 'displayName': return r.name;
    case 'assetType': case 'assetTypeDisplay': return r.type;
    case 'assetStatus': return r.assetStatus;
    case 'contentLength': return r.size;
    case 'bucketName': return r.bucketName;
    case 'createdDate': return new Date(r.createdMs).toISOString();
    default: return new Date(r.modifiedMs).toISOString();
  }
}

function operatorOf(op: SearchFilter['operator']): Operator {
  if (typeof op === 'number' || /^\d+$/.test(String(op))) {
    const named = OPERATORS[Number(op)];
    if (named) return named;
  } else {
    const named = OPERATORS.find((o) => o.toLowerCase() === String(op).toLowerCase());
    if (named) return named;
  }
  throw new HttpError(400, `unknown filter operator ${JSON.stringify(op)}`);
}

function valuesOf(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (v === undefined || v === null) throw new HttpError(400, 'a filter needs "values"');
  return [String(v)];
}

function likeRe(pattern: string): RegExp {
  const body = pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/%/g, '.*').replace(/_/g, '.');
  return new RegExp(`^${body}$`, 'i');
}
