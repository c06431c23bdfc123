/**
 * A loopback emulator of the Nomad Media admin API (docs/providers.md#nomad), for tests and `assetfs demo`:
 * login / refresh-token / ping, `POST /api/admin/search` with filters and page-index paging,
 * `GET /api/admin/asset/{id}` (+ `/detail`, `/resolve-full-url`), RFC 7807 error bodies; multipart
 * uploads (uploads.ts) and folder create / rename / move / delete (folders.ts).
 *
 * Invariants:
 *  - Bearer tokens really expire (`tokenTtlMs`, mutable) and are really checked; an expired one is
 *    refused with `expiredStatus` (401 as the docs say, or 403 as the SDK also expects). Refresh
 *    tokens rotate on use. The `expire-tokens` fault revokes every access token issued so far.
 *  - A file's `fullUrl` is a SigV4 presigned GET on the S3 backing's public base (the caller puts an
 *    expiry-enforcing fault proxy there), minted per answer with lifetime `urlTtlMs` (mutable).
 *    Only readable files (Available/Restored) get one; folders and buckets never do.
 *  - The backing bucket must already exist (the caller configures it on s3rver); the backing is the
 *    caller's and is not closed here.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { HttpError, Router, sendJson, startEmulatorServer, type Ctx, type EmulatorServer } from '../common/server.js';
import { bearer, Signer } from '../common/signing.js';
import type { S3Backing } from '../common/backing.js';
import { Catalog, type AssetRecord, type SearchFilter, type SortField } from './catalog.js';
import { assetBody, detailBody, errorBody, searchItem, wantedFields } from './shapes.js';
import { knobPage, newKnobs, pagingKnobsFor, rowsOf, virtualName, VIRTUAL_MTIME_MS, type EmulatorKnobs } from '../common/knobs.js';

/** Child `i` of a generated folder listing (paging knobs): a one-byte file with no object behind it. */
function virtualRecord(parentId: string, i: number): AssetRecord {
  return {
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, parentId, name: virtualName(i, '.bin'), type: 'File', bucketName: 'virtual',
    objectKey: '', assetStatus: 'Available', size: 1, etag: '', createdMs: VIRTUAL_MTIME_MS, modifiedMs: VIRTUAL_MTIME_MS,
  };
}
import { NomadUploads } from './uploads.js';
import { registerFolderRoutes } from './folders.js';

export { Catalog, type AssetRecord } from './catalog.js';

export const READABLE_STATUSES: readonly string[] = ['Available', 'Restored'];
export const DEFAULT_NOMAD_USER = { userName: 'demo@nomad.example', password: 'nomad-demo' } as const;

export interface NomadEmulatorOptions {
  s3: S3Backing;
  users?: { userName: string; password: string }[];
  /** Access-token lifetime (the real one is ~45 min). Default 45 min. */
  tokenTtlMs?: number;
  /** Refresh-token lifetime. Default 24 h. */
  refreshTtlMs?: number;
  /** Lifetime of the presigned `fullUrl`s. Default 15 min. */
  urlTtlMs?: number;
  /** Status of a request with an expired token. Default 401. */
  expiredStatus?: 401 | 403;
  /** Lifetime of presigned upload part URLs (GUESS: undocumented). Default 60 min. */
  partUrlTtlMs?: number;
  /** Smallest upload chunkSize accepted. Default 5 MiB (S3's part minimum). */
  minChunkSize?: number;
  /** Registering phase of a completed upload before it is Available. Default 0 (none). */
  registerMs?: number;
  port?: number;
}

interface Session {
  readonly userId: string;
  readonly userName: string;
}

