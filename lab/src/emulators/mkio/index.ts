/**
 * A loopback emulator of MediaKind MK.IO's Media API (docs/providers.md#mkio), for tests and `assetfs demo`.
 *
 *  - `/api/v1/projects/{project}/media/assets[/{name}[/storage/|/getFileAccessInfo]]`, and the SDK's
 *    legacy `/api/ams/{subscription}/assets…` (subscription id or project name), same handlers.
 *  - Auth: `Authorization: Bearer <token>` or `x-mkio-token: <token>`; anything else is 401 with the
 *    MK.IO error body `{"error":{code,detail,extraDetail},"status","ref"}` (every failure uses it).
 *  - Listing: `$top` (default 10, 1–1000), `$orderby=name|name asc|name desc`, `$label=k=v`; the
 *    answer carries `supplemental.pagination{start,end,records,total}` and, when more remain,
 *    `@odata.nextLink` (a relative path) holding `$skiptoken`. The token is opaque and HMAC'd (a
 *    forged or edited one is 400); it records the last name served, so paging never repeats or skips
 *    an asset that existed throughout, even while others are added or deleted.
 *  - Storage listing `GET …/storage/` answers the top level below the asset's subPath as the docs
 *    show (`files[{name,size}]`, `folders[{name}]`); `?path=a/b` lists a nested folder (GUESS) and
 *    is echoed as `spec.path`, so a client can tell a server that honours it from one that ignores it.
 *    `listingDetail = true` adds `etag` and `lastModified` per file (a GUESS extension, off by default).
 *  - getFileAccessInfo mints a jwt (Signer, `urlTtlMs`, revocable by the `expire-tokens` fault)
 *    scoped to the asset's container, and the gateway (gateway.ts) checks it on every read.
 *    `s3Presign = true` makes S3 assets holding exactly one file answer a presigned URL of it instead.
 *  - Rate limits as documented, per project: `rateLimits` GETs and writes per sliding minute → 429
 *    with Retry-After (seconds until the oldest call leaves the window).
 * Seeding (createAsset, putFile, seedMany) writes records directly and bytes to the real storage.
 * Uploads bypass the API as on MK.IO: `storageCredential()` is a source's `storage:` key for them.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError, Router, sendEmpty, sendJson, startEmulatorServer, type Ctx, type EmulatorServer, type Route } from '../common/server.js';
import { Signer } from '../common/signing.js';
import type { AzureBacking, S3Backing, StoredObject } from '../common/backing.js';
import { AssetStore, type CredentialOptions, type StorageAccount, type StorageCredentialConfig, type StorageKind } from './store.js';
import { addGatewayRoutes, type AccessClaims } from './gateway.js';
import { knobPage, newKnobs, pagingKnobsFor, virtualName, VIRTUAL_MTIME_MS, type EmulatorKnobs } from '../common/knobs.js';

export { AZURE_ACCOUNT, S3_ACCOUNT, type CredentialOptions, type StorageCredentialConfig, type StorageKind } from './store.js';
export const MKIO_DEFAULT_PROJECT = 'demo-project';
export const MKIO_DEFAULT_TOKEN = 'mkio-emulator-token';

export interface MkioEmulatorOptions {
  azure?: AzureBacking;
  s3?: S3Backing;
  project?: string;
  tokens?: string[];
  /** Lifetime of getFileAccessInfo jwts (and presigned URLs). Default 5 min. */
  urlTtlMs?: number;
  port?: number;
}

export interface AssetRecord {
  readonly name: string;
  readonly assetId: string;
  readonly container: string;
  readonly storageAccountName: string;
  /** Without leading or trailing '/'; '' for none. */
  readonly subPath: string;
  description: string;
  readonly containerDeletionPolicy: 'Retain' | 'Delete';
  labels: Record<string, string>;
  readonly createdMs: number;
  modifiedMs: number;
}

const NAME_RE = /^[^/\\?#\x00-\x1f]{1,260}$/;
const CONTAINER_RE = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const CODES: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'Conflict', 429: 'TooManyRequests', 500: 'InternalServerError', 502: 'BadGateway', 503: 'ServiceUnavailable' };

