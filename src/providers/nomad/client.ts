/**
 * The Nomad admin API as the provider and its uploader use it: a bearer session and the calls for
 * search, asset and detail, the multipart upload and the catalog edits (docs/providers.md#nomad).
 *
 * Invariants:
 *  - One login at a time (TokenSession). A login uses the refresh token first when one is held; a
 *    refused refresh (any non-transient error) falls back to user name + password. Both rotate the
 *    refresh token and keep the userSessionId.
 *  - An expired token is refused with 401 by the docs and 403 per the SDK: ApiClient re-authenticates
 *    once on either, then the call fails as AuthError.
 *  - A refused password login is an AuthError naming the user, never the password.
 *  - Paging (common/paging.ts) uses page indexes (`pageOffset` from 0) and stops on an empty page,
 *    `hasItems: false`, or once `totalItemCount` items were seen; `nextPageOffset` is not trusted to be
 *    null at the end (the docs' example shows it set on the last page). A page shorter than asked is
 *    not the end: the server capped `pageSize`, and since it may count `pageOffset` in pages of the size
 *    asked (skipping what the cap cut off), later pages ask for the size it answered, at the page index
 *    that starts at or before the next unseen item. Ids repeated by that overlap are dropped.
 */
import { ApiClient, TokenSession, type ApiMeter } from '../common/api-client.js';
import { pagedList, type ListingLimits } from '../common/paging.js';
import { AuthError, FsError, TransientError } from '../../core/errors.js';
import type { Logger } from '../../util/logger.js';
import type { NetBounds } from '../../transports/bounds.js';

export interface NomadClientConfig {
  /** Names the source in messages. */
  name: string;
  /** Service URL, with or without the trailing `/api`. */
  baseUrl: string;
  username: string;
  password: string;
  applicationId?: string;
}

interface LoginAnswer {
  token?: string;
  refreshToken?: string;
  expirationSeconds?: number;
  id?: string;
  userSessionId?: string;
  loginStatus?: unknown;
}

export interface SearchFilter {
  fieldName: string;
  operator: string;
  values: string | string[];
}

/** One search hit; only `id` is certain, the rest depends on the requested fields. */
export interface SearchItem {
  id: string;
  title?: string;
  createdDate?: string;
  lastModifiedDate?: string;
  identifiers?: Record<string, unknown>;
  [k: string]: unknown;
}

interface SearchPage {
  items?: SearchItem[];
  totalItemCount?: number;
  nextPageOffset?: number | string | null;
  hasItems?: boolean;
}

/** `GET /api/admin/asset/{id}` (documented fields, and the ones the emulator adds; all optional). */
export interface NomadAsset {
  id?: string;
  parentId?: string | null;
  displayName?: string;
  bucketName?: string;
  objectKey?: string | null;
  fullUrl?: string | null;
  assetStatus?: string | null;
  assetType?: string;
  contentLength?: number | string | null;
  eTag?: string | null;
  etag?: string | null;
  createdDate?: string;
  lastModifiedDate?: string;
  displayDate?: string;
  [k: string]: unknown;
}

export interface NomadAssetDetail {
  assetId?: string;
  assetStats?: { totalContentLength?: number | string; lastModifiedDate?: string; [k: string]: unknown };
  properties?: Record<string, unknown>;
  [k: string]: unknown;
}

/** One part of an upload session as `upload/start` (and the GUESSed upload query) describe it. */
export interface NomadUploadPart {
  id: string;
  url: string;
  partNumber: number;
  startingPosition: number;
  /** Inclusive (a guess: docs/providers.md#nomad). */
  endingPosition: number;
  isCompleted?: boolean;
  /** GUESS: not in the documented part shape; the emulator sends it for completed parts. */
  etag?: string | null;
}

export interface NomadUploadSession {
  id: string;
  assetId?: string;
  contentLength?: number;
  parts?: NomadUploadPart[];
  [k: string]: unknown;
}

export interface NomadUploadStart {
  displayName: string;
  relativePath: string;
  parentId: string;
  contentLength: number;
  chunkSize: number;
  uploadOverwriteOption: 'Cancel' | 'Continue' | 'Replace' | 'AssetReplace';
  existingAssetId: string | null;
  languageId: string | null;
}

/** Fields a listing asks for: enough for name, kind, size, time, version and readability. */
export const LIST_FIELDS = [
  'id', 'title', 'createdDate', 'lastModifiedDate', 'identifiers.name', 'identifiers.displayName',
  'identifiers.assetTypeDisplay', 'identifiers.contentLength', 'identifiers.displayPath',
  'identifiers.assetStatus', 'identifiers.eTag',
];

