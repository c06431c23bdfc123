/**
 * `wordbee`: Wordbee Translator project assets, as
 * `<scope>/<documentId>/<segmentId>/<locale or _>/<relativePath…>/<file>` (docs/providers.md#wordbee).
 *
 * Invariants:
 *  - Documents and segments of a scope come from the paged segment search; the asset rows of a segment
 *    from its list endpoint. Both are kept a few seconds so that walking down one segment's folders does
 *    not list it again per level; stat() of a file always asks afresh (a changed asset gets a new version).
 *  - Reads are authenticated API GETs that may ignore Range: locators say `rangeable: false`, and the
 *    read path streams the single whole-body download into cache blocks.
 *  - The token lives until 30 idle minutes; a refused one (401/403, or 400 "Token invalid") is renewed
 *    once per call by ApiClient, and refused() drops one that a download was refused with.
 */
import { LRUCache } from 'lru-cache';
import type { ObjectVersion, Provider, Ref, RemoteEntry, SignedLocator } from '../../core/types.js';
import { FsError, NotFoundError } from '../../core/errors.js';
import type { SourceConfigOf } from '../../config/schema.js';
import type { Logger } from '../../util/logger.js';
import type { NetBounds } from '../../transports/bounds.js';
import { ApiClient, TokenSession, type ApiMeter } from '../common/api-client.js';
import { capListing, pagedList, type ListingLimits } from '../common/paging.js';
import { NO_LOCALE, decodeRef, encodeRef, splitRelPath, type WbPath } from './refs.js';
import { WordbeeUploader } from './upload.js';
import { EntryNumbers } from '../common/entry-numbers.js';

export interface WordbeeProviderDeps {
  log: Logger;
  /** Timeouts, deadline and answer cap of every call (retry.* in the config). Default DEFAULT_BOUNDS. */
  net?: NetBounds;
  /** Counts API requests (assetfs_origin_requests_total{kind="api"}). */
  meter?: ApiMeter;
  /** Segments per search page. Default 500. */
  listPageSize?: number;
  /** Bounds of every listing (config `listing`): the segment search of a scope is one listing. */
  listing?: ListingLimits;
}

/** One asset row of `…/assets/{segmentid}/list` (standard and Flex field names). */
interface AssetRow {
  projectId?: number;
  documentId?: number | string;
  segmentId: number;
  locale?: string | null;
  relativePath?: string | null;
  name?: string;
  fileName?: string;
  size?: number;
  fileSizeInBytes?: number;
  contentType?: string | null;
  modifiedDate?: string;
  createdDate?: string;
  downloadUrl?: string;
}

interface ScopeIndex {
  /** documentId → its segment ids. */
  readonly docs: Map<number, number[]>;
}

const IDLE_RENEW_MS = 25 * 60_000; // Wordbee drops a token after 30 idle minutes
const SNAPSHOT_TTL_MS = 5_000;

export class WordbeeProvider implements Provider {
  readonly type = 'wordbee';
  readonly name: string;
  readonly caps: { upload: boolean };
  private readonly api: ApiClient;
  private readonly session: TokenSession;
  private readonly scopes = new LRUCache<string, ScopeIndex>({ max: 64, ttl: SNAPSHOT_TTL_MS });
  private readonly segmentRows = new LRUCache<number, AssetRow[]>({ max: 2048, ttl: SNAPSHOT_TTL_MS });
  private readonly numbers: EntryNumbers;

  constructor(
    private readonly cfg: SourceConfigOf<'wordbee'>,
    private readonly deps: WordbeeProviderDeps,
  ) {
    this.name = cfg.name;
    this.caps = { upload: !cfg.readOnly };
    this.numbers = new EntryNumbers({ log: deps.log, what: `wordbee source "${cfg.name}"` });
    this.session = new TokenSession(
      async (signal) => ({ token: await this.login(signal), expiresInMs: IDLE_RENEW_MS }),
      (token) => ({ 'X-Auth-Token': token, 'X-Auth-AccountId': cfg.accountId }),
    );
    this.api = new ApiClient({
      baseUrl: cfg.baseUrl,
      what: `wordbee source "${cfg.name}"`,
      auth: this.session,
      bounds: deps.net,
      meter: deps.meter,
      // The docs show an expired token answered with 400 "Token invalid or expired."
      isAuthFailure: (status, text) => status === 400 && /token/i.test(text),
    });
  }

  private async login(signal?: AbortSignal): Promise<string> {
    const r = await this.api.send({ method: 'POST', path: 'auth/token', json: { accountid: this.cfg.accountId, key: this.cfg.apiKey }, login: true, signal });
    let token = r.text.trim();
    if (token.startsWith('"')) token = JSON.parse(token) as string; // a JSON string, or the bare token
    if (!token) throw new FsError('EACCES', `wordbee source "${this.name}": login answered no token`);
    return token;
  }