/** `a//b/` → `a/b`; rejects `.`/`..` segments (no path may leave the asset). */
export function normPath(p: string): string {
  const segs = p.split('/').filter(Boolean);
  if (segs.some((s) => s === '.' || s === '..')) throw new HttpError(400, `invalid path ${JSON.stringify(p)}`);
  return segs.join('/');
}
const join = (...parts: string[]) => parts.filter(Boolean).join('/');

/** Asset `i` of a generated listing (paging knobs): a record with no storage behind it. */
const virtualAsset = (i: number): AssetRecord => ({
  name: virtualName(i), assetId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, container: `v-${i}`, storageAccountName: 'virtual',
  subPath: '', description: '', containerDeletionPolicy: 'Retain', labels: {}, createdMs: VIRTUAL_MTIME_MS, modifiedMs: VIRTUAL_MTIME_MS,
});

export class MkioEmulator {
  url = '';
  server!: EmulatorServer;
  readonly project: string;
  /** The legacy API's subscription id (`/api/ams/{subscription}`); the project name works there too. */
  readonly subscription = randomUUID();
  readonly tokens: Set<string>;
  /** Mutable: jwt (and presigned URL) lifetime of the next getFileAccessInfo. */
  urlTtlMs: number;
  s3Presign = false;
  listingDetail = false;
  /**
   * Hostile behaviour (common/knobs.ts): paging of the asset list (scope `assets`; knobbed pages use
   * offset tokens, the same token for the same offset) and the ETag of the gateway's GETs.
   */
  readonly knobs: EmulatorKnobs = newKnobs();
  readonly rateLimits = { getsPerMinute: 2000, writesPerMinute: 1000 };
  readonly store: AssetStore;
  readonly signer = new Signer();
  private readonly assets = new Map<string, AssetRecord>();
  /** `${account}\n${container}` of every asset: the pair is unique per project. */
  private readonly containers = new Set<string>();
  private sorted: string[] | undefined;
  private readonly tokenKey = randomBytes(32);
  private readonly hits = { read: [] as number[], write: [] as number[] };
  private gateway: { close(): Promise<void> } | undefined;

  constructor(opts: MkioEmulatorOptions) {
    this.project = opts.project ?? MKIO_DEFAULT_PROJECT;
    this.tokens = new Set(opts.tokens ?? [MKIO_DEFAULT_TOKEN]);
    this.urlTtlMs = opts.urlTtlMs ?? 5 * 60_000;
    this.store = new AssetStore(opts.azure, opts.s3);
  }

  async start(port?: number): Promise<this> {
    const router = new Router();
    this.gateway = addGatewayRoutes(router, this.store, this.signer, this.knobs);
    this.routes(router);
    this.server = await startEmulatorServer({ router, port, knobs: this.knobs, errorBody: (s, m, e) => this.errorBody(s, m, e), expireTokens: () => this.signer.revokeAll() });
    this.url = this.server.url;
    return this;
  }

  errorBody(status: number, detail: string, extra: Record<string, unknown>): unknown {
    return { error: { code: (extra.code as string) ?? CODES[status] ?? 'Error', detail, extraDetail: extra.extraDetail ?? {} }, status, ref: randomUUID() };
  }

  // ---- seeding API ---------------------------------------------------------------------------

  /** Creates (or returns the existing) asset; its Azure container is created up front. */
  async createAsset(name: string, opts: { storage?: StorageKind; subPath?: string; container?: string; description?: string; labels?: Record<string, string>; deletionPolicy?: 'Retain' | 'Delete' } = {}): Promise<AssetRecord> {
    const existing = this.assets.get(name);
    if (existing) return existing;
    const acct = this.store.accountOf(opts.storage ?? (this.store.azure ? 'azure' : 's3'));
    const rec = this.addRecord(name, acct, opts.container ?? this.freeContainer(name, acct.name), normPath(opts.subPath ?? ''), opts.description ?? '', opts.labels ?? {}, opts.deletionPolicy ?? 'Retain');
    await this.store.ensureContainer(acct.kind, rec.container);
    return rec;
  }

