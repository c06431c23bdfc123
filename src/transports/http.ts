/**
 * Ranged GETs on signed URLs over one undici Agent (a keep-alive pool per origin).
 *
 * Invariants:
 *  - A returned Buffer holds exactly the requested bytes of exactly the expected version: a 206 must
 *    carry a Content-Range naming that range and the expected total size, and a compatible ETag.
 *    A 200 (a server that ignores Range) is accepted only when it is the whole object of the expected size.
 *  - Bytes are copied once, from the socket's chunks into the caller's buffers (readRangeInto), or one
 *    Buffer preallocated at the exact size (readRange); of a 200 only the requested slice is kept.
 *  - Every failure is an FsError the read path understands (see Transport in core/types.ts); a body
 *    we stop reading is destroyed, so its socket is closed rather than left half-read in the pool.
 *  - Headers and every pause in a body are bounded by `requestTimeoutMs` (a server that sends headers and
 *    then nothing — Azurite once out of file handles — must not hang a read).
 *  - Messages name URLs only through redactUrl: signed query strings never reach an error or a log.
 */
import { Agent, interceptors } from 'undici';
import type { Dispatcher } from 'undici';
import type { ByteRange, Expectation, Progress, SignedLocator, Transport } from '../core/types.js';
import { etagMatches } from '../core/etag.js';
import { ExpiredError, FsError, NotFoundError, StaleError, TransientError, isAbort } from '../core/errors.js';
import { redactUrl } from '../util/redact.js';
import { noteBodyBytes } from '../util/gc-pacer.js';

export interface HttpTransportOptions {
  /** Bound on waiting for headers, and on each pause while a body streams. Default 20 s. */
  requestTimeoutMs?: number;
  /** Keep-alive connections per origin. Default 32. */
  connectionsPerOrigin?: number;
  /** How long an idle keep-alive socket is kept. Default 10 s. */
  keepAliveTimeoutMs?: number;
  /** Redirects followed per request (302 from a download endpoint to storage). Default 5. */
  maxRedirections?: number;
}

/** Network failures worth retrying: resets, refused/closed connections, timeouts, truncated bodies. */
export const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH',
  'ENETDOWN', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_ABORTED',
]);

type Headers = Record<string, string | string[] | undefined>;
type Body = Dispatcher.ResponseData['body'];

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Retry-After as milliseconds from now: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** `bytes a-b/total` → {start, end (exclusive), total}; total is NaN for `*`. */
function parseContentRange(value: string | undefined): { start: number; end: number; total: number } | undefined {
  const m = value ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim()) : null;
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]) + 1, total: m[3] === '*' ? NaN : Number(m[3]) };
}

export class HttpTransport implements Transport {
  private readonly agent: Agent;
  private readonly dispatcher: Dispatcher;

  constructor(opts: HttpTransportOptions = {}) {
    const timeout = opts.requestTimeoutMs ?? 20_000;
    this.agent = new Agent({
      connections: opts.connectionsPerOrigin ?? 32,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 10_000,
      connect: { timeout },
    });
    // Some platforms answer a download link with 302 to the storage URL. undici drops Authorization
    // and cookies when a redirect leaves the origin.
    this.dispatcher = this.agent.compose(interceptors.redirect({ maxRedirections: opts.maxRedirections ?? 5 }));
  }

  async readRange(loc: SignedLocator, range: ByteRange, expect: Expectation, signal?: AbortSignal): Promise<Buffer> {
    const out = Buffer.allocUnsafe(Math.max(0, range.end - range.start));
    await this.readRangeInto(loc, range, expect, [out], undefined, signal);
    return out;
  }

  async readRangeInto(loc: SignedLocator, range: ByteRange, expect: Expectation, into: readonly Buffer[], onProgress?: Progress, signal?: AbortSignal): Promise<void> {
    const length = range.end - range.start;
    if (length < 0 || range.start < 0 || range.end > expect.size) {
      throw new FsError('EINVAL', `range ${range.start}-${range.end} outside an object of ${expect.size} bytes`);
    }
    const out = new Segments(into);
    if (out.length !== length) throw new FsError('EINVAL', `${out.length} bytes of buffers for a range of ${length}`);
    if (length === 0) return;
    const what = `GET ${redactUrl(loc.url)} bytes=${range.start}-${range.end - 1}`;
    let url: URL;
    try {
      url = new URL(loc.url);
    } catch (e) {
      throw new FsError('EINVAL', `invalid locator URL ${redactUrl(loc.url)}`, { cause: e });
    }
    if (signal?.aborted) throw signal.reason;
    // The dispatcher's handler API, not request(): a body chunk goes straight from the parser into
    // `into`, without a Readable stream and an async iterator step per 64 KiB.
    await new Promise<void>((resolve, reject) => {
      const receiver = new RangeReceiver({ loc, range, expect, what, out, onProgress, signal }, (e) => {
        if (e === undefined) return resolve();
        reject(e instanceof FsError ? e : this.networkError(e, what, signal));
      });
      try {
        this.dispatcher.dispatch(
          { origin: url.origin, path: url.pathname + url.search, method: 'GET', headers: { ...loc.headers, range: `bytes=${range.start}-${range.end - 1}` } },
          receiver,
        );
      } catch (e) {
        receiver.onResponseError(undefined, e as Error);
      }
    });
  }