export class NomadEmulator {
  urlTtlMs: number;
  tokenTtlMs: number;
  refreshTtlMs: number;
  expiredStatus: 401 | 403;
  partUrlTtlMs: number;
  minChunkSize: number;
  registerMs: number;
  readonly catalog = new Catalog();
  readonly s3: S3Backing;
  /** Open upload sessions (tests look inside; `uploads.expire(id)` loses one). */
  readonly uploads: NomadUploads;
  /**
   * Hostile behaviour (common/knobs.ts): paging of a folder's search (scope: the parentId searched);
   * downloads are s3rver's (knob them on the fault proxy in front of it).
   */
  readonly knobs: EmulatorKnobs = newKnobs();
  private srv: EmulatorServer | undefined;
  private readonly signer = new Signer();
  private readonly users = new Map<string, { id: string; password: string }>();
  private readonly sessions = new Map<string, Session>();
  private readonly refreshTokens = new Map<string, { sessionId: string; expMs: number }>();
  private readonly sharedObjects = new Map<string, Promise<{ key: string; size: number; etag: string }>>();
  /** Presigned URLs by key, reused only within the same second: identical to a fresh presign then. */
  private readonly urlCache = new Map<string, { url: string; sec: number; ttl: number }>();
  /** When access tokens were last revoked: Signer refuses tokens issued up to 1 ms after that. */
  private revokedAtMs = 0;

  constructor(opts: NomadEmulatorOptions) {
    this.s3 = opts.s3;
    this.urlTtlMs = opts.urlTtlMs ?? 15 * 60_000;
    this.tokenTtlMs = opts.tokenTtlMs ?? 45 * 60_000;
    this.refreshTtlMs = opts.refreshTtlMs ?? 24 * 3_600_000;
    this.expiredStatus = opts.expiredStatus ?? 401;
    this.partUrlTtlMs = opts.partUrlTtlMs ?? 60 * 60_000;
    this.minChunkSize = opts.minChunkSize ?? 5 * 1024 * 1024;
    this.registerMs = opts.registerMs ?? 0;
    this.uploads = new NomadUploads(this);
    for (const u of opts.users ?? [DEFAULT_NOMAD_USER]) this.users.set(u.userName.toLowerCase(), { id: randomUUID(), password: u.password });
  }

  get server(): EmulatorServer {
    if (!this.srv) throw new Error('nomad emulator not started');
    return this.srv;
  }

  get url(): string {
    return this.server.url;
  }

  async start(port?: number): Promise<this> {
    this.srv = await startEmulatorServer({ router: this.router(), errorBody, expireTokens: () => this.revokeTokens(), knobs: this.knobs, port });
    return this;
  }

  async close(): Promise<void> {
    await this.srv?.close();
    this.uploads.close();
  }

  /** Every access token issued so far is refused as expired from now on. */
  revokeTokens(): void {
    this.revokedAtMs = Date.now();
    this.signer.revokeAll();
  }

  /** Every refresh token issued so far is refused (the client must log in with its password). */
  revokeRefreshTokens(): void {
    this.refreshTokens.clear();
  }

  // ---- seeding API -------------------------------------------------------------------------------

  createBucket(name: string): string {
    const old = this.catalog.child(null, name);
    if (old) return old.id;
    return this.catalog.add({ parentId: null, name, type: 'Bucket', bucketName: name, objectKey: '', assetStatus: 'Available', size: 0, etag: '' }).id;
  }

  /** A folder under `parentId`, or the existing one of that name. */
  createFolder(parentId: string, name: string): string {
    const old = this.catalog.child(parentId, name);
    if (old && old.type !== 'File') return old.id;
    if (old) throw new Error(`a file named "${name}" already exists in ${parentId}`);
    return this.catalog.add({ parentId, name, type: 'Folder', bucketName: this.bucketOf(parentId), objectKey: '', assetStatus: 'Available', size: 0, etag: '' }).id;
  }

