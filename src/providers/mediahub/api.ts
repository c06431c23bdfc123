/**
 * The MediaHub API as the provider and its uploader (upload.ts) use it: an OAuth2 client-credentials
 * session, the flat paged file listing, one file, and download links. Tolerant of the answers
 * docs/providers.md#mediahub marks as guesses: `expires_in` as string or number, `{file}` wrapped or bare, `{url}`,
 * `{urls}` or a 302 Location, `total` present or not.
 *
 * Invariants:
 *  - MediaHub answers an expired token with 403 (error_code 0x0000003), not 401: ApiClient re-authenticates
 *    once on 401/403 and on any answer carrying 0x0000003.
 *  - A listing pass (common/paging.ts) advances `start` by the records received, never by the `limit`
 *    asked (a server may cap pages below it), and ends on an empty page or once the stated `total`
 *    arrived, never on a short page. It yields each file id once even when the catalog shifts between
 *    pages by less than a page (offset paging).
 *  - Secrets go only into the token form body; messages carry redacted paths only.
 */
import type { NetBounds } from '../../transports/bounds.js';
import { ApiClient, TokenSession, errorMessage, type ApiMeter } from '../common/api-client.js';
import { pagedList, type ListingLimits } from '../common/paging.js';
import { silentLogger, type Logger } from '../../util/logger.js';
import { AuthError, FsError, NotFoundError, TransientError } from '../../core/errors.js';
import type { SourceConfigOf } from '../../config/schema.js';

export const INVALID_TOKEN = '0x0000003';
export const FILE_NOT_FOUND = '0x0230002';
/** The listing's largest page (docs/providers.md#mediahub: limit may be at most 5000). */
export const MAX_PAGE = 5000;

export interface MhItem {
  name?: string;
  size?: number | string;
  object_key?: string | null;
  etag?: string;
  md5?: string;
}

/** A file record; every field but `id` may be missing or differently typed on a real platform. */
export interface MhFile {
  id: string;
  name?: string;
  title?: string;
  type?: string;
  size?: number | string;
  size_on_disk?: number | string;
  created_at?: string | number;
  updated_at?: string | number;
  object_key?: string | null;
  pipeline?: { id?: string } | null;
  etag?: string;
  md5?: string;
  status?: string;
  mime_type?: string | null;
  items?: MhItem[];
}

interface Page {
  files?: MhFile[];
  total?: number | string;
}

/** Epoch ms of a MediaHub time: ISO string, epoch seconds or epoch ms (number or digits). */
export function timeMs(v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v < 1e11 ? v * 1000 : v;
  if (typeof v === 'string' && v) {
    if (/^\d+(\.\d+)?$/.test(v)) return timeMs(Number(v));
    const t = Date.parse(v);
    return Number.isNaN(t) ? 0 : t;
  }
  return 0;
}

export function num(v: unknown): number {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : 0;
}

