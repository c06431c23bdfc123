/**
 * Azure Media Services v2 REST emulator (docs/providers.md#ams), on loopback, for tests and `assetfs demo`.
 * The v2 API was retired in 2024, so this emulator is the only place it still runs.
 *
 *  - `POST /{tenant}/oauth2/token` — Azure AD client credentials → `{token_type, access_token, expires_in}`.
 *  - `/api/` — the OData service root: Assets, Assets('id')/Files|Locators, Files, AccessPolicies, Locators.
 *    Every call needs `Authorization: Bearer` (401 when missing, invalid or expired) and `x-ms-version`
 *    (400 when missing). `/API/…` (the legacy root) answers 301 to the same path under `/api/`.
 *  - Locators are stored access policies on the asset's Azurite container (catalog.ts): Azurite checks
 *    every read, its expiry and its revocation; a 6th locator on one asset answers 400. A locator whose
 *    policy has the Write bit (2) lets its SAS Put Block / Put Block List into the container (uploads).
 *  - Writes (CreateFileInfos, MERGE, DELETE of Assets and Files): writes.ts.
 * The caller owns the Azurite backing (and the fault proxy that is its public face): close() leaves it up.
 */
import type { IncomingMessage } from 'node:http';
import type { AzureBacking } from '../common/backing.js';
import { HttpError, Router, sendEmpty, sendJson, startEmulatorServer, type Ctx, type EmulatorServer } from '../common/server.js';
import { bearer, Signer } from '../common/signing.js';
import { Catalog, MAX_LOCATORS_PER_ASSET, type AssetRec, type FileRec, type LocatorRec, type PolicyRec } from './catalog.js';
import { MAX_PAGE, entity, fmtDate, odataError, page, parseDate, parseKey, sendEntity, sendError, sendSet, type Mode } from './odata.js';
import { knobPage, newKnobs, pagingKnobsFor, rowsOf, virtualName, VIRTUAL_MTIME_MS, type EmulatorKnobs } from '../common/knobs.js';
import { addWriteRoutes, badName } from './writes.js';

export interface AmsEmulatorOptions {
  azure: AzureBacking;
  /** Tenant the token endpoint answers for; any tenant when unset. */
  tenant?: string;
  clientId?: string;
  clientSecret?: string;
  /** The AAD resource tokens must be asked for. */
  resource?: string;
  tokenTtlMs?: number;
  /** How long a new locator takes to start working (AMS: 30–40 s). Default 0. */
  locatorDelayMs?: number;
  port?: number;
}

export const AMS_RESOURCE = 'https://rest.media.azure.net';

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'MERGE', 'PATCH'];

export class AmsEmulator {
  readonly catalog: Catalog;
  readonly signer = new Signer();
  readonly clientId: string;
  readonly clientSecret: string;
  readonly tenant: string;
  /** Lifetime of tokens issued from now on. */
  tokenTtlMs: number;
  /** Propagation delay of locators created from now on. */
  locatorDelayMs: number;
  /** When set, no locator created from now on lives longer than this (whatever its policy says). */
  urlTtlCapMs: number | undefined;
  /**
   * Hostile behaviour (common/knobs.ts): paging of a set (scope: the set's path, `Assets` or
   * `Assets('<id>')/Files`). Knobbed pages never carry `__next` (the server cut them without saying);
   * downloads are Azurite's (knob them on the fault proxy in front of it).
   */
  readonly knobs: EmulatorKnobs = newKnobs();
  private srv: EmulatorServer | undefined;

  constructor(private readonly opts: AmsEmulatorOptions) {
    this.catalog = new Catalog(opts.azure);
    this.clientId = opts.clientId ?? 'assetfs-client';
    this.clientSecret = opts.clientSecret ?? 'assetfs-secret';
    this.tenant = opts.tenant ?? 'assetfs-tenant';
    this.tokenTtlMs = opts.tokenTtlMs ?? 3_600_000;
    this.locatorDelayMs = opts.locatorDelayMs ?? 0;
  }

  get server(): EmulatorServer {
    if (!this.srv) throw new Error('AMS emulator not started');
    return this.srv;
  }
  get url(): string {
    return this.server.url;
  }
  /** The service root to configure as `restUrl`. */
  get apiUrl(): string {
    return `${this.url}/api/`;
  }
  get tokenUrl(): string {
    return `${this.url}/${this.tenant}/oauth2/token`;
  }