  /** Stores `bytes` as file `name` in `parentId`; an existing file of that name gets the new bytes. */
  async putFile(parentId: string, name: string, bytes: Buffer, opts: { status?: string } = {}): Promise<string> {
    const old = this.catalog.child(parentId, name);
    if (old && old.type !== 'File') throw new Error(`"${name}" in ${parentId} is a folder`);
    const id = old?.id ?? randomUUID();
    const key = old?.objectKey && !old.objectKey.startsWith('seed/') ? old.objectKey : `assets/${id}`;
    const stored = await this.s3.put(key, bytes);
    const now = this.catalog.child(parentId, name); // a concurrent put of the same name may have won
    if (now && now.type === 'File') {
      Object.assign(now, { objectKey: key, size: stored.size, etag: stored.etag, assetStatus: opts.status ?? now.assetStatus });
      this.catalog.touch(now);
      return now.id;
    }
    return this.catalog.add({ id, parentId, name, type: 'File', bucketName: this.bucketOf(parentId), objectKey: key, assetStatus: opts.status ?? 'Available', size: stored.size, etag: stored.etag }).id;
  }

  setStatus(id: string, status: string): void {
    const rec = this.catalog.get(id);
    if (!rec) throw new Error(`no asset ${id}`);
    rec.assetStatus = status;
    this.catalog.touch(rec);
  }