export class NomadClient {
  readonly api: ApiClient;
  readonly session: TokenSession;
  private refreshToken: string | undefined;
  /** The current user session (for ping/logout); set by every login. */
  userSessionId: string | undefined;
  userId: string | undefined;
  /** How often each kind of login happened (status output, tests). */
  readonly logins = { password: 0, refresh: 0 };

  constructor(
    private readonly cfg: NomadClientConfig,
    private readonly log: Logger,
    bounds?: NetBounds,
    meter?: ApiMeter,
  ) {
    const base = cfg.baseUrl.replace(/\/+$/, '');
    this.session = new TokenSession((signal) => this.login(signal), (t) => ({ authorization: `Bearer ${t}` }));
    this.api = new ApiClient({ baseUrl: /\/api$/.test(base) ? base : `${base}/api`, what: `nomad source "${cfg.name}"`, auth: this.session, bounds, meter });
  }

  private async login(signal?: AbortSignal): Promise<{ token: string; expiresInMs?: number }> {
    if (this.refreshToken) {
      try {
        const a = await this.api.json<LoginAnswer>({ method: 'POST', path: 'account/refresh-token', json: { refreshToken: this.refreshToken }, auth: false, signal });
        this.logins.refresh++;
        return this.accept(a, 'refresh-token');
      } catch (e) {
        if (e instanceof TransientError || !(e instanceof FsError)) throw e;
        this.log.info({ source: this.cfg.name }, 'nomad: refresh token refused, logging in again');
        this.refreshToken = undefined;
      }
    }
    // The admin API answers bad credentials with 404 (or 400/401/403): `login` makes each an AuthError.
    const a = await this.api.json<LoginAnswer>({
      method: 'POST',
      path: 'account/login',
      json: { userName: this.cfg.username, password: this.cfg.password, applicationId: this.cfg.applicationId },
      login: `user "${this.cfg.username}"`,
      signal,
    });
    this.logins.password++;
    return this.accept(a, 'login');
  }

  private accept(a: LoginAnswer | undefined, what: string): { token: string; expiresInMs?: number } {
    if (!a?.token) throw new AuthError(`nomad source "${this.cfg.name}": ${what} answered without a token${a?.loginStatus ? ` (loginStatus ${String(a.loginStatus)})` : ''}`);
    this.refreshToken = a.refreshToken ?? this.refreshToken;
    this.userSessionId = a.userSessionId ?? this.userSessionId;
    this.userId = a.id ?? this.userId;
    const secs = Number(a.expirationSeconds);
    return { token: a.token, expiresInMs: Number.isFinite(secs) && secs > 0 ? secs * 1000 : undefined };
  }

  /** One search page. */
  search(body: { filters: SearchFilter[]; pageOffset: number; pageSize: number; sortFields?: unknown[]; searchResultFields?: unknown[] }, signal?: AbortSignal): Promise<SearchPage> {
    return this.api.json<SearchPage>({ method: 'POST', path: 'admin/search', json: body, signal });
  }

  /** Every hit of `filters`, page by page (see the paging invariant above). */
  searchAll(
    filters: SearchFilter[],
    pageSize: number,
    fields: string[] = LIST_FIELDS,
    signal?: AbortSignal,
    bounds?: { what: string; limits?: ListingLimits },
  ): AsyncIterable<SearchItem> {
    type At = { page: number; size: number; rows: number };
    return pagedList<SearchItem, At>({
      what: `nomad ${this.cfg.name}: ${bounds?.what ?? 'search'}`,
      log: this.log,
      limits: bounds?.limits,
      first: { page: 0, size: Math.max(1, Math.floor(pageSize)), rows: 0 },
      key: (it) => it.id,
      // Pages are numbered in pages of the size asked: a page of `size` rows at row `offset` is page offset/size.
      offsets: { at: (offset, size) => ({ page: Math.floor(offset / size), size, rows: offset }), offsetOf: (at) => at.rows },
      fetch: async (at) => {
        const res = await this.search(
          { filters, pageOffset: at.page, pageSize: at.size, sortFields: [{ fieldName: 'title', sortType: 'Ascending' }], searchResultFields: fields.map((name) => ({ name })) },
          signal,
        );
        const got = Array.isArray(res?.items) ? res.items : [];
        const items = got.filter((it): it is SearchItem => typeof it?.id === 'string');
        const total = Number(res?.totalItemCount);
        if (got.length === 0 || res?.hasItems === false) return { items, total: Number.isFinite(total) ? total : undefined };
        const size = Math.min(at.size, got.length);
        const rows = at.page * at.size + got.length;
        return { items, total: Number.isFinite(total) ? total : undefined, next: { page: Math.floor(rows / size), size, rows } };
      },
    });
  }