  /** A token as the token endpoint would issue it (for `token:` configs and raw HTTP in tests). */
  issueToken(ttlMs = this.tokenTtlMs): string {
    return this.signer.issue({ aud: this.opts.resource ?? AMS_RESOURCE, appid: this.clientId, tid: this.tenant }, ttlMs);
  }

  // --- seeding ---------------------------------------------------------------------------------------

  createAsset(name: string, opts: { options?: number; alternateId?: string } = {}): string {
    return this.catalog.createAsset(name, opts).Id;
  }
  /** Uploads bytes to Azurite and records the AssetFile; returns the file's Id. */
  async putFile(assetId: string, name: string, data: Buffer): Promise<string> {
    return (await this.catalog.putFile(assetId, name, data)).Id;
  }
  /** AssetFile records without bytes (listing tests). */
  seedFiles(assetId: string, names: readonly string[], size = 1): string[] {
    return this.catalog.seedFiles(assetId, names, size).map((f) => f.Id);
  }
  /** `n` empty assets named `<prefix>00000…` in the catalog; returns their Ids. */
  seedMany(n: number, prefix = 'bulk-'): string[] {
    const width = Math.max(5, String(n - 1).length);
    return Array.from({ length: n }, (_, i) => this.catalog.createAsset(`${prefix}${String(i).padStart(width, '0')}`).Id);
  }
  findAsset(name: string): string | undefined {
    return this.catalog.findAsset(name)?.Id;
  }

  // --- counters for tests ----------------------------------------------------------------------------

  /** Locators that exist (expired ones included until deleted), on one asset or on all. */
  liveLocators(assetId?: string): number {
    return this.catalog.locatorCount(assetId);
  }
  liveAccessPolicies(): number {
    return this.catalog.policies.size;
  }
  /** Locators whose SAS can write (upload locators), on all assets. */
  liveWriteLocators(): number {
    return [...this.catalog.locators.values()].filter((l) => l.permissions.includes('w')).length;
  }
  /** Access policies with the Write bit. */
  liveWritePolicies(): number {
    return [...this.catalog.policies.values()].filter((p) => (p.Permissions & 2) !== 0).length;
  }

  async start(): Promise<this> {
    this.srv = await startEmulatorServer({
      router: this.routes(),
      port: this.opts.port,
      knobs: this.knobs,
      errorBody: (_status, message, extra) => odataError(message, extra.verbose === true),
      expireTokens: () => this.signer.revokeAll(),
    });
    return this;
  }

  async close(): Promise<void> {
    await this.srv?.close();
  }

  // --- HTTP ------------------------------------------------------------------------------------------