  /** Writes bytes at `path` below the asset's subPath, straight to its storage (as an uploader would). */
  putFile(asset: string, path: string, data: Buffer): Promise<StoredObject> {
    const { rec, acct } = this.must(asset);
    return this.store.put(acct.kind, rec.container, join(rec.subPath, normPath(path)), data);
  }

  removeFile(asset: string, path: string): Promise<void> {
    const { rec, acct } = this.must(asset);
    return this.store.remove(acct.kind, rec.container, join(rec.subPath, normPath(path)));
  }

  /** `n` asset records named `${prefix}00000…` (no bytes, no containers yet); returns their names. */
  seedMany(n: number, opts: { prefix?: string; storage?: StorageKind } = {}): string[] {
    const acct = this.store.accountOf(opts.storage ?? (this.store.azure ? 'azure' : 's3'));
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = `${opts.prefix ?? 'f-'}${String(i).padStart(5, '0')}`;
      if (!this.assets.has(name)) this.addRecord(name, acct, this.freeContainer(name, acct.name), '', '', {}, 'Retain');
      names.push(name);
    }
    return names;
  }

  /** A `storage:` credential that writes to the registered account of `kind` (AssetStore.credential). */
  storageCredential(kind: StorageKind, opts?: CredentialOptions): StorageCredentialConfig {
    return this.store.credential(kind, opts);
  }

  asset(name: string): AssetRecord | undefined {
    return this.assets.get(name);
  }

  setCredentialExpired(account: string, expired: boolean): void {
    const a = this.store.account(account);
    if (!a) throw new Error(`no storage account ${account}`);
    a.credentialExpired = expired;
  }

  async close(): Promise<void> {
    await this.server?.close();
    await this.gateway?.close();
    this.store.close();
  }

  // ---- records -------------------------------------------------------------------------------

  private addRecord(name: string, acct: StorageAccount, container: string, subPath: string, description: string, labels: Record<string, string>, policy: 'Retain' | 'Delete'): AssetRecord {
    const now = Date.now();
    const rec: AssetRecord = { name, assetId: randomUUID(), container, storageAccountName: acct.name, subPath, description, containerDeletionPolicy: policy, labels, createdMs: now, modifiedMs: now };
    this.assets.set(name, rec);
    this.containers.add(`${acct.name}\n${container}`);
    this.sorted = undefined;
    return rec;
  }

  private freeContainer(name: string, acct: string): string {
    let base = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 56);
    if (base.length < 3) base = `asset-${base || 'x'}`.replace(/-$/, '');
    let c = base;
    for (let i = 2; this.containers.has(`${acct}\n${c}`); i++) c = `${base}-${i}`;
    return c;
  }

  private must(name: string): { rec: AssetRecord; acct: StorageAccount } {
    const rec = this.assets.get(name);
    if (!rec) throw new HttpError(404, `Asset '${name}' not found in project '${this.project}'`, { code: 'AssetNotFound' });
    const acct = this.store.account(rec.storageAccountName);
    if (!acct) throw new HttpError(500, `storage account ${rec.storageAccountName} of asset '${name}' is gone`);
    return { rec, acct };
  }

  private json(rec: AssetRecord, base: string): unknown {
    return {
      name: rec.name,
      id: `${base}/${encodeURIComponent(rec.name)}`,
      type: 'Microsoft.Media/mediaservices/assets',
      labels: rec.labels,
      properties: {
        assetId: rec.assetId, alternateId: null, container: rec.container, storageAccountName: rec.storageAccountName, subPath: rec.subPath,
        description: rec.description, containerDeletionPolicy: rec.containerDeletionPolicy, created: new Date(rec.createdMs).toISOString(), lastModified: new Date(rec.modifiedMs).toISOString(),
      },
    };
  }

  // ---- paging --------------------------------------------------------------------------------

  private makeToken(after: string, desc: boolean, salt = randomBytes(4).toString('hex')): string {
    const body = Buffer.from(JSON.stringify({ a: after, d: desc ? 1 : 0, s: salt })).toString('base64url');
    return `${body}.${createHmac('sha256', this.tokenKey).update(body).digest('base64url').slice(0, 22)}`;
  }

  private readToken(token: string, desc: boolean): string {
    const [body = '', mac = ''] = token.split('.');
    const want = createHmac('sha256', this.tokenKey).update(body).digest('base64url').slice(0, 22);
    let parsed: { a?: unknown; d?: unknown } = {};
    try {
      if (mac === want) parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch { /* falls through to the 400 */ }
    if (typeof parsed.a !== 'string' || parsed.d !== (desc ? 1 : 0)) throw new HttpError(400, 'Invalid $skiptoken: take it from the previous answer, with the same $orderby', { code: 'InvalidSkipToken' });
    return parsed.a;
  }

  private list(ctx: Ctx, base: string): void {
    const q = ctx.url.searchParams;
    const top = Number(q.get('$top') ?? 10);
    if (!Number.isInteger(top) || top < 1 || top > 1000) throw new HttpError(400, '$top must be an integer between 1 and 1000');
    const orderby = (q.get('$orderby') ?? 'name').trim();
    if (!/^name( (asc|desc))?$/i.test(orderby)) throw new HttpError(400, `$orderby '${orderby}' is not supported (emulator: name [asc|desc])`);
    const desc = /desc$/i.test(orderby);
    this.sorted ??= [...this.assets.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    let names = desc ? [...this.sorted].reverse() : this.sorted;
    const label = q.get('$label');
    if (label) {
      const [k = '', v] = label.split('=');
      names = names.filter((n) => { const l = this.assets.get(n)!.labels; return k in l && (v === undefined || l[k] === v); });
    }
    // Under paging knobs (common/knobs.ts) tokens carry an offset (`#n`, unsalted: one offset, one token).
    const knobs = pagingKnobsFor(this.knobs, 'assets');
    const token = q.get('$skiptoken');
    const after = token ? this.readToken(token, desc) : undefined;
    let page: { rows: AssetRecord[]; offset: number; total?: number; next?: string };
    if (knobs) {
      const p = knobPage({ count: names.length, at: (i) => this.assets.get(names[i]!)! }, virtualAsset, knobs, after === undefined ? undefined : Number(after.slice(1)), top);
      page = { ...p, next: p.next === undefined ? undefined : this.makeToken(`#${p.next}`, desc, '') };
    } else {
      // First index past `after` in this order (binary search: the predicate is monotone).
      let lo = 0, hi = after === undefined ? 0 : names.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (desc ? names[mid]! < after! : names[mid]! > after!) hi = mid;
        else lo = mid + 1;
      }
      const rows = names.slice(lo, lo + top);
      page = { rows: rows.map((n) => this.assets.get(n)!), offset: lo, total: names.length, next: lo + rows.length < names.length ? this.makeToken(rows.at(-1)!, desc) : undefined };
    }
    const { rows, offset: start } = page;
    const body: Record<string, unknown> = {
      value: rows.map((r) => this.json(r, base)),
      supplemental: { count: rows.length, kind: 'Asset', operation: 'list', pagination: { start, end: start + rows.length, records: rows.length, ...(page.total === undefined ? {} : { total: page.total }) } },
    };
    if (page.next !== undefined) {
      const keep = label ? `&$label=${encodeURIComponent(label)}` : '';
      body['@odata.nextLink'] = `${base}?$top=${top}&$orderby=${encodeURIComponent(orderby)}${keep}&$skiptoken=${page.next}`;
    }
    sendJson(ctx.res, 200, body);
  }

  // ---- routes --------------------------------------------------------------------------------

  private authorized(req: IncomingMessage): boolean {
    const auth = req.headers.authorization;
    const m = typeof auth === 'string' ? /^Bearer\s+(.+)$/i.exec(auth.trim()) : null;
    const legacy = req.headers['x-mkio-token'];
    const token = m?.[1] ?? (typeof legacy === 'string' ? legacy.trim() : undefined);
    return token !== undefined && this.tokens.has(token);
  }

  /** Seconds to wait when this call would exceed the project's rate limit; else counts it. */
  private limited(kind: 'read' | 'write'): number | undefined {
    const now = Date.now();
    const hits = this.hits[kind];
    while (hits.length && hits[0]! <= now - 60_000) hits.shift();
    const limit = kind === 'read' ? this.rateLimits.getsPerMinute : this.rateLimits.writesPerMinute;
    if (hits.length >= limit) return Math.max(1, Math.ceil((hits[0]! + 60_000 - now) / 1000));
    hits.push(now);
    return undefined;
  }

  /** Auth, then rate limit, then project: the order a client observes them in. */
  private api(legacy: boolean, fn: (ctx: Ctx, base: string) => Promise<void> | void): Route {
    return async (ctx) => {
      if (!this.authorized(ctx.req)) throw new HttpError(401, 'The API token is missing, invalid, expired or revoked', { code: 'Unauthorized' });
      const wait = this.limited(ctx.req.method === 'GET' || ctx.req.method === 'HEAD' ? 'read' : 'write');
      if (wait !== undefined) {
        ctx.req.resume();
        return sendJson(ctx.res, 429, this.errorBody(429, `Rate limit exceeded for project '${this.project}'; retry in ${wait} s`, {}), { 'retry-after': String(wait) });
      }
      const seg = ctx.params[0]!;
      if (seg !== this.project && !(legacy && seg === this.subscription)) throw new HttpError(404, `Project '${seg}' not found`, { code: 'ProjectNotFound' });
      const base = legacy ? `/api/ams/${encodeURIComponent(seg)}/assets` : `/api/v1/projects/${encodeURIComponent(this.project)}/media/assets`;
      await fn(ctx, base);
    };
  }

  private routes(router: Router): void {
    for (const legacy of [false, true]) {
      const P = legacy ? String.raw`^/api/ams/([^/]+)` : String.raw`^/api/v1/projects/([^/]+)/media`;
      const A = `${P}/assets/([^/]+)`;
      router.on('GET', new RegExp(`${P}/assets/?$`), this.api(legacy, (ctx, base) => this.list(ctx, base)));
      router.on('GET', new RegExp(`${A}/?$`), this.api(legacy, (ctx, base) => sendJson(ctx.res, 200, this.json(this.must(ctx.params[1]!).rec, base))));
      router.on('PUT', new RegExp(`${A}/?$`), this.api(legacy, (ctx, base) => this.put(ctx, base)));
      router.on('DELETE', new RegExp(`${A}/?$`), this.api(legacy, (ctx) => this.remove(ctx)));
      router.on('GET', new RegExp(`${A}/storage/?$`), this.api(legacy, (ctx) => this.storageListing(ctx)));
      router.on('POST', new RegExp(`${A}/getFileAccessInfo/?$`), this.api(legacy, (ctx) => this.fileAccessInfo(ctx)));
      router.on('GET', new RegExp(`${P}/storage/?$`), this.api(legacy, (ctx) => {
        const value = [...this.store.accounts.values()].map((a) => ({ name: a.name, spec: { type: a.kind === 'azure' ? 'Microsoft.Storage' : 'AWS.S3', url: a.url, bucketName: a.kind === 's3' ? this.store.s3?.bucket : undefined, description: '' } }));
        sendJson(ctx.res, 200, { value, supplemental: { count: value.length, kind: 'Storage', operation: 'list' } });
      }));
    }
  }

  private async put(ctx: Ctx, base: string): Promise<void> {
    const name = ctx.params[1]!;
    const body = await ctx.json<{ properties?: Record<string, unknown>; labels?: Record<string, unknown> }>();
    const p = body.properties ?? {};
    if (!NAME_RE.test(name)) throw new HttpError(400, 'Asset names are 1–260 characters without / \\ ? # or control characters');
    if (typeof p.storageAccountName !== 'string' || !p.storageAccountName) throw new HttpError(400, 'properties.storageAccountName is required', { code: 'ValidationError' });
    const acct = this.store.account(p.storageAccountName);
    if (!acct) throw new HttpError(400, `Storage account '${p.storageAccountName}' is not registered in project '${this.project}'`, { code: 'ValidationError' });
    const labels = (body.labels ?? {}) as Record<string, string>;
    if (Object.keys(labels).length > 32 || Object.entries(labels).some(([k, v]) => k.length > 256 || String(v).length > 256)) throw new HttpError(400, 'At most 32 labels of at most 256 characters', { code: 'ValidationError' });
    const existing = this.assets.get(name);
    const container = typeof p.container === 'string' ? p.container : existing?.container ?? `asset-${randomUUID()}`;
    if (!CONTAINER_RE.test(container) || container.length < 3 || container.length > 63) throw new HttpError(400, `Container name '${container}' must match ^[a-z0-9]+(-[a-z0-9]+)*$ and be 3-63 characters`, { code: 'ValidationError' });
    const subPath = normPath(typeof p.subPath === 'string' ? p.subPath : existing?.subPath ?? '');
    const description = typeof p.description === 'string' ? p.description : existing?.description ?? '';
    if (existing) {
      if (existing.storageAccountName !== acct.name || existing.container !== container || existing.subPath !== subPath) {
        throw new HttpError(400, 'container, subPath and storageAccountName cannot change once the asset exists; only description can be updated', { code: 'ValidationError' });
      }
      existing.description = description;
      existing.modifiedMs = Date.now();
      return sendJson(ctx.res, 200, this.json(existing, base));
    }
    if (this.containers.has(`${acct.name}\n${container}`)) throw new HttpError(409, `Container '${container}' of storage '${acct.name}' already belongs to another asset`, { code: 'Conflict' });
    const rec = this.addRecord(name, acct, container, subPath, description, labels, p.containerDeletionPolicy === 'Delete' ? 'Delete' : 'Retain');
    await this.store.ensureContainer(acct.kind, container);
    sendJson(ctx.res, 201, this.json(rec, base));
  }

  private async remove(ctx: Ctx): Promise<void> {
    const { rec, acct } = this.must(ctx.params[1]!);
    if (rec.containerDeletionPolicy === 'Delete') await this.store.dropContainer(acct.kind, rec.container);
    this.assets.delete(rec.name);
    this.containers.delete(`${acct.name}\n${rec.container}`);
    this.sorted = undefined;
    sendEmpty(ctx.res, 200);
  }

  private async storageListing(ctx: Ctx): Promise<void> {
    const { rec, acct } = this.must(ctx.params[1]!);
    const path = normPath(ctx.url.searchParams.get('path') ?? '');
    const prefix = join(rec.subPath, path);
    const l = await this.store.list(acct.kind, rec.container, prefix ? `${prefix}/` : '');
    if (path && !l.files.length && !l.folders.length) throw new HttpError(404, `Folder '${path}' not found in asset '${rec.name}'`, { code: 'NotFound' });
    const files = l.files.map((f) => (this.listingDetail ? { name: f.name, size: f.size, etag: f.etag, lastModified: new Date(f.mtimeMs).toISOString() } : { name: f.name, size: f.size }));
    sendJson(ctx.res, 200, {
      metadata: { id: rec.assetId, name: rec.name },
      spec: { container: rec.container, path, files, folders: l.folders, formatHint: '', tracks: {}, periods: {}, error: {}, exceptions: {} },
    });
  }

  private async fileAccessInfo(ctx: Ctx): Promise<void> {
    ctx.req.resume(); // "a POST with no body"; anything sent is ignored
    const { rec, acct } = this.must(ctx.params[1]!);
    if (acct.credentialExpired) {
      throw new HttpError(400, `The credential of storage '${acct.name}' has expired or is invalid; rotate it (PUT …/media/storage/${acct.name})`, { code: 'StorageCredentialInvalid' });
    }
    const claims: AccessClaims = { acct: acct.name, container: rec.container, scope: 'read' };
    const jwt = this.signer.issue(claims, this.urlTtlMs);
    let url = acct.kind === 'azure' ? `${this.url}/blob/${acct.name}/${rec.container}` : `${this.url}/s3/${this.store.s3!.bucket}/${rec.container}`;
    if (acct.kind === 's3' && this.s3Presign) {
      const files = await this.store.listDeep('s3', rec.container, rec.subPath ? `${rec.subPath}/` : '');
      if (files.length === 1) url = await this.store.signedGet('s3', rec.container, join(rec.subPath, files[0]!), this.urlTtlMs);
    }
    sendJson(ctx.res, 200, { storageAccountName: acct.name, containerName: rec.container, jwt, url, subPath: rec.subPath });
  }
}

export async function startMkioEmulator(opts: MkioEmulatorOptions = {}): Promise<MkioEmulator> {
  return new MkioEmulator(opts).start(opts.port);
}