  getAsset(id: string, signal?: AbortSignal): Promise<NomadAsset> {
    return this.api.json<NomadAsset>({ path: `admin/asset/${encodeURIComponent(id)}`, signal });
  }

  getDetail(id: string, signal?: AbortSignal): Promise<NomadAssetDetail> {
    return this.api.json<NomadAssetDetail>({ path: `admin/asset/${encodeURIComponent(id)}/detail`, signal });
  }

  startUpload(body: NomadUploadStart, signal?: AbortSignal): Promise<NomadUploadSession> {
    return this.api.json<NomadUploadSession>({ method: 'POST', path: 'asset/upload/start', json: body, signal });
  }

  /**
   * PUT one part to its presigned storage URL: bare (the URL is the credential, and it is another
   * origin), bounded like every API call; every status is returned for the uploader to judge.
   */
  async putPart(url: string, data: Buffer, signal?: AbortSignal): Promise<{ status: number; etag: string | undefined; text: string }> {
    const r = await this.api.send({ method: 'PUT', path: url, body: data, auth: false, accept: 'any', headers: { accept: '*/*' }, signal });
    const etag = r.headers.etag;
    return { status: r.status, etag: Array.isArray(etag) ? etag[0] : etag, text: r.text };
  }

  /** GUESS (undocumented): the session again, with fresh part URLs and the parts' isCompleted. */
  getUpload(uploadId: string, signal?: AbortSignal): Promise<NomadUploadSession> {
    return this.api.json<NomadUploadSession>({ path: `asset/upload/${encodeURIComponent(uploadId)}`, signal });
  }

  completePart(partId: string, etag: string, signal?: AbortSignal): Promise<unknown> {
    return this.api.json({ method: 'POST', path: `asset/upload/part/${encodeURIComponent(partId)}/complete`, json: { etag }, signal });
  }

  completeUpload(uploadId: string, signal?: AbortSignal): Promise<{ items?: { id?: string }[]; totalItemCount?: number } | undefined> {
    return this.api.json({ method: 'POST', path: `asset/upload/${encodeURIComponent(uploadId)}/complete`, json: {}, signal });
  }

  cancelUpload(uploadId: string, message: string, signal?: AbortSignal): Promise<unknown> {
    return this.api.json({ method: 'POST', path: `asset/upload/${encodeURIComponent(uploadId)}/cancel`, query: { message }, json: {}, signal });
  }

  createFolder(parentId: string, displayName: string, signal?: AbortSignal): Promise<{ id?: string } | undefined> {
    return this.api.json({ method: 'POST', path: `admin/asset/${encodeURIComponent(parentId)}/create-folder`, json: { displayName }, signal });
  }

  renameAsset(id: string, displayName: string, signal?: AbortSignal): Promise<unknown> {
    return this.api.json({ method: 'PATCH', path: `admin/asset/${encodeURIComponent(id)}`, json: { displayName }, signal });
  }

  moveAsset(id: string, destinationFolderAssetId: string, name: string | null, signal?: AbortSignal): Promise<unknown> {
    return this.api.json({
      method: 'POST',
      path: `admin/asset/${encodeURIComponent(id)}/move`,
      json: { targetIds: [id], actionArguments: { destinationFolderAssetId, name }, batchAction: null, contentDefinitionId: null, schemaName: null, userId: this.userId ?? null, resolverExempt: false },
      signal,
    });
  }

  /** Deletes an asset; a folder goes with everything below it. */
  deleteAsset(id: string, signal?: AbortSignal): Promise<unknown> {
    return this.api.json({ method: 'DELETE', path: `admin/asset/${encodeURIComponent(id)}`, signal });
  }

  /** Keeps the user session alive (POST /api/account/ping). */
  async ping(signal?: AbortSignal): Promise<unknown> {
    await this.session.current(signal);
    return this.api.json({ method: 'POST', path: 'account/ping', json: { applicationId: this.cfg.applicationId, userSessionId: this.userSessionId }, signal });
  }

  async close(): Promise<void> {
    await this.api.close();
  }
}