function errorCodeOf(text: string): string | undefined {
  try {
    const c = (JSON.parse(text) as { error?: { error_code?: unknown } }).error?.error_code;
    return typeof c === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}

export class MediahubApi {
  readonly http: ApiClient;
  readonly session: TokenSession;

  constructor(
    private readonly cfg: SourceConfigOf<'mediahub'>,
    opts: { timeoutMs?: number; bounds?: NetBounds; meter?: ApiMeter } = {},
  ) {
    const what = `mediahub source "${cfg.name}"`;
    // The token call goes through its own client: no auth, and a 4xx there means the credentials are bad.
    const login = new ApiClient({ baseUrl: cfg.baseUrl, what, timeoutMs: opts.timeoutMs, bounds: opts.bounds, meter: opts.meter });
    this.session = new TokenSession(
      async (signal) => {
        const r = await login.json<{ access_token?: string; expires_in?: string | number; token?: { access_token?: string; expires_in?: string | number } }>({
          method: 'POST', path: 'oauth2/token/', login: true, signal,
          form: { grant_type: 'client_credential', client_id: cfg.clientId, client_secret: cfg.clientSecret, scope: cfg.scope },
        });
        const t = r?.access_token ?? r?.token?.access_token;
        if (!t) throw new AuthError(`${what}: the token answer carries no access_token`);
        const secs = Number(r?.expires_in ?? r?.token?.expires_in);
        return { token: t, expiresInMs: Number.isFinite(secs) && secs > 0 ? secs * 1000 : undefined };
      },
      (token) => ({ authorization: `Bearer ${token}` }),
    );
    this.http = new ApiClient({
      baseUrl: cfg.baseUrl,
      what,
      auth: this.session,
      timeoutMs: opts.timeoutMs,
      bounds: opts.bounds,
      meter: opts.meter,
      isAuthFailure: (_status, text) => errorCodeOf(text) === INVALID_TOKEN,
    });
    this.closeLogin = () => login.close();
  }

  private readonly closeLogin: () => Promise<void>;

  /** One page of the flat listing (of one pipeline, when given), oldest first (stable order for offset paging). */
  async listPage(start: number, limit: number, signal?: AbortSignal, pipeline?: string): Promise<{ files: MhFile[]; total: number | undefined; rows: number }> {
    const page = await this.http.json<Page>({
      path: 'files/', signal,
      query: { start, limit, type: 'file,folder,archive', sort: 'created_at', direction: 1, 'pipeline.id': pipeline },
    });
    const total = page?.total === undefined ? undefined : Number(page.total);
    const rows = Array.isArray(page?.files) ? page.files : [];
    return { files: rows.filter((f) => f && typeof f.id === 'string'), total: Number.isFinite(total) ? total : undefined, rows: rows.length };
  }

  /** Every record, paging by start/limit, each id once (see the invariant above). */
  listAll(pageSize: number, signal?: AbortSignal, pipeline?: string, bounds?: { log: Logger; limits?: ListingLimits }): AsyncIterable<MhFile> {
    const limit = Math.max(1, Math.min(MAX_PAGE, Math.floor(pageSize)));
    return pagedList<MhFile, number>({
      what: `mediahub source "${this.cfg.name}": ${pipeline ? `files of pipeline ${pipeline}` : 'the file catalog'}`,
      log: bounds?.log ?? silentLogger,
      limits: bounds?.limits,
      first: 0,
      key: (f) => f.id,
      offsets: { at: (start) => start, offsetOf: (start) => start },
      fetch: async (start) => {
        const { files, total, rows } = await this.listPage(start, limit, signal, pipeline);
        return { items: files, total, next: rows > 0 ? start + rows : undefined };
      },
    });
  }

  /** GET /files/{id}; NotFoundError for 404 and for 0x0230002 under any status. */
  async getFile(id: string, signal?: AbortSignal): Promise<MhFile> {
    const r = await this.http.send({ path: `files/${encodeURIComponent(id)}`, signal, accept: [400] });
    if (r.status === 400) {
      const msg = `mediahub source "${this.cfg.name}": GET files/${id}: ${errorMessage(r.text)}`;
      throw errorCodeOf(r.text) === FILE_NOT_FOUND ? new NotFoundError(msg) : new FsError('EIO', msg);
    }
    let body: { file?: MhFile } & Partial<MhFile>;
    try {
      body = JSON.parse(r.text);
    } catch {
      throw new TransientError(`mediahub source "${this.cfg.name}": GET files/${id}: answer is not JSON`);
    }
    const f = body.file ?? (body as MhFile);
    if (!f || typeof f.id !== 'string') throw new NotFoundError(`mediahub source "${this.cfg.name}": file ${id} not found`);
    return f;
  }

  /**
   * Download URLs of a file (one) or an archive (one per item), valid until `expirySec` (epoch s).
   * With `redirect`, the platform answers 302 and the URL is its Location; a 302 is accepted either way.
   */
  async downloadUrls(id: string, expirySec: number, opts: { redirect?: boolean; signal?: AbortSignal } = {}): Promise<string[]> {
    const r = await this.http.send({
      path: 'files/downloads', signal: opts.signal, accept: [301, 302, 303, 307],
      query: { file_id: id, expiry_time: expirySec, redirect: opts.redirect ? 'true' : undefined },
    });
    if (r.status >= 300) {
      const loc = r.headers.location;
      const url = Array.isArray(loc) ? loc[0] : loc;
      if (!url) throw new TransientError(`mediahub source "${this.cfg.name}": download of ${id}: redirect without Location`, { status: r.status });
      return [new URL(url, this.http.url('files/downloads')).href];
    }
    let body: { url?: unknown; urls?: unknown; download_url?: unknown };
    try {
      body = JSON.parse(r.text);
    } catch {
      throw new TransientError(`mediahub source "${this.cfg.name}": download of ${id}: answer is not JSON`);
    }
    const urls = Array.isArray(body.urls) ? body.urls : [body.url ?? body.download_url];
    const out = urls.map((u) => (typeof u === 'string' ? u : (u as { url?: unknown } | null)?.url)).filter((u): u is string => typeof u === 'string' && u.length > 0);
    if (!out.length) throw new TransientError(`mediahub source "${this.cfg.name}": download of ${id}: no URL in the answer`);
    return out;
  }

  async close(): Promise<void> {
    await Promise.all([this.http.close(), this.closeLogin()]);
  }
}
