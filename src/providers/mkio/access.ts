/**
 * Reading an MK.IO asset's files from its storage: getFileAccessInfo answers, turned into locators
 * and into HEAD probes that give a file's ETag (MK.IO's storage listing has only name and size).
 *
 * Invariants:
 *  - One access answer per asset is shared (single flight) while the margin rule of
 *    common/expiring.ts allows; getFileAccessInfo counts against MK.IO's write rate limit, so a folder
 *    of files costs one call, not one per file.
 *  - `drop(asset, loc)` forgets it (a locator or probe was refused): the next use calls
 *    getFileAccessInfo again. A drop naming an older jwt leaves a newer answer alone.
 *  - Expiry comes from the jwt's `exp`, or, for a presigned S3 URL, from X-Amz-Date + X-Amz-Expires;
 *    if neither can be read, 5 minutes (the lifetime is undocumented).
 *  - File URL = `{url}/{subPath}/{path}` with the jwt as bearer (Azure Get Blob, or a plain bucket
 *    URL); a presigned URL (X-Amz-Signature) is used as it is, with no headers.
 *  - A refusal of storage access that is not an auth, not-found or transient failure (e.g. MK.IO's
 *    "storage credential expired") is an UnavailableError EACCES: the files stay listed, reads fail.
 */
import { Agent, type Dispatcher } from 'undici';
import { ExpiredError, FsError, NotFoundError, TransientError, UnavailableError, isAbort } from '../../core/errors.js';
import type { SignedLocator } from '../../core/types.js';
import { normalizeEtag } from '../../core/etag.js';
import { parseRetryAfter } from '../../transports/http.js';
import { redactUrl } from '../../util/redact.js';
import { DEFAULT_BOUNDS, Deadline, type NetBounds } from '../../transports/bounds.js';
import type { FileAccessInfo, MkioApi } from './api.js';
import { ExpiringCredentials } from '../common/expiring.js';

export interface Access {
  readonly info: FileAccessInfo;
  readonly presigned: boolean;
  readonly expiresAt: number;
}

export interface ProbeResult {
  readonly size: number;
  readonly etag: string;
  readonly mtimeMs: number;
}

const DEFAULT_LIFE_MS = 5 * 60_000;
/** Azure wants a version header on bearer calls (a guess: MK.IO's gateway may ignore it; docs/providers.md#mkio). */
const X_MS_VERSION = '2021-08-06';