  private routes(): Router {
    const r = new Router();
    const legacy = (c: Ctx) => {
      const host = c.req.headers.host ?? '127.0.0.1';
      sendEmpty(c.res, 301, { location: `http://${host}/api${c.url.pathname.slice('/API'.length) || '/'}${c.url.search}` });
    };
    for (const m of HTTP_METHODS) r.on(m, /^\/API(?:\/.*)?$/, legacy);
    r.on('POST', /^\/([^/]+)\/oauth2\/token$/, (c) => this.token(c));
    const key = "\\(([^/)]*)\\)";
    r.on('GET', /^\/api\/?$/, this.api((c, m) => sendJson(c.res, 200, m.verbose
      ? { d: { EntitySets: ['Assets', 'Files', 'AccessPolicies', 'Locators'] } }
      : { 'odata.metadata': `${m.root}$metadata`, value: ['Assets', 'Files', 'AccessPolicies', 'Locators'].map((n) => ({ name: n, url: n })) })));
    r.on('GET', /^\/api\/Assets\/?$/, this.api((c, m) => this.set(c, m, 'Assets', this.catalog.assetList.filter((a) => a.State !== 2), (a) => this.assetJson(a, m))));
    r.on('POST', /^\/api\/Assets\/?$/, this.api(async (c, m) => {
      const b = await c.json<{ Name?: string; AlternateId?: string; Options?: number }>();
      const why = b.Name === undefined ? undefined : badName(b.Name);
      if (why) throw bad(why, m);
      const a = this.catalog.createAsset(b.Name ?? '', { alternateId: b.AlternateId, options: Number(b.Options ?? 0) });
      sendEntity(c.res, 201, m, 'Assets', this.assetJson(a, m));
    }));
    r.on('GET', new RegExp(`^/api/Assets${key}/?$`), this.api((c, m) => sendEntity(c.res, 200, m, 'Assets', this.assetJson(this.assetOf(c, m), m))));
    r.on('GET', new RegExp(`^/api/Assets${key}/Files/?$`), this.api((c, m) => {
      const a = this.assetOf(c, m);
      this.set(c, m, `Assets('${a.Id}')/Files`, this.catalog.filesOf.get(a.Id) ?? [], (f) => this.fileJson(f, m), 'Files', (i) => virtualFile(a.Id, i));
    }));
    r.on('GET', new RegExp(`^/api/Assets${key}/Locators/?$`), this.api((c, m) => {
      const a = this.assetOf(c, m);
      this.set(c, m, `Assets('${a.Id}')/Locators`, [...this.catalog.locators.values()].filter((l) => l.AssetId === a.Id), (l) => this.locatorJson(l, m), 'Locators');
    }));
    r.on('GET', /^\/api\/Files\/?$/, this.api((c, m) => this.set(c, m, 'Files', [...this.catalog.files.values()], (f) => this.fileJson(f, m))));
    r.on('GET', new RegExp(`^/api/Files${key}/?$`), this.api((c, m) => {
      const f = this.catalog.files.get(this.keyOf(c, m, 'File'));
      if (!f) throw notFound('File', m);
      sendEntity(c.res, 200, m, 'Files', this.fileJson(f, m));
    }));
    r.on('GET', /^\/api\/AccessPolicies\/?$/, this.api((c, m) => this.set(c, m, 'AccessPolicies', [...this.catalog.policies.values()], (p) => this.policyJson(p, m))));
    r.on('POST', /^\/api\/AccessPolicies\/?$/, this.api(async (c, m) => {
      const b = await c.json<{ Name?: string; DurationInMinutes?: unknown; Permissions?: unknown }>();
      const minutes = Number(b.DurationInMinutes);
      const perms = Number(b.Permissions ?? 0);
      if (!Number.isFinite(minutes) || minutes <= 0) throw bad(`DurationInMinutes must be a positive Double, got ${JSON.stringify(b.DurationInMinutes)}`, m);
      if (!Number.isInteger(perms) || perms < 0 || perms > 15) throw bad(`Permissions must be a combination of 1, 2, 4 and 8`, m);
      sendEntity(c.res, 201, m, 'AccessPolicies', this.policyJson(this.catalog.addPolicy(b.Name ?? '', minutes, perms), m));
    }));
    r.on('DELETE', new RegExp(`^/api/AccessPolicies${key}/?$`), this.api((c, m) => {
      if (!this.catalog.policies.delete(this.keyOf(c, m, 'AccessPolicy'))) throw notFound('AccessPolicy', m);
      sendEmpty(c.res, 204);
    }));
    r.on('GET', /^\/api\/Locators\/?$/, this.api((c, m) => this.set(c, m, 'Locators', [...this.catalog.locators.values()], (l) => this.locatorJson(l, m))));
    r.on('POST', /^\/api\/Locators\/?$/, this.api((c, m) => this.createLocator(c, m)));
    r.on('GET', new RegExp(`^/api/Locators${key}/?$`), this.api((c, m) => {
      const l = this.catalog.locators.get(this.keyOf(c, m, 'Locator'));
      if (!l) throw notFound('Locator', m);
      sendEntity(c.res, 200, m, 'Locators', this.locatorJson(l, m));
    }));
    r.on('DELETE', new RegExp(`^/api/Locators${key}/?$`), this.api(async (c, m) => {
      if (!(await this.catalog.deleteLocator(this.keyOf(c, m, 'Locator')))) throw notFound('Locator', m);
      sendEmpty(c.res, 204);
    }));
    addWriteRoutes(r, { catalog: this.catalog, api: (fn) => this.api(fn), keyOf: (c, m, w) => this.keyOf(c, m, w), assetOf: (c, m) => this.assetOf(c, m) });
    return r;
  }

  /** Wraps a service-root route: bearer token, x-ms-version, and the answer mode from Accept. */
  private api(fn: (c: Ctx, m: Mode) => Promise<void> | void) {
    return async (c: Ctx): Promise<void> => {
      const m: Mode = { verbose: /odata=verbose/i.test(String(c.req.headers.accept ?? '')), root: `http://${c.req.headers.host ?? '127.0.0.1'}/api/` };
      const verdict = this.signer.verify(bearer(c.req.headers.authorization));
      if (!verdict.ok) {
        const why = verdict.reason === 'expired' ? 'The access token has expired' : 'Missing or invalid bearer access token';
        return sendError(c.res, 401, `Authentication failed. ${why}.`, m.verbose, { 'www-authenticate': 'Bearer' });
      }
      const version = header(c.req, 'x-ms-version');
      if (!version) return sendError(c.res, 400, 'The x-ms-version header is required (use 2.19).', m.verbose);
      if (!/^2\.\d+$/.test(version)) return sendError(c.res, 400, `Unsupported x-ms-version '${version}'.`, m.verbose);
      const maxDsv = Number(header(c.req, 'maxdataserviceversion')?.split(';')[0] ?? '3.0');
      if (!(maxDsv >= 3)) return sendError(c.res, 400, 'MaxDataServiceVersion must be 3.0 or later.', m.verbose);
      await fn(c, m);
    };
  }