  async streamWhole(loc: SignedLocator, expect: Expectation, onChunk: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
    const what = `GET ${redactUrl(loc.url)} (whole object)`;
    let res: Dispatcher.ResponseData;
    try {
      const url = new URL(loc.url);
      res = await this.dispatcher.request({ origin: url.origin, path: url.pathname + url.search, method: 'GET', headers: { ...loc.headers }, signal });
    } catch (e) {
      throw this.networkError(e, what, signal);
    }
    const { statusCode: status, headers, body } = res;
    try {
      if (status !== 200) throw statusError(status, headers, what, loc);
      const etag = header(headers, 'etag');
      if (loc.etagIsVersion !== false && !etagMatches(expect.version, etag)) throw new StaleError(`${what}: ETag ${etag} is not the expected version`);
      const declared = header(headers, 'content-length');
      if (declared !== undefined && Number(declared) !== expect.size) {
        throw new StaleError(`${what}: ${declared} bytes, expected ${expect.size}`);
      }
      let at = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        at += chunk.length;
        if (at > expect.size) throw new TransientError(`${what}: body longer than ${expect.size} bytes`);
        onChunk(chunk);
      }
      if (at !== expect.size) throw new TransientError(`${what}: short body (${at} of ${expect.size} bytes)`);
    } catch (e) {
      discard(body);
      if (e instanceof FsError) throw e;
      throw this.networkError(e, what, signal);
    }
  }

  private networkError(e: unknown, what: string, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return signal.reason;
    if (isAbort(e) && !(e as { code?: string }).code?.startsWith('UND_ERR')) return e;
    const code = (e as { code?: string })?.code;
    const reason = code ?? (e instanceof Error ? e.message : String(e));
    if (code === undefined || TRANSIENT_CODES.has(code)) {
      return new TransientError(`${what}: ${reason}`, { cause: e });
    }
    return new FsError('EIO', `${what}: ${reason}`, { cause: e });
  }

  async close(): Promise<void> {
    // Shutdown: in-flight reads are abandoned (they are only ever prefetches by then).
    await this.agent.destroy();
  }
}

export function statusError(status: number, headers: Headers, what: string, loc: SignedLocator): FsError {
  const msg = `${what}: HTTP ${status}`;
  if (status === 401 || status === 403 || loc.refusedStatuses?.includes(status)) return new ExpiredError(msg);
  if (status === 404 || status === 410) return new NotFoundError(msg);
  if (status === 412 || status === 416) return new StaleError(msg);
  if (status === 408 || status === 429 || status >= 500) {
    return new TransientError(msg, { status, retryAfterMs: parseRetryAfter(header(headers, 'retry-after')) });
  }
  return new FsError('EIO', msg);
}

/**
 * Consecutive buffers written as one: the segments of one range (e.g. the cache's block buffers, so a
 * body lands where it will be cached, with no copy and no fresh allocation). Writes only move forward.
 */
class Segments {
  readonly length: number;
  private index = 0;
  /** Offset in the whole at which parts[index] starts. */
  private base = 0;

  constructor(private readonly parts: readonly Buffer[]) {
    this.length = parts.reduce((n, p) => n + p.length, 0);
  }

  /** Copy `src` to offset `at` of the whole; `at` is never below the previous write's start. */
  set(src: Buffer, at: number): void {
    let done = 0;
    while (done < src.length) {
      while (at + done >= this.base + this.parts[this.index]!.length) this.base += this.parts[this.index++]!.length;
      const part = this.parts[this.index]!;
      done += src.copy(part, at + done - this.base, done, Math.min(src.length, done + part.length - (at + done - this.base)));
    }
  }
}