  async *list(dir: Ref, signal?: AbortSignal): AsyncIterable<RemoteEntry> {
    const p = this.parse(dir, 'dir');
    const dirEntry = (name: string, path: WbPath): RemoteEntry => ({ name, kind: 'dir', ref: encodeRef(path), size: 0, mtimeMs: 0, version: '' });
    if (p.scope === undefined) {
      for (const scope of this.cfg.scopes) yield dirEntry(scope, { kind: 'dir', scope, rel: [] });
      return;
    }
    const index = await this.scopeIndex(p.scope, signal);
    if (p.doc === undefined) {
      for (const doc of index.docs.keys()) yield dirEntry(String(doc), { kind: 'dir', scope: p.scope, doc, rel: [] });
      return;
    }
    const segs = index.docs.get(p.doc);
    if (!segs) throw new NotFoundError(`wordbee ${p.scope}/${p.doc}: no such document`);
    if (p.seg === undefined) {
      for (const seg of segs) yield dirEntry(String(seg), { kind: 'dir', scope: p.scope, doc: p.doc, seg, rel: [] });
      return;
    }
    if (!segs.includes(p.seg)) throw new NotFoundError(`wordbee ${p.scope}/${p.doc}/${p.seg}: no such segment`);
    const rows = await this.rows(p.scope, p.seg, false, signal);
    if (p.locale === undefined) {
      for (const locale of new Set(rows.map((r) => r.locale ?? ''))) {
        yield dirEntry(locale || NO_LOCALE, { kind: 'dir', scope: p.scope, doc: p.doc, seg: p.seg, locale, rel: [] });
      }
      return;
    }
    const dirs = new Set<string>();
    let found = p.rel.length === 0 && rows.some((r) => (r.locale ?? '') === p.locale);
    for (const r of rows) {
      if ((r.locale ?? '') !== p.locale) continue;
      const rel = splitRelPath(r.relativePath);
      if (!startsWith(rel, p.rel)) continue;
      found = true;
      if (rel.length === p.rel.length) {
        yield this.fileEntry(p, r);
      } else if (!dirs.has(rel[p.rel.length]!)) {
        const name = rel[p.rel.length]!;
        dirs.add(name);
        yield dirEntry(name, { ...p, kind: 'dir', rel: [...p.rel, name] });
      }
    }
    if (!found) throw new NotFoundError(`wordbee ${dir}: no such folder`);
  }

  async stat(ref: Ref, signal?: AbortSignal): Promise<RemoteEntry> {
    const p = this.parse(ref);
    const last = p.kind === 'file' ? p.name! : p.rel.at(-1) ?? (p.locale !== undefined ? p.locale || NO_LOCALE : String(p.seg ?? p.doc ?? p.scope ?? ''));
    if (p.kind === 'dir') {
      if (p.scope !== undefined) {
        // A folder exists when its parent lists it: list the parent's children up to this one.
        const parentHas = await this.dirExists(p, signal);
        if (!parentHas) throw new NotFoundError(`wordbee ${ref}: no such folder`);
      }
      return { name: last, kind: 'dir', ref, size: 0, mtimeMs: 0, version: '' };
    }
    const rows = await this.rows(p.scope!, p.seg!, true, signal);
    const row = rows.find((r) => (r.locale ?? '') === p.locale && sameParts(splitRelPath(r.relativePath), p.rel) && rowName(r) === p.name);
    if (!row) throw new NotFoundError(`wordbee ${p.scope}/${p.doc}/${p.seg}: no asset ${p.name}`);
    return this.fileEntry(p, row);
  }

  async locate(obj: ObjectVersion, signal?: AbortSignal): Promise<SignedLocator> {
    const p = this.parse(obj.ref, 'file');
    const query: Record<string, string> = { scope: p.scope!, filename: p.name!, locale: p.locale! };
    if (p.rel.length) query.relativePath = p.rel.join('/');
    const url = this.api.url(`resources/assets/${p.seg}`, query).href;
    return {
      url,
      headers: await this.session.headers(signal),
      expiresAt: Date.now() + IDLE_RENEW_MS,
      rangeable: false,
      refusedStatuses: [400],
    };
  }

  refused(_obj: ObjectVersion, loc: SignedLocator): void {
    // Only the token the download was refused with: a newer one may already be in use.
    if (loc.headers?.['X-Auth-Token'] === this.session.peek()) this.session.invalidate();
  }