/** Epoch ms of a JWT's `exp`, or undefined when it is not a decodable JWT. */
export function jwtExpiry(jwt: string | undefined): number | undefined {
  const part = jwt?.split('.')[1];
  if (!part) return undefined;
  try {
    const exp = (JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function presignExpiry(url: URL): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(url.searchParams.get('X-Amz-Date') ?? '');
  const expires = Number(url.searchParams.get('X-Amz-Expires'));
  if (!m || !Number.isFinite(expires)) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) + expires * 1000;
}

const encodePath = (p: string) => p.split('/').filter(Boolean).map(encodeURIComponent).join('/');

export class AccessCache {
  private readonly entries: ExpiringCredentials<string, Access>;
  private readonly agent: Agent;

  constructor(
    private readonly api: MkioApi,
    private readonly what: string,
    private readonly net: NetBounds = DEFAULT_BOUNDS,
  ) {
    const t = net.stallMs;
    this.entries = new ExpiringCredentials(async (asset) => {
      const access = await this.fetch(asset);
      return { value: access, expiresAt: access.expiresAt };
    });
    this.agent = new Agent({ connections: 16, headersTimeout: t, bodyTimeout: t, keepAliveTimeout: 10_000, connect: { timeout: t } });
  }

  /** Shared by every caller, so it is not tied to one caller's abort signal. */
  get(asset: string): Promise<Access> {
    return this.entries.get(asset);
  }

  private async fetch(asset: string): Promise<Access> {
    let info: FileAccessInfo;
    try {
      info = await this.api.fileAccessInfo(asset);
    } catch (e) {
      if (e instanceof FsError && !(e instanceof NotFoundError) && !(e instanceof TransientError) && e.code === 'EIO') {
        throw new UnavailableError('EACCES', `MK.IO refuses storage access to asset "${asset}": ${e.message}`, { cause: e });
      }
      throw e;
    }
    const url = new URL(info.url);
    const presigned = url.searchParams.has('X-Amz-Signature');
    const expiresAt = (presigned ? presignExpiry(url) : jwtExpiry(info.jwt)) ?? Date.now() + DEFAULT_LIFE_MS;
    return { info, presigned, expiresAt };
  }

  /**
   * Forget the asset's access answer if `loc` was made from it (any settled answer when `loc` is
   * undefined). Synchronous, so a locate() right after it already asks MK.IO again; an answer still
   * in flight is newer than any locator and is kept.
   */
  drop(asset: string, loc?: SignedLocator): void {
    const held = this.entries.peek(asset);
    if (!held) return;
    if (loc && loc.url !== held.info.url && loc.headers?.authorization !== `Bearer ${held.info.jwt}`) return;
    this.entries.invalidate(asset, held);
  }

  /** Whether this access can read `path`: a presigned URL reads only the one object it names. */
  serves(a: Access, path: string): boolean {
    if (!a.presigned) return true;
    return decodeURIComponent(new URL(a.info.url).pathname).endsWith(`/${[a.info.subPath, path].filter(Boolean).join('/')}`);
  }

  /** The URL of `path` (below subPath) in the asset's storage. */
  fileUrl(a: Access, path: string): string {
    if (a.presigned) return a.info.url;
    const sub = encodePath(a.info.subPath ?? '');
    return `${a.info.url.replace(/\/+$/, '')}/${[sub, encodePath(path)].filter(Boolean).join('/')}`;
  }

  locator(a: Access, path: string): SignedLocator {
    if (a.presigned) return { url: a.info.url, expiresAt: a.expiresAt };
    const headers: Record<string, string> = { 'x-ms-version': X_MS_VERSION };
    if (a.info.jwt) headers.authorization = `Bearer ${a.info.jwt}`;
    return { url: this.fileUrl(a, path), headers, expiresAt: a.expiresAt };
  }

  /**
   * Size, ETag and mtime of a file from its storage. undefined when this access cannot tell (a
   * presigned URL naming another object). Throws NotFoundError, ExpiredError (refused), TransientError.
   */
  async probe(a: Access, path: string, signal?: AbortSignal): Promise<ProbeResult | undefined> {
    const loc = this.locator(a, path);
    const url = new URL(loc.url);
    // A presigned GET is signed for GET only: read its first byte instead of a HEAD.
    if (!this.serves(a, path)) return undefined;
    const what = `${this.what}: ${a.presigned ? 'GET' : 'HEAD'} ${redactUrl(loc.url)}`;
    let res: Dispatcher.ResponseData;
    const deadline = new Deadline(this.net.deadlineMs, signal);
    try {
      res = await this.agent.request({
        origin: url.origin, path: url.pathname + url.search, method: a.presigned ? 'GET' : 'HEAD', signal: deadline.signal,
        headers: { ...loc.headers, ...(a.presigned ? { range: 'bytes=0-0' } : {}) },
      });
      // At most one byte is asked for: a larger body is not read (the socket is closed instead).
      await res.body.dump({ limit: 64 * 1024 });
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      if (deadline.expired) throw deadline.error(what);
      if (isAbort(e) && !(e as { code?: string }).code?.startsWith('UND_ERR')) throw e;
      throw new TransientError(`${what}: ${(e as { code?: string }).code ?? 'network error'}`, { cause: e });
    } finally {
      deadline.clear();
    }
    const h = (n: string) => { const v = res.headers[n]; return Array.isArray(v) ? v[0] : v; };
    const s = res.statusCode;
    if (s === 404) throw new NotFoundError(`${what}: not found`);
    if (s === 401 || s === 403) throw new ExpiredError(`${what}: refused (HTTP ${s})`);
    if (s === 408 || s === 429 || s >= 500) throw new TransientError(`${what}: HTTP ${s}`, { status: s, retryAfterMs: parseRetryAfter(h('retry-after')) });
    if (s !== 200 && s !== 206 && s !== 416) throw new FsError('EIO', `${what}: HTTP ${s}`);
    const total = /\/(\d+)$/.exec(h('content-range') ?? '')?.[1];
    const size = s === 416 ? 0 : Number(total ?? h('content-length') ?? 0);
    return { size, etag: normalizeEtag(h('etag')), mtimeMs: Date.parse(h('last-modified') ?? '') || 0 };
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