  private set<T>(c: Ctx, m: Mode, path: string, all: readonly T[], json: (x: T) => Record<string, unknown>, setName = path, virtual?: (i: number) => T): void {
    let p: { items: T[]; next?: string };
    try {
      p = page(all, c.url, m, path);
    } catch (e) {
      throw bad((e as Error).message, m);
    }
    const knobs = virtual && pagingKnobsFor(this.knobs, path);
    if (knobs) {
      const skip = Number(c.url.searchParams.get('$skip') ?? 0);
      const top = Math.min(MAX_PAGE, Number(c.url.searchParams.get('$top') ?? MAX_PAGE));
      p = { items: knobPage(rowsOf(all), virtual, knobs, skip > 0 ? skip : undefined, top).rows };
    }
    sendSet(c.res, m, setName, p.items.map(json), p.next);
  }

  private keyOf(c: Ctx, m: Mode, what: string): string {
    const id = parseKey(c.params[0] ?? '');
    if (!id) throw bad(`Bad Request - Error in query syntax: ${what} key must be a quoted string like ('nb:cid:UUID:…').`, m);
    return id;
  }

  private assetOf(c: Ctx, m: Mode): AssetRec {
    const a = this.catalog.assets.get(this.keyOf(c, m, 'Asset'));
    if (!a || a.State === 2) throw notFound('Asset', m);
    return a;
  }

  private async createLocator(c: Ctx, m: Mode): Promise<void> {
    const b = await c.json<{ AccessPolicyId?: string; AssetId?: string; StartTime?: unknown; Type?: unknown }>();
    const a = b.AssetId ? this.catalog.assets.get(b.AssetId) : undefined;
    if (!a || a.State === 2) throw notFound('Asset', m);
    const p = b.AccessPolicyId ? this.catalog.policies.get(b.AccessPolicyId) : undefined;
    if (!p) throw notFound('AccessPolicy', m);
    const type = Number(b.Type ?? 1);
    if (type === 2) throw bad('OnDemandOrigin locators (Type 2) are not available in this emulator.', m);
    if (type !== 1) throw bad(`Invalid locator Type ${JSON.stringify(b.Type)}.`, m);
    // GUESS: the "asset with files" rule is about reading; upload locators (Write bit) go on empty assets.
    if ((p.Permissions & 2) === 0 && !(this.catalog.filesOf.get(a.Id)?.length)) throw bad(`A SAS locator can only be created for an asset with files; asset ${a.Id} has none.`, m);
    const now = Date.now();
    const start = b.StartTime === undefined || b.StartTime === null ? now : parseDate(b.StartTime);
    if (start === undefined) throw bad(`Invalid StartTime ${JSON.stringify(b.StartTime)}.`, m);
    let expiry = start + p.DurationInMinutes * 60_000;
    if (this.urlTtlCapMs !== undefined) expiry = Math.min(expiry, now + this.urlTtlCapMs);
    const l = await this.catalog.addLocator(a, p, start, expiry, this.locatorDelayMs);
    if (l === 'limit') {
      throw bad(`Locator limit exceeded: an asset can have at most ${MAX_LOCATORS_PER_ASSET} locators at a time, and asset ${a.Id} has ${MAX_LOCATORS_PER_ASSET}. Delete one first.`, m);
    }
    sendEntity(c.res, 201, m, 'Locators', this.locatorJson(l, m));
  }