  /**
   * `n` file records `${prefix}00000…` in one folder, all pointing at one shared stored object (the
   * catalog holds records; the bytes are stored once), for paging tests of very large folders.
   */
  async seedMany(parentId: string, n: number, opts: { prefix?: string; bytes?: Buffer } = {}): Promise<string[]> {
    const bytes = opts.bytes ?? Buffer.from('seed\n');
    const hash = createHash('sha1').update(bytes).digest('hex');
    let shared = this.sharedObjects.get(hash);
    if (!shared) {
      shared = this.s3.put(`seed/${hash}`, bytes).then((s) => ({ key: `seed/${hash}`, size: s.size, etag: s.etag }));
      this.sharedObjects.set(hash, shared);
    }
    const obj = await shared;
    const bucketName = this.bucketOf(parentId);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = `${opts.prefix ?? 'f-'}${String(i).padStart(5, '0')}`;
      const old = this.catalog.child(parentId, name);
      if (old && old.type === 'File') {
        Object.assign(old, { objectKey: obj.key, size: obj.size, etag: obj.etag });
        this.catalog.touch(old);
        ids.push(old.id);
      } else if (!old) {
        ids.push(this.catalog.add({ parentId, name, type: 'File', bucketName, objectKey: obj.key, assetStatus: 'Available', size: obj.size, etag: obj.etag }).id);
      }
    }
    return ids;
  }

  /** The folder at `bucket/folder/…` ('/'-separated), made along the way; returns its id. */
  ensurePath(path: string): string {
    const [bucket, ...rest] = path.split('/').filter(Boolean);
    if (!bucket) throw new Error('a path starts with a bucket name');
    let id = this.createBucket(bucket);
    for (const seg of rest) id = this.createFolder(id, seg);
    return id;
  }

  /** A file at `bucket/folder/…/name`, folders made along the way; returns its id. */
  putPath(path: string, bytes: Buffer, opts: { status?: string } = {}): Promise<string> {
    const segs = path.split('/').filter(Boolean);
    const name = segs.pop();
    if (!name || segs.length === 0) throw new Error(`"${path}": a file needs a bucket and a name`);
    return this.putFile(this.ensurePath(segs.join('/')), name, bytes, opts);
  }

  /** The record at a '/'-separated path, if any. */
  find(path: string): AssetRecord | undefined {
    let rec: AssetRecord | undefined;
    for (const seg of path.split('/').filter(Boolean)) {
      rec = this.catalog.child(rec ? rec.id : null, seg);
      if (!rec) return undefined;
    }
    return rec;
  }

  private bucketOf(parentId: string): string {
    const p = this.catalog.get(parentId);
    if (!p) throw new Error(`no folder ${parentId}`);
    if (p.type === 'File') throw new Error(`${parentId} is a file, not a folder`);
    return p.bucketName;
  }

  // ---- API ---------------------------------------------------------------------------------------

  /** The presigned GET of a readable file, or null (folders, buckets, unreadable files). */
  async fullUrl(rec: AssetRecord): Promise<string | null> {
    if (rec.type !== 'File' || !READABLE_STATUSES.includes(rec.assetStatus)) return null;
    const sec = Math.floor(Date.now() / 1000);
    const hit = this.urlCache.get(rec.objectKey);
    if (hit && hit.sec === sec && hit.ttl === this.urlTtlMs) return hit.url;
    const url = await this.s3.presignGet(rec.objectKey, this.urlTtlMs);
    if (this.urlCache.size > 10_000) this.urlCache.clear();
    this.urlCache.set(rec.objectKey, { url, sec, ttl: this.urlTtlMs });
    return url;
  }

  /** Tokens issued in the revoking millisecond would count as revoked: let that instant pass first. */
  private async pastRevoke(): Promise<void> {
    while (Date.now() <= this.revokedAtMs + 1) await new Promise((r) => setTimeout(r, 1));
  }

  private issue(sessionId: string, s: Session) {
    const refreshToken = randomBytes(24).toString('base64url');
    this.refreshTokens.set(refreshToken, { sessionId, expMs: Date.now() + this.refreshTtlMs });
    return {
      token: this.signer.issue({ sub: s.userId, sid: sessionId }, this.tokenTtlMs),
      refreshToken,
      expirationSeconds: Math.max(1, Math.round(this.tokenTtlMs / 1000)),
      id: s.userId,
      userSessionId: sessionId,
      loginStatus: null,
    };
  }

  /** The session of a request's bearer token; refuses missing, invalid and expired tokens. */
  authorize(ctx: Ctx): Session {
    const instance = ctx.url.pathname;
    const v = this.signer.verify<{ sub: string; sid: string }>(bearer(ctx.req.headers.authorization));
    if (!v.ok && v.reason === 'expired') throw new HttpError(this.expiredStatus, 'The access token has expired.', { instance });
    if (!v.ok) throw new HttpError(401, 'A valid bearer token is required.', { instance });
    const s = this.sessions.get(v.claims.sid);
    if (!s) throw new HttpError(401, 'The user session has ended.', { instance });
    return s;
  }

  private asset(ctx: Ctx): AssetRecord {
    const rec = this.catalog.get(ctx.params[0]!);
    if (!rec) throw new HttpError(404, `Asset ${ctx.params[0]} was not found.`, { instance: ctx.url.pathname });
    return rec;
  }

  private router(): Router {
    const r = new Router();
    r.on('POST', /^\/api\/account\/login$/, async (ctx) => {
      const b = await ctx.json<{ userName?: string; password?: string }>();
      if (!b.userName || !b.password) throw new HttpError(400, 'userName and password are required.', { instance: ctx.url.pathname });
      const u = this.users.get(b.userName.toLowerCase());
      // The admin API answers a failed authentication with 404 (swagger-admin.json).
      if (!u || u.password !== b.password) throw new HttpError(404, 'Authentication failed: invalid user name or password.', { instance: ctx.url.pathname });
      await this.pastRevoke();
      const sessionId = randomUUID();
      const s = { userId: u.id, userName: b.userName };
      this.sessions.set(sessionId, s);
      sendJson(ctx.res, 200, this.issue(sessionId, s));
    });
    r.on('POST', /^\/api\/account\/refresh-token$/, async (ctx) => {
      const b = await ctx.json<{ refreshToken?: string }>();
      if (!b.refreshToken) throw new HttpError(400, 'refreshToken is required.', { instance: ctx.url.pathname });
      const rt = this.refreshTokens.get(b.refreshToken);
      const s = rt && this.sessions.get(rt.sessionId);
      if (!rt || !s || Date.now() >= rt.expMs) throw new HttpError(404, 'The refresh token is invalid or has expired.', { instance: ctx.url.pathname });
      this.refreshTokens.delete(b.refreshToken); // rotates: each refresh token works once
      await this.pastRevoke();
      sendJson(ctx.res, 200, this.issue(rt.sessionId, s));
    });
    r.on('POST', /^\/api\/account\/ping$/, async (ctx) => {
      this.authorize(ctx);
      const b = await ctx.json<{ userSessionId?: string }>();
      if (!b.userSessionId) throw new HttpError(400, 'userSessionId is required.', { instance: ctx.url.pathname });
      sendJson(ctx.res, 200, { pingStatus: this.sessions.has(b.userSessionId) ? 'Normal' : 'AccountExpired' });
    });
    r.on('POST', /^\/api\/account\/logout$/, async (ctx) => {
      this.authorize(ctx);
      const b = await ctx.json<{ userSessionId?: string }>();
      if (b.userSessionId) this.sessions.delete(b.userSessionId);
      sendJson(ctx.res, 200, {});
    });
    r.on('POST', /^\/api\/(?:admin|portal)\/search$/, async (ctx) => {
      this.authorize(ctx);
      const b = await ctx.json<{ pageOffset?: unknown; pageSize?: unknown; filters?: unknown; sortFields?: unknown; searchResultFields?: unknown }>();
      const instance = ctx.url.pathname;
      const pageOffset = Number(b.pageOffset ?? 0);
      const pageSize = Number(b.pageSize ?? 100);
      if (!Number.isInteger(pageOffset) || pageOffset < 0) throw new HttpError(400, 'pageOffset must be a page index from 0.', { instance });
      if (!Number.isInteger(pageSize) || pageSize < 1) throw new HttpError(400, 'pageSize must be a positive integer.', { instance });
      if (b.filters !== undefined && !Array.isArray(b.filters)) throw new HttpError(400, 'filters must be an array.', { instance });
      if (b.sortFields !== undefined && !Array.isArray(b.sortFields)) throw new HttpError(400, 'sortFields must be an array.', { instance });
      const size = Math.min(pageSize, 1000); // larger pages are cut to 1000 (GUESS)
      const filters = (b.filters ?? []) as SearchFilter[];
      const all = this.catalog.search(filters, (b.sortFields ?? []) as SortField[]);
      const parent = filters.find((f) => f?.fieldName === 'parentId')?.values;
      const knobs = pagingKnobsFor(this.knobs, typeof parent === 'string' ? parent : '');
      // Under a page cap the offset still counts pages of the size asked (the less convenient reading).
      const { rows: page, total } = knobPage(rowsOf(all), (i) => virtualRecord(String(parent), i), knobs, pageOffset > 0 ? pageOffset * size : undefined, size);
      const fields = wantedFields(b.searchResultFields);
      const items = await Promise.all(page.map(async (rec) => searchItem(this.catalog, rec, fields, fields?.has('identifiers.fullUrl') === false || !rec.objectKey ? null : await this.fullUrl(rec))));
      // As in the docs' example, nextPageOffset is the next page index even on the last page.
      sendJson(ctx.res, 200, { items, ...(total === undefined ? {} : { totalItemCount: total }), nextPageOffset: pageOffset + 1, hasItems: items.length > 0 });
    });
    r.on('GET', /^\/api\/admin\/asset\/([^/]+)\/detail$/, async (ctx) => {
      this.authorize(ctx);
      const rec = this.asset(ctx);
      sendJson(ctx.res, 200, detailBody(this.catalog, rec, await this.fullUrl(rec)));
    });
    r.on('GET', /^\/api\/admin\/asset\/([^/]+)\/resolve-full-url$/, async (ctx) => {
      this.authorize(ctx);
      const rec = this.asset(ctx);
      const url = await this.fullUrl(rec);
      if (!url) throw new HttpError(400, `Asset ${rec.id} has no readable content (${rec.type}, ${rec.assetStatus}).`, { instance: ctx.url.pathname });
      sendJson(ctx.res, 200, url);
    });
    r.on('GET', /^\/api\/admin\/asset\/([^/]+)$/, async (ctx) => {
      this.authorize(ctx);
      const rec = this.asset(ctx);
      sendJson(ctx.res, 200, assetBody(this.catalog, rec, await this.fullUrl(rec)));
    });
    this.uploads.register(r);
    registerFolderRoutes(r, this);
    return r;
  }
}

export async function startNomadEmulator(opts: NomadEmulatorOptions): Promise<NomadEmulator> {
  return new NomadEmulator(opts).start(opts.port);
}