interface RangeRequest {
  readonly loc: SignedLocator;
  readonly range: ByteRange;
  readonly expect: Expectation;
  readonly what: string;
  readonly out: Segments;
  readonly onProgress?: Progress;
  readonly signal?: AbortSignal;
}

/**
 * Receives one ranged GET into `out`: bytes [want.start, want.end) of a body of `total` bytes (a 206
 * is all wanted; a 200 to a ranged request is the whole object, of which only the range is kept).
 * Once the range is complete and the declared length already vouched for the total, the rest of the
 * body is not read: the request is aborted, which closes its socket. Otherwise the body must be
 * exactly `total` bytes. `finish` is called exactly once: with nothing on success, else the error.
 */
class RangeReceiver implements Dispatcher.DispatchHandler {
  private want: ByteRange = { start: 0, end: 0 };
  private total = 0;
  private lengthDeclared = false;
  private at = 0;
  private finished = false;
  private unlisten: (() => void) | undefined;

  constructor(
    private readonly r: RangeRequest,
    private readonly finish: (e?: unknown) => void,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    const { signal } = this.r;
    if (!signal) return;
    const onAbort = () => controller.abort(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.unlisten = () => signal.removeEventListener('abort', onAbort);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Headers): void {
    if (status < 200) return;
    try {
      ({ want: this.want, total: this.total, lengthDeclared: this.lengthDeclared } = planBody(this.r, status, headers));
    } catch (e) {
      this.end(e);
      controller.abort(e as Error);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    noteBodyBytes(chunk.length);
    if (this.finished) return;
    const { want, total, r } = this;
    const at = this.at;
    const chunkEnd = at + chunk.length;
    this.at = chunkEnd;
    if (chunkEnd > total) {
      const e = new TransientError(`${r.what}: body longer than ${total} bytes`);
      this.end(e);
      return controller.abort(e);
    }
    if (chunkEnd > want.start && at < want.end) {
      const from = Math.max(want.start, at);
      r.out.set(chunk.subarray(from - at, Math.min(want.end, chunkEnd) - at), from - want.start);
      r.onProgress?.(Math.min(chunkEnd, want.end) - want.start);
    }
    if (chunkEnd >= want.end && chunkEnd < total && this.lengthDeclared) {
      this.end();
      controller.abort(new Error('the rest of the body is not needed'));
    }
  }

  onResponseEnd(): void {
    if (this.at !== this.total) this.end(new TransientError(`${this.r.what}: short body (${this.at} of ${this.total} bytes)`));
    else this.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, e: Error): void {
    this.end(e);
  }

  private end(e?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.unlisten?.();
    this.finish(e);
  }
}

/** What of a 200/206 body is wanted, or the error its status and headers amount to. */
export function planBody(r: Pick<RangeRequest, 'what' | 'range' | 'expect' | 'loc'>, status: number, headers: Headers): { want: ByteRange; total: number; lengthDeclared: boolean } {
  const { what, range, expect, loc } = r;
  if (status !== 206 && status !== 200) throw statusError(status, headers, what, loc);
  const etag = header(headers, 'etag');
  if (loc.etagIsVersion !== false && !etagMatches(expect.version, etag)) {
    throw new StaleError(`${what}: ETag ${etag} is not the expected version`);
  }
  const declared = header(headers, 'content-length');
  const length = range.end - range.start;
  if (status === 206) {
    const cr = parseContentRange(header(headers, 'content-range'));
    if (!cr) throw new TransientError(`${what}: 206 without a usable Content-Range`, { status });
    if (!Number.isNaN(cr.total) && cr.total !== expect.size) {
      throw new StaleError(`${what}: object is ${cr.total} bytes, expected ${expect.size}`);
    }
    if (cr.start !== range.start || cr.end !== range.end || Number.isNaN(cr.total)) {
      throw new TransientError(`${what}: server answered Content-Range ${header(headers, 'content-range')}`, { status });
    }
    if (declared !== undefined && Number(declared) !== length) {
      throw new TransientError(`${what}: short body (Content-Length ${declared})`, { status });
    }
    return { want: { start: 0, end: length }, total: length, lengthDeclared: declared !== undefined };
  }
  // 200: the server ignored Range and sends the whole object.
  if (declared !== undefined && Number(declared) !== expect.size) {
    throw new StaleError(`${what}: 200 with ${declared} bytes, expected the whole object of ${expect.size}`);
  }
  return { want: range, total: expect.size, lengthDeclared: declared !== undefined };
}

/** Stop reading a body: destroying it closes its socket, so nothing is left half-read in the pool. */
function discard(body: Body): void {
  body.on('error', () => undefined);
  body.destroy();
}