  /** Azure AD v1 client-credentials grant. Its errors are AAD's, not OData's. */
  private async token(c: Ctx): Promise<void> {
    const form = new URLSearchParams((await c.body()).toString('utf8'));
    const aad = (status: number, error: string, description: string) =>
      sendJson(c.res, status, { error, error_description: description, error_codes: [], timestamp: new Date().toISOString() });
    if (this.opts.tenant && c.params[0] !== this.opts.tenant) return aad(400, 'invalid_request', `AADSTS90002: Tenant '${c.params[0]}' not found.`);
    if (form.get('grant_type') !== 'client_credentials') return aad(400, 'unsupported_grant_type', 'AADSTS70003: The app requested an unsupported grant type.');
    if (form.get('client_id') !== this.clientId || form.get('client_secret') !== this.clientSecret) {
      return aad(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided, or unknown application.');
    }
    const resource = this.opts.resource ?? AMS_RESOURCE;
    if (form.get('resource') !== resource) return aad(400, 'invalid_resource', `AADSTS500011: The resource principal named ${form.get('resource')} was not found.`);
    const ttl = this.tokenTtlMs;
    const now = Math.floor(Date.now() / 1000);
    // AAD v1 writes the numbers as strings.
    sendJson(c.res, 200, {
      token_type: 'Bearer', expires_in: String(Math.max(1, Math.floor(ttl / 1000))), ext_expires_in: String(Math.max(1, Math.floor(ttl / 1000))),
      expires_on: String(now + Math.floor(ttl / 1000)), not_before: String(now), resource, access_token: this.issueToken(ttl),
    });
  }

  // --- entity JSON -----------------------------------------------------------------------------------

  private assetJson(a: AssetRec, m: Mode): Record<string, unknown> {
    return entity(m, 'Assets', 'Asset', a.Id, {
      Id: a.Id, State: a.State, Created: fmtDate(a.Created, m), LastModified: fmtDate(a.LastModified, m), AlternateId: a.AlternateId, Name: a.Name,
      Options: a.Options, FormatOption: a.FormatOption, Uri: `${this.catalog.publicBase}/${a.container}`, StorageAccountName: 'devstoreaccount1',
    }, ['Locators', 'Files', 'ContentKeys', 'ParentAssets']);
  }

  private fileJson(f: FileRec, m: Mode): Record<string, unknown> {
    return entity(m, 'Files', 'AssetFile', f.Id, {
      Id: f.Id, Name: f.Name, ContentFileSize: String(f.ContentFileSize), ParentAssetId: f.ParentAssetId, EncryptionVersion: f.IsEncrypted ? '1.0' : null,
      EncryptionScheme: f.EncryptionScheme, IsEncrypted: f.IsEncrypted, EncryptionKeyId: null, InitializationVector: null, IsPrimary: f.IsPrimary,
      LastModified: fmtDate(f.LastModified, m), Created: fmtDate(f.Created, m), MimeType: f.MimeType, ContentChecksum: f.ContentChecksum,
    });
  }

  private policyJson(p: PolicyRec, m: Mode): Record<string, unknown> {
    return entity(m, 'AccessPolicies', 'AccessPolicy', p.Id, {
      Id: p.Id, Created: fmtDate(p.Created, m), LastModified: fmtDate(p.Created, m), Name: p.Name, DurationInMinutes: p.DurationInMinutes, Permissions: p.Permissions,
    });
  }

  private locatorJson(l: LocatorRec, m: Mode): Record<string, unknown> {
    return entity(m, 'Locators', 'Locator', l.Id, {
      Id: l.Id, ExpirationDateTime: fmtDate(l.ExpirationDateTime, m), Type: l.Type, Path: `${l.BaseUri}${l.ContentAccessComponent}`, BaseUri: l.BaseUri,
      ContentAccessComponent: l.ContentAccessComponent, AccessPolicyId: l.AccessPolicyId, AssetId: l.AssetId, StartTime: fmtDate(l.StartTime, m), Name: '',
    }, ['AccessPolicy', 'Asset']);
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** File `i` of a generated listing (paging knobs): one byte, no blob behind it. */
function virtualFile(assetId: string, i: number): FileRec {
  return {
    Id: `nb:cid:UUID:00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, Name: virtualName(i, '.bin'), ContentFileSize: 1, ParentAssetId: assetId,
    IsPrimary: false, MimeType: 'application/octet-stream', IsEncrypted: false, EncryptionScheme: null, Created: VIRTUAL_MTIME_MS, LastModified: VIRTUAL_MTIME_MS, ContentChecksum: null,
  };
}

const bad = (message: string, m: Mode) => new HttpError(400, message, { verbose: m.verbose });
const notFound = (what: string, m: Mode) => new HttpError(404, `Resource ${what} not found`, { verbose: m.verbose });

export async function startAmsEmulator(opts: AmsEmulatorOptions): Promise<AmsEmulator> {
  return new AmsEmulator(opts).start();
}
