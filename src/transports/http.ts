/**
 * Ranged GETs on signed URLs over one undici Agent (a keep-alive pool per origin).
 *
 * Invariants:
 *  - A returned Buffer holds exactly the requested bytes of exactly the expected version: a 206 must
 *    carry a Content-Range naming that range and the expected total size, and an ETag of that version
 *    where one can be judged (core/etag.ts: the listed version only when the locator says it is the
 *    storage ETag, else the ETag earlier downloads of the version carried).
 *    A 200 (a server that ignores Range) is accepted only when it is the whole object of the expected size.
 *  - Bytes are copied once, from the socket's chunks into the caller's buffers (readRangeInto), or one
 *    Buffer preallocated at the exact size (readRange); of a 200 only the requested slice is kept.
 *  - Every failure is an FsError the read path understands (see Transport in core/types.ts); a body
 *    we stop reading is destroyed, so its socket is closed rather than left half-read in the pool.
 *  - Bounded (bounds.ts): connecting, the headers and every pause in a body by `requestTimeoutMs` (a
 *    server that sends headers and then nothing — Azurite once out of file handles — must not hang a
 *    read); the whole request, redirects included, by `deadlineMs` (a server that trickles a byte every
 *    few seconds must not either). A whole-object stream gets a fresh deadline per DEADLINE_BYTES.
 *  - Redirects (301/302/303/307/308, at most MAX_REDIRECTS) are followed here, not by undici: once a
 *    request leaves the locator's origin it carries none of the locator's headers (origins.ts).
 *  - Messages name URLs only through redactUrl: signed query strings never reach an error or a log.
 */
import { Agent } from 'undici';
import type { Dispatcher } from 'undici';
import type { ByteRange, Expectation, Progress, SignedLocator, Transport } from '../core/types.js';
import { etagConflict } from '../core/etag.js';
import { ExpiredError, FsError, NotFoundError, StaleError, TransientError, isAbort } from '../core/errors.js';
import { redactUrl } from '../util/redact.js';
import { noteBodyBytes } from '../util/body-gc.js';
import { DEADLINE_BYTES, DEFAULT_BOUNDS, Deadline } from './bounds.js';
import { MAX_REDIRECTS, REDIRECT_STATUSES, redirectTarget } from './origins.js';
import { Segments } from './segments.js';

export interface HttpTransportOptions {
  /** Bound on connecting, on waiting for headers, and on each pause while a body streams. Default 20 s. */
  requestTimeoutMs?: number;
  /** Bound on one request from its start to its last byte, redirects included. Default 30 s. */
  deadlineMs?: number;
  /** Keep-alive connections per origin. Default 32. */
  connectionsPerOrigin?: number;
  /** How long an idle keep-alive socket is kept. Default 10 s. */
  keepAliveTimeoutMs?: number;
  /** Redirects followed per request (302 from a download endpoint to storage). Default MAX_REDIRECTS. */
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

/** One hop of a request: its URL and the headers it carries there. */
interface Hop {
  readonly url: URL;
  readonly headers: Record<string, string>;
}

/** A redirect answer: where it points. */
class Redirected {
  constructor(readonly location: string | string[] | undefined) {}
}

export class HttpTransport implements Transport {
  private readonly agent: Agent;
  private readonly deadlineMs: number;
  private readonly maxRedirections: number;

  constructor(opts: HttpTransportOptions = {}) {
    const timeout = opts.requestTimeoutMs ?? DEFAULT_BOUNDS.stallMs;
    this.deadlineMs = Math.max(timeout, opts.deadlineMs ?? DEFAULT_BOUNDS.deadlineMs);
    this.maxRedirections = opts.maxRedirections ?? MAX_REDIRECTS;
    this.agent = new Agent({
      connections: opts.connectionsPerOrigin ?? 32,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: opts.keepAliveTimeoutMs ?? 10_000,
      connect: { timeout },
    });
  }

  /** The first hop of a locator: its URL with its headers. */
  private firstHop(loc: SignedLocator): Hop {
    try {
      return { url: new URL(loc.url), headers: { ...loc.headers } };
    } catch (e) {
      throw new FsError('EINVAL', `invalid locator URL ${redactUrl(loc.url)}`, { cause: e });
    }
  }

  /**
   * The hop a redirect from `from` leads to. Some platforms answer a download link with a redirect to
   * the storage URL, which authorizes itself: past the locator's origin, no header of the locator goes.
   */
  private nextHop(first: Hop, from: Hop, r: Redirected, hops: number, what: string): Hop {
    if (hops >= this.maxRedirections) throw new FsError('EIO', `${what}: more than ${this.maxRedirections} redirects`);
    const url = redirectTarget(from.url, r.location, what);
    const stays = url.origin === first.url.origin && from.headers === first.headers;
    return { url, headers: stays ? first.headers : {} };
  }

  readRange(loc: SignedLocator, range: ByteRange, expect: Expectation, signal?: AbortSignal): Promise<Buffer> {
    return readRangeIntoNew(this, loc, range, expect, signal);
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
    const first = this.firstHop(loc);
    if (signal?.aborted) throw signal.reason;
    // A range longer than DEADLINE_BYTES (larger than any readahead part) gets a deadline per DEADLINE_BYTES.
    const deadline = new Deadline(this.deadlineMs * Math.max(1, Math.ceil(length / DEADLINE_BYTES)), signal);
    try {
      for (let hop = first, hops = 0; ; hops++) {
        const r = await this.rangeOnce(hop, { loc, range, expect, what, out, onProgress, signal: deadline.signal }, signal, deadline);
        if (!(r instanceof Redirected)) return;
        hop = this.nextHop(first, hop, r, hops, what);
      }
    } finally {
      deadline.clear();
    }
  }