  /** A scope folder's id is the scope (`pr7214`), a document's and a segment's their Wordbee ids; the rest have none. */
  idOf(entry: RemoteEntry): string | undefined {
    const p = decodeRef(entry.ref);
    if (!p || p.kind !== 'dir' || p.scope === undefined || p.locale !== undefined) return undefined;
    return p.seg !== undefined ? String(p.seg) : p.doc !== undefined ? String(p.doc) : p.scope;
  }

  /**
   * A scope by its name, without a call. A number: first the scope indexes already held (no call);
   * then, per configured scope, the segment's asset rows (`…/assets/{id}/list`, one call), whose
   * `documentId` places it; last, for a document id or a segment without assets, the scope's segment
   * search (paged): Wordbee has no call that answers one document. A number that is both a segment's
   * and a document's id is the segment.
   */
  async byId(id: string, signal?: AbortSignal): Promise<RemoteEntry> {
    const dir = (name: string, path: Omit<WbPath, 'kind' | 'rel'>): RemoteEntry =>
      ({ name, kind: 'dir', ref: encodeRef({ ...path, kind: 'dir', rel: [] }), size: 0, mtimeMs: 0, version: '' });
    if (this.cfg.scopes.includes(id)) return dir(id, { scope: id });
    if (!/^\d+$/.test(id)) throw new NotFoundError(`wordbee source "${this.name}": no scope, document or segment ${JSON.stringify(id)}`);
    const n = Number(id);
    const inIndex = (scope: string, index: ScopeIndex): RemoteEntry | undefined => {
      for (const [doc, segs] of index.docs) if (segs.includes(n)) return dir(id, { scope, doc, seg: n });
      return index.docs.has(n) ? dir(id, { scope, doc: n }) : undefined;
    };
    for (const scope of this.cfg.scopes) {
      const held = this.scopes.get(scope);
      const hit = held && inIndex(scope, held);
      if (hit) return hit;
    }
    for (const scope of this.cfg.scopes) {
      let rows: AssetRow[];
      try {
        rows = await this.rows(scope, n, true, signal);
      } catch (e) {
        if (e instanceof NotFoundError) continue; // not a segment of this scope
        throw e;
      }
      const doc = rows.map((r) => Number(r.documentId)).find((d) => Number.isInteger(d));
      if (doc !== undefined) return dir(id, { scope, doc, seg: n });
    }
    for (const scope of this.cfg.scopes) {
      const hit = inIndex(scope, await this.scopeIndex(scope, signal));
      if (hit) return hit;
    }
    throw new NotFoundError(`wordbee source "${this.name}": no document or segment ${id} in ${this.cfg.scopes.join(', ')}`);
  }

  /** Every folder above the entry, from its ref alone: scope, document, segment, locale, relativePath. */
  async ancestry(entry: RemoteEntry): Promise<Ref[]> {
    const p = this.parse(entry.ref);
    if (p.scope === undefined) return [];
    const levels: WbPath[] = [{ kind: 'dir', scope: p.scope, rel: [] }];
    if (p.doc !== undefined) levels.push({ kind: 'dir', scope: p.scope, doc: p.doc, rel: [] });
    if (p.seg !== undefined) levels.push({ ...levels.at(-1)!, seg: p.seg });
    if (p.locale !== undefined) levels.push({ ...levels.at(-1)!, locale: p.locale });
    p.rel.forEach((_, i) => levels.push({ ...levels.at(-1)!, rel: p.rel.slice(0, i + 1) }));
    const refs = levels.map(encodeRef);
    return p.kind === 'dir' ? refs.slice(0, -1) : refs;
  }

  uploader(): WordbeeUploader {
    return new WordbeeUploader(this.api, {
      versionAt: async (scope, seg, locale, rel, name, signal) => {
        if (!this.cfg.scopes.includes(scope)) throw new NotFoundError(`wordbee: scope ${scope} is not configured`);
        const rows = await this.rows(scope, seg, true, signal);
        const row = rows.find((r) => (r.locale ?? '') === locale && sameParts(splitRelPath(r.relativePath), rel) && rowName(r) === name);
        if (!row) return undefined;
        const e = this.fileEntry({ kind: 'file', scope, seg, locale, rel }, row);
        return { version: e.version, size: e.size };
      },
    });
  }

  async close(): Promise<void> {
    await this.api.close();
  }

  private parse(ref: Ref, want?: 'file' | 'dir'): WbPath {
    const p = decodeRef(ref);
    if (!p || (want && p.kind !== want) || (p.scope !== undefined && !this.cfg.scopes.includes(p.scope))) {
      throw new NotFoundError(`wordbee source "${this.name}": no such entry ${JSON.stringify(ref)}`);
    }
    return p;
  }

