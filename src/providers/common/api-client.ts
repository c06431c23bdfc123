/**
 * JSON-over-HTTP calls to a platform API (undici pool), shared by the media-platform providers.
 *
 * Invariants:
 *  - A refused token (401/403, or whatever `isAuthFailure` recognises, e.g. Wordbee's 400 "Token invalid")
 *    re-authenticates once and retries once; refused again, it is an AuthError ("login refused").
 *  - A login call (`login` set) answered with a 4xx other than 408/429 is an AuthError "login refused",
 *    whatever the status: a wrong key (Wordbee's 400) and a wrong base URL (404) must never look like a
 *    missing file (ENOENT) to a reader.
 *  - A network fault's message says why (util/error-text.ts: undici's and Node's errors often have an
 *    empty message or keep the reason in `cause`/`errors`) and keeps the fault as its cause.
 *  - Status → error as the read path expects (core/types.ts): 404/410 NotFoundError; 408/429/5xx and
 *    network faults TransientError (with Retry-After); other 4xx FsError EIO with the platform's message.
 *  - Retries of transient faults belong to the caller's retry (util/retry.ts) (dir cache, block source), not here.
 *  - Messages never carry tokens or signed query strings (redactText on everything from the server).
 *  - Credentials (the Authenticator's headers, `defaultHeaders`) go only to the origin of `baseUrl`. An
 *    absolute URL handed back by a server (a nextLink, an upload URL) at another origin is refused when
 *    the call would carry them (`auth: false` calls go bare). Redirects are never followed: a 3xx the
 *    caller did not `accept` is an error naming where it pointed. The base URL never moves.
 *  - Bounded (transports/bounds.ts): connect, headers and body pauses by `stallMs`, the whole call by
 *    its deadline, and an answer larger than `maxApiBodyBytes` fails (its declared length is checked
 *    before a byte is read; a body without one is cut off at the cap).
 */
import { Agent, type Dispatcher } from 'undici';
import { AuthError, FsError, NotFoundError, TransientError, isAbort } from '../../core/errors.js';
import { parseRetryAfter } from '../../transports/http.js';
import { redactText, redactUrl } from '../../util/redact.js';
import { DEFAULT_BOUNDS, Deadline, deadlineFor, type NetBounds } from '../../transports/bounds.js';
import { REDIRECT_STATUSES, crossOriginMessage } from '../../transports/origins.js';
import { describeError } from '../../util/error-text.js';
import { ExpiringCredential } from './expiring.js';

/** A token's life when the login answer does not say (OAuth servers mostly hand out an hour). */
const DEFAULT_TOKEN_LIFE_MS = 3_600_000;

/** Supplies credentials for API calls. */
export interface Authenticator {
  /** Headers carrying a current token; logs in first when there is none. */
  headers(signal?: AbortSignal): Promise<Record<string, string>>;
  /** The token was refused: forget it, so the next headers() logs in again. */
  invalidate(): void;
}

export interface ApiRequest {
  method?: string;
  /** Relative to the base URL (no leading slash needed), or an absolute URL. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  form?: Record<string, string>;
  /** A multipart/form-data body (the global FormData; encoded once per attempt, boundary and type together). */
  multipart?: FormData;
  /** A raw body (file bytes); its content-type goes in `headers`. */
  body?: Buffer;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Non-2xx statuses that are answers, not errors (e.g. 302 of a download link); 'any' for all. */
  accept?: number[] | 'any';
  /** false for the login call itself. Default true. */
  auth?: boolean;
  /**
   * This is a login (implies `auth: false`): a refusal is an AuthError "login refused". A string names
   * who logs in (`user "u"`; never a secret).
   */
  login?: true | string;
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/** Counts requests to the platform (assetfs_origin_requests_total{kind="api"}; metrics/metrics.ts). */
export interface ApiMeter {
  request(kind: 'api', e?: unknown, status?: number): void;
}

export interface ApiClientOptions {
  baseUrl: string;
  /** Names the source in messages. */
  what: string;
  auth?: Authenticator;
  /** Extra test for "the token was refused", beside 401/403. */
  isAuthFailure?: (status: number, text: string) => boolean;
  /** Headers on every call to the base URL's origin (and only there: they may be credentials). */
  defaultHeaders?: Record<string, string>;
  /** Timeouts, deadline and answer cap (retry.* in the config). Default DEFAULT_BOUNDS. */
  bounds?: NetBounds;
  /** Overrides bounds.stallMs. */
  timeoutMs?: number;
  meter?: ApiMeter;
}

const header = (h: ApiResponse['headers'], n: string) => {
  const v = h[n];
  return Array.isArray(v) ? v[0] : v;
};

/** The human part of a platform error body (the shapes in docs/providers.md), redacted and short. */
export function errorMessage(text: string): string {
  let msg = text;
  try {
    const j = JSON.parse(text) as Record<string, any>;
    const e = j.error ?? j['odata.error'] ?? j;
    msg = [e?.message?.value, e?.message, e?.detail, e?.title, e?.error_message, e?.details, j.title, j.detail, j.reason]
      .find((v) => typeof v === 'string' && v.length > 0) ?? text;
  } catch {
    /* not JSON: XML or text */
    const m = /<Message>([^<]*)<\/Message>/.exec(text);
    if (m) msg = m[1]!;
  }
  return redactText(msg).replace(/\s+/g, ' ').slice(0, 300);
}

export class ApiClient {
  private readonly agent: Agent;
  private readonly base: URL;
  private readonly bounds: NetBounds;