  /** One GET of the range at `hop`: done, or where a redirect points. */
  private rangeOnce(hop: Hop, req: RangeRequest, signal: AbortSignal | undefined, deadline: Deadline): Promise<Redirected | undefined> {
    const { range, what } = req;
    // The dispatcher's handler API, not request(): a body chunk goes straight from the parser into
    // `into`, without a Readable stream and an async iterator step per 64 KiB.
    return new Promise<Redirected | undefined>((resolve, reject) => {
      const receiver = new RangeReceiver(req, (e) => {
        if (e === undefined) return resolve(undefined);
        if (e instanceof Redirected) return resolve(e);
        reject(e instanceof FsError ? e : this.networkError(e, what, signal, deadline));
      });
      try {
        this.agent.dispatch(
          { origin: hop.url.origin, path: hop.url.pathname + hop.url.search, method: 'GET', headers: { ...hop.headers, range: `bytes=${range.start}-${range.end - 1}` } },
          receiver,
        );
      } catch (e) {
        receiver.onResponseError(undefined, e as Error);
      }
    });
  }

  async streamWhole(loc: SignedLocator, expect: Expectation, onChunk: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
    const what = `GET ${redactUrl(loc.url)} (whole object)`;
    const first = this.firstHop(loc);
    const deadline = new Deadline(this.deadlineMs, signal);
    try {
      let res: Dispatcher.ResponseData;
      for (let hop = first, hops = 0; ; hops++) {
        try {
          res = await this.agent.request({ origin: hop.url.origin, path: hop.url.pathname + hop.url.search, method: 'GET', headers: { ...hop.headers }, signal: deadline.signal });
        } catch (e) {
          throw this.networkError(e, what, signal, deadline);
        }
        if (!REDIRECT_STATUSES.has(res.statusCode)) break;
        discard(res.body);
        hop = this.nextHop(first, hop, new Redirected(res.headers.location), hops, what);
      }
      await this.consumeWhole(res, loc, expect, what, onChunk, signal, deadline);
    } finally {
      deadline.clear();
    }
  }

  private async consumeWhole(res: Dispatcher.ResponseData, loc: SignedLocator, expect: Expectation, what: string, onChunk: (chunk: Buffer) => void, signal: AbortSignal | undefined, deadline: Deadline): Promise<void> {
    const { statusCode: status, headers, body } = res;
    try {
      if (status !== 200) throw statusError(status, headers, what, loc);
      const conflict = etagConflict(loc, expect, header(headers, 'etag'));
      if (conflict) throw new StaleError(`${what}: ${conflict}`);
      const declared = header(headers, 'content-length');
      if (declared !== undefined && Number(declared) !== expect.size) {
        throw new StaleError(`${what}: ${declared} bytes, expected ${expect.size}`);
      }
      let at = 0;
      let renewAt = DEADLINE_BYTES;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        at += chunk.length;
        if (at > expect.size) throw new TransientError(`${what}: body longer than ${expect.size} bytes`);
        if (at >= renewAt) {
          deadline.renew();
          renewAt = at + DEADLINE_BYTES;
        }
        onChunk(chunk);
      }
      if (at !== expect.size) throw new TransientError(`${what}: short body (${at} of ${expect.size} bytes)`);
    } catch (e) {
      discard(body);
      if (e instanceof FsError) throw e;
      throw this.networkError(e, what, signal, deadline);
    }
  }

  private networkError(e: unknown, what: string, signal: AbortSignal | undefined, deadline?: Deadline): unknown {
    if (signal?.aborted) return signal.reason;
    if (deadline?.expired) return deadline.error(what);
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
 * exactly `total` bytes. `finish` is called exactly once: with nothing on success, a Redirected for a
 * redirect, else the error.
 */
class RangeReceiver implements Dispatcher.DispatchHandler {
  private want: ByteRange = { start: 0, end: 0 };
  private total = 0;
  private lengthDeclared = false;
  private at = 0;
  private finished = false;
  private unlisten: (() => void) | undefined;

  constructor(
    private readonly request: RangeRequest,
    private readonly finish: (e?: unknown) => void,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    const { signal } = this.request;
    if (!signal) return;
    const onAbort = () => controller.abort(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.unlisten = () => signal.removeEventListener('abort', onAbort);
  }

  onResponseStart(controller: Dispatcher.DispatchController, status: number, headers: Headers): void {
    if (status < 200) return;
    if (REDIRECT_STATUSES.has(status)) {
      // Its body is not wanted (and may be anything): the socket is closed rather than drained.
      this.end(new Redirected(headers.location));
      controller.abort(new Error('redirected'));
      return;
    }
    try {
      ({ want: this.want, total: this.total, lengthDeclared: this.lengthDeclared } = planBody(this.request, status, headers));
    } catch (e) {
      this.end(e);
      controller.abort(e as Error);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.finished) return;
    noteBodyBytes(chunk.length);
    const { want, total, request: r } = this;
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
    if (this.at !== this.total) this.end(new TransientError(`${this.request.what}: short body (${this.at} of ${this.total} bytes)`));
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
  const conflict = etagConflict(loc, expect, header(headers, 'etag'));
  if (conflict) throw new StaleError(`${what}: ${conflict}`);
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

/** `Transport.readRange` for a transport whose work is `readRangeInto`: one buffer of the range's size. */
export async function readRangeIntoNew(t: Pick<Transport, 'readRangeInto'>, loc: SignedLocator, range: ByteRange, expect: Expectation, signal?: AbortSignal): Promise<Buffer> {
  const out = Buffer.allocUnsafe(Math.max(0, range.end - range.start));
  await t.readRangeInto(loc, range, expect, [out], undefined, signal);
  return out;
}