  private fileEntry(p: WbPath, r: AssetRow): RemoteEntry {
    const name = rowName(r);
    const v = r.downloadUrl ? new URL(r.downloadUrl, 'http://x').searchParams.get('v') : null;
    const ref = encodeRef({ kind: 'file', scope: p.scope, doc: p.doc, seg: p.seg, locale: r.locale ?? '', rel: splitRelPath(r.relativePath), name });
    const n = this.numbers.file(ref, name, { size: r.size ?? r.fileSizeInBytes, mtime: r.modifiedDate ?? r.createdDate });
    return { name, kind: 'file', ref, ...n, version: v ? `${v}-${n.size}` : `${n.size}-${n.mtimeMs}`,
      ...(r.contentType ? { contentType: r.contentType } : {}) };
  }

  private async dirExists(p: WbPath, signal?: AbortSignal): Promise<boolean> {
    const index = await this.scopeIndex(p.scope!, signal);
    if (p.doc === undefined) return true;
    const segs = index.docs.get(p.doc);
    if (!segs) return false;
    if (p.seg === undefined) return true;
    if (!segs.includes(p.seg)) return false;
    if (p.locale === undefined) return true;
    const rows = await this.rows(p.scope!, p.seg, false, signal);
    return rows.some((r) => (r.locale ?? '') === p.locale && startsWith(splitRelPath(r.relativePath), p.rel));
  }

  /**
   * Documents and their segments in a scope, from the paged segment search (`skip`/`take`, a GUESS).
   * A page shorter than `take` is not the end (a server may cap `take`): only an empty page, or the
   * stated `total` reached, is (common/paging.ts). The whole search is one listing for its bounds.
   */
  private async scopeIndex(scope: string, signal?: AbortSignal): Promise<ScopeIndex> {
    const hit = this.scopes.get(scope);
    if (hit) return hit;
    const m = /^(pr|jbs|jbc)(\d+)$/.exec(scope)!;
    const scopeObj = m[1] === 'pr' ? { type: 'Project', projectid: Number(m[2]) } : { type: m[1] === 'jbs' ? 'Job' : 'Codyt', jobid: Number(m[2]) };
    const take = this.deps.listPageSize ?? 500;
    type Row = { bsid: number; did: number | string };
    const docs = new Map<number, Set<number>>();
    const rows = pagedList<Row, number>({
      what: `wordbee source "${this.name}": segments of ${scope}`,
      log: this.deps.log,
      limits: this.deps.listing,
      first: 0,
      key: (r) => String(r.bsid),
      offsets: { at: (skip) => skip, offsetOf: (skip) => skip },
      fetch: async (skip) => {
        const page = await this.api.json<{ result?: { rows?: Partial<Row>[]; total?: number | string } }>({
          method: 'POST', path: 'resources/segments/search', json: { scope: scopeObj, query: {}, skip, take }, signal,
        });
        const got = Array.isArray(page?.result?.rows) ? page.result.rows : [];
        const items = got.filter((r): r is Row => typeof r?.bsid === 'number' && r.did !== undefined && r.did !== null);
        const total = page?.result?.total === undefined ? undefined : Number(page.result.total);
        return { items, next: got.length > 0 ? skip + got.length : undefined, total };
      },
    });
    for await (const r of rows) {
      const did = Number(r.did);
      const set = docs.get(did) ?? new Set<number>();
      set.add(r.bsid);
      docs.set(did, set);
    }
    const index = { docs: new Map([...docs].map(([d, s]) => [d, [...s]])) };
    this.scopes.set(scope, index);
    return index;
  }

  private async rows(scope: string, seg: number, fresh: boolean, signal?: AbortSignal): Promise<AssetRow[]> {
    const hit = fresh ? undefined : this.segmentRows.get(seg);
    if (hit) return hit;
    const answer = await this.api.json<AssetRow[]>({ path: `resources/assets/${seg}/list`, query: { scope }, signal });
    // One answer, no paging (providers.md): the entry cap still bounds what is kept.
    const rows = capListing(Array.isArray(answer) ? answer : [], { what: `wordbee source "${this.name}": assets of segment ${seg}`, limits: this.deps.listing, log: this.deps.log }) as AssetRow[];
    this.segmentRows.set(seg, rows);
    return rows;
  }
}

const rowName = (r: AssetRow) => r.name ?? r.fileName ?? '';
const startsWith = (a: readonly string[], prefix: readonly string[]) => prefix.every((x, i) => a[i] === x);
const sameParts = (a: readonly string[], b: readonly string[]) => a.length === b.length && startsWith(a, b);