  constructor(private readonly opts: ApiClientOptions) {
    this.base = new URL(opts.baseUrl.endsWith('/') ? opts.baseUrl : `${opts.baseUrl}/`);
    const b = opts.bounds ?? DEFAULT_BOUNDS;
    this.bounds = { ...b, stallMs: opts.timeoutMs ?? b.stallMs };
    const t = this.bounds.stallMs;
    this.agent = new Agent({ connections: 16, headersTimeout: t, bodyTimeout: t, keepAliveTimeout: 10_000, connect: { timeout: t } });
  }

  /** The origin credentials go to. */
  get origin(): string {
    return this.base.origin;
  }

  url(path: string, query?: ApiRequest['query']): URL {
    const u = new URL(path.replace(/^\//, ''), this.base);
    if (/^https?:\/\//.test(path)) u.href = path;
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  async json<T>(req: ApiRequest): Promise<T> {
    const r = await this.send(req);
    if (!r.text) return undefined as T;
    try {
      return JSON.parse(r.text) as T;
    } catch {
      throw new TransientError(`${this.opts.what}: ${req.method ?? 'GET'} ${req.path}: answer is not JSON`, { status: r.status });
    }
  }

  async send(req: ApiRequest): Promise<ApiResponse> {
    const useAuth = req.auth !== false && !req.login && this.opts.auth !== undefined;
    let r = await this.once(req, useAuth);
    if (useAuth && this.refused(r)) {
      this.opts.auth!.invalidate();
      r = await this.once(req, true);
      if (this.refused(r)) throw new AuthError(`${this.opts.what}: login refused: HTTP ${r.status}: ${errorMessage(r.text)} (${req.method ?? 'GET'} ${redactUrl(req.path)})`, { status: r.status });
    }
    if ((r.status >= 200 && r.status < 300) || req.accept === 'any' || req.accept?.includes(r.status)) return r;
    if (req.login && r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
      const who = typeof req.login === 'string' ? ` (${req.login})` : '';
      throw new AuthError(`${this.opts.what}: login refused${who}: HTTP ${r.status}: ${errorMessage(r.text)} (${req.method ?? 'GET'} ${this.url(req.path).href.replace(/\?.*$/, '')})`);
    }
    throw this.statusError(req, r);
  }

  private refused(r: ApiResponse): boolean {
    return r.status === 401 || r.status === 403 || (this.opts.isAuthFailure?.(r.status, r.text) ?? false);
  }

  private what(req: ApiRequest): string {
    return `${this.opts.what}: ${req.method ?? 'GET'} ${redactUrl(req.path)}`;
  }

  private statusError(req: ApiRequest, r: ApiResponse): FsError {
    if (REDIRECT_STATUSES.has(r.status)) {
      const to = header(r.headers, 'location');
      return new FsError('EIO', `${this.what(req)}: HTTP ${r.status} redirect${to ? ` to ${redactUrl(to)}` : ''} not followed: the configured URL is used as it is (correct it if the service moved)`);
    }
    const msg = `${this.what(req)}: HTTP ${r.status}: ${errorMessage(r.text)}`;
    if (r.status === 404 || r.status === 410) return new NotFoundError(msg, { status: r.status });
    if (r.status === 401 || r.status === 403) return new AuthError(msg, { status: r.status });
    if (r.status === 408 || r.status === 429 || r.status >= 500) {
      return new TransientError(msg, { status: r.status, retryAfterMs: parseRetryAfter(header(r.headers, 'retry-after')) });
    }
    return new FsError('EIO', msg, { status: r.status });
  }

  private async once(req: ApiRequest, useAuth: boolean): Promise<ApiResponse> {
    const u = this.url(req.path, req.query);
    const home = u.origin === this.base.origin;
    if (useAuth && !home) throw new FsError('EIO', crossOriginMessage(this.what(req), u, this.base.origin));
    const headers: Record<string, string> = { accept: 'application/json', ...(home ? this.opts.defaultHeaders : {}), ...req.headers };
    let body: string | Buffer | undefined;
    if (req.multipart !== undefined) {
      const encoded = new Response(req.multipart); // one encoding: the boundary in the type must be the body's
      headers['content-type'] = encoded.headers.get('content-type') ?? 'multipart/form-data';
      body = Buffer.from(await encoded.arrayBuffer());
    } else if (req.body !== undefined) {
      body = req.body;
    } else if (req.json !== undefined) {
      body = JSON.stringify(req.json);
      headers['content-type'] ??= 'application/json';
    } else if (req.form) {
      body = new URLSearchParams(req.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    if (useAuth) Object.assign(headers, await this.opts.auth!.headers(req.signal));
    const deadline = new Deadline(deadlineFor(this.bounds, body === undefined ? 0 : Buffer.byteLength(body)), req.signal);
    try {
      const res = await this.agent.request({ origin: u.origin, path: u.pathname + u.search, method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body, signal: deadline.signal });
      const text = await this.readCapped(req, res);
      // A raw body is file bytes: the upload engine counts those requests (kind upload).
      if (req.body === undefined) this.opts.meter?.request('api', undefined, res.statusCode);
      return { status: res.statusCode, headers: res.headers, text };
    } catch (e) {
      if (req.body === undefined) this.opts.meter?.request('api', e);
      if (req.signal?.aborted) throw req.signal.reason;
      if (deadline.expired) throw deadline.error(this.what(req));
      if (e instanceof FsError) throw e;
      if (isAbort(e) && !(e as { code?: string }).code?.startsWith('UND_ERR')) throw e;
      throw new TransientError(`${this.what(req)}: ${redactText(describeError(e))}`, { cause: e });
    } finally {
      deadline.clear();
    }
  }

  /** The answer's text, refused past maxApiBodyBytes (by its declared length, or as it streams). */
  private async readCapped(req: ApiRequest, res: Dispatcher.ResponseData): Promise<string> {
    const cap = this.bounds.maxApiBodyBytes;
    const tooLarge = () => new FsError('EIO', `${this.what(req)}: answer larger than ${cap} bytes (retry.maxApiBody)`);
    const declared = Number(header(res.headers, 'content-length'));
    if (REDIRECT_STATUSES.has(res.statusCode) || declared > cap) {
      res.body.on('error', () => undefined);
      res.body.destroy();
      if (declared > cap && !REDIRECT_STATUSES.has(res.statusCode)) throw tooLarge();
      return '';
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > cap) {
        res.body.destroy();
        throw tooLarge();
      }
      chunks.push(c);
    }
    return Buffer.concat(chunks, n).toString('utf8');
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/**
 * A bearer-style session: one login at a time, the token reused until the margin rule of
 * common/expiring.ts says it is about to expire (or until invalidated), then a new login. `login` may use
 * a refresh token it keeps itself. A login is shared by every caller, so it runs without a caller's
 * signal (it is bounded by the client's deadline); a caller's signal stops only its own wait.
 */
export class TokenSession implements Authenticator {
  private readonly token: ExpiringCredential<string>;

  constructor(
    login: (signal?: AbortSignal) => Promise<{ token: string; expiresInMs?: number }>,
    private readonly toHeaders: (token: string) => Record<string, string>,
  ) {
    this.token = new ExpiringCredential(async () => {
      const { token, expiresInMs } = await login();
      return { value: token, expiresAt: Date.now() + (expiresInMs ?? DEFAULT_TOKEN_LIFE_MS) };
    });
  }

  async headers(signal?: AbortSignal): Promise<Record<string, string>> {
    return this.toHeaders(await this.current(signal));
  }

  /** The current token, logging in when needed. */
  current(signal?: AbortSignal): Promise<string> {
    return this.token.get(signal);
  }

  /** The token now in use, if any (no login). */
  peek(): string | undefined {
    return this.token.peek();
  }

  invalidate(): void {
    this.token.invalidate();
  }
}
