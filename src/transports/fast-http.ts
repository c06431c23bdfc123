/**
 * The read transport: ranged GETs whose bodies the kernel reads straight into the caller's block
 * buffers, over a keep-alive pool of plain `net`/`tls` sockets (socket-pool.ts, range-exchange.ts),
 * with undici (HttpTransport) for everything outside that narrow case. Receiving through undici's
 * parser and its per-chunk machinery costs two to three times the CPU per byte of a socket reading
 * into memory it owns, which costs about what curl does (docs/perf-log.md, docs/design.md#the-receive-path).
 *
 * Invariants:
 *  - Body bytes are copied once, kernel → block buffer (only the few that arrive with the head are
 *    copied from the head buffer).
 *  - Every response passes the same checks as on the undici path (http.ts: planBody, statusError);
 *    every failure is the same FsError there.
 *  - A request goes to undici (`fallback`) when its URL, its headers or its response fall outside the
 *    narrow case: not http(s), a header value that is not plain visible ASCII, a 1xx, a 3xx (this
 *    transport never follows a redirect itself), no Content-Length, any Transfer-Encoding, an odd or
 *    oversized head. A response handed over was never read into `into`; undici asks again.
 *  - Bounds as on the undici path: connecting, the head and each pause in a body by
 *    `requestTimeoutMs`; the whole read, when `deadlineMs` is given, by `deadlineMs` per
 *    DEADLINE_BYTES (a TransientError); the abort signal ends a request at once and closes its
 *    connection.
 *  - A request on a reused connection that closes before a byte of an answer (the server closed it
 *    while idle) is sent once more on a new connection; any other failure is the caller's.
 *  - Messages name URLs only through redactUrl.
 */
import type { ConnectionOptions } from 'node:tls';
import type { ByteRange, Expectation, Progress, SignedLocator, Transport } from '../core/types.js';
import { FsError, TransientError } from '../core/errors.js';
import { redactUrl } from '../util/redact.js';
import { HttpTransport, readRangeIntoNew, type HttpTransportOptions } from './http.js';
import { RangeExchange } from './range-exchange.js';
import { SocketPool } from './socket-pool.js';

export interface FastHttpTransportOptions extends HttpTransportOptions {
  /**
   * Bound on one ranged read from its start to its last byte, per DEADLINE_BYTES of range (a server
   * trickling a byte at a time never stalls, so only this ends such a read). Default: none.
   */
  deadlineMs?: number;
  /** Extra TLS options for the fast path's sockets (a test CA); certificates are verified as by default. */
  tls?: ConnectionOptions;
  /** Where requests outside the narrow case go. Default: an HttpTransport with the same options. */
  fallback?: Transport;
}

/** What the transport did, for tests and the bench. */
export interface FastHttpStats {
  /** Ranged reads answered on the fast path. */
  fast: number;
  /** Ranged reads handed to the fallback, by reason. */
  fallback: Record<string, number>;
  /** Requests sent again after a reused connection closed unanswered. */
  resent: number;
}

/** A read may take `deadlineMs` per this many bytes of its range. */
export const DEADLINE_BYTES = 16 * 1024 * 1024;

/** A header name (RFC 9110 token) and a value we are willing to write ourselves. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const PLAIN_VALUE = /^[\t\x20-\x7e]*$/;
/** Headers this transport writes itself or whose framing it does not handle. */
const OWN_HEADERS = new Set(['host', 'range', 'connection', 'content-length', 'transfer-encoding', 'expect', 'upgrade', 'te', 'keep-alive']);

export class FastHttpTransport implements Transport {
  private readonly pool: SocketPool;
  private readonly fallback: Transport;
  private readonly stallMs: number;
  private readonly deadlineMs: number | undefined;
  private readonly counts: FastHttpStats = { fast: 0, fallback: {}, resent: 0 };

  constructor(opts: FastHttpTransportOptions = {}) {
    this.stallMs = opts.requestTimeoutMs ?? 20_000;
    this.deadlineMs = opts.deadlineMs;
    this.pool = new SocketPool({
      connectionsPerOrigin: opts.connectionsPerOrigin ?? 32,
      idleMs: opts.keepAliveTimeoutMs ?? 10_000,
      stallMs: this.stallMs,
      tls: opts.tls,
    });
    this.fallback = opts.fallback ?? new HttpTransport(opts);
  }

  stats(): FastHttpStats {
    return { ...this.counts, fallback: { ...this.counts.fallback } };
  }

  readRange(loc: SignedLocator, range: ByteRange, expect: Expectation, signal?: AbortSignal): Promise<Buffer> {
    return readRangeIntoNew(this, loc, range, expect, signal);
  }

  async readRangeInto(loc: SignedLocator, range: ByteRange, expect: Expectation, into: readonly Buffer[], onProgress?: Progress, signal?: AbortSignal): Promise<void> {
    const length = range.end - range.start;
    if (length < 0 || range.start < 0 || range.end > expect.size) {
      throw new FsError('EINVAL', `range ${range.start}-${range.end} outside an object of ${expect.size} bytes`);
    }
    const total = into.reduce((n, b) => n + b.length, 0);
    if (total !== length) throw new FsError('EINVAL', `${total} bytes of buffers for a range of ${length}`);
    if (length === 0) return;
    let url: URL;
    try {
      url = new URL(loc.url);
    } catch (e) {
      throw new FsError('EINVAL', `invalid locator URL ${redactUrl(loc.url)}`, { cause: e });
    }
    const request = requestHead(url, loc.headers, range);
    if (request === undefined) return this.handOver('URL or headers', loc, range, expect, into, onProgress, signal);
    if (signal?.aborted) throw signal.reason;
    const job = { loc, range, expect, into, onProgress, what: `GET ${redactUrl(loc.url)} bytes=${range.start}-${range.end - 1}` };
    const deadline = this.deadlineMs === undefined ? undefined : new AbortController();
    const deadlineMs = (this.deadlineMs ?? 0) * Math.max(1, Math.ceil(length / DEADLINE_BYTES));
    const timer = deadline && setTimeout(() => deadline.abort(new TransientError(`${job.what}: no complete answer within ${deadlineMs} ms (retry.maxTime)`)), deadlineMs).unref();
    const bounded = deadline ? (signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal) : signal;
    try {
      for (let resend = false; ; resend = true) {
        let conn;
        try {
          conn = await this.pool.acquire(url, resend, bounded);
        } catch (e) {
          if (bounded?.aborted) throw bounded.reason;
          throw new FsError('EIO', `${job.what}: ${(e as Error).message}`, { cause: e });
        }
        const c = conn;
        const outcome = await new RangeExchange(c, job, this.stallMs, (reusable, keepAliveMs) => this.pool.release(c, url, reusable, keepAliveMs)).run(request, bounded);
        if (outcome.kind === 'done') {
          this.counts.fast++;
          return;
        }
        if (outcome.kind === 'fallback') return await this.handOver(outcome.reason, loc, range, expect, into, onProgress, signal);
        // The caller's abort wins over the deadline; either wins over what the exchange saw.
        if (signal?.aborted) throw signal.reason;
        if (bounded?.aborted) throw bounded.reason;
        if (outcome.closedUnanswered && c.served > 0 && !resend) {
          this.counts.resent++;
          continue;
        }
        throw outcome.error;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whole-object streams (servers that ignore Range) are rare and not the cold read's path: undici's. */
  streamWhole(loc: SignedLocator, expect: Expectation, onChunk: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
    return this.fallback.streamWhole(loc, expect, onChunk, signal);
  }

  async close(): Promise<void> {
    this.pool.close();
    await this.fallback.close();
  }

  private handOver(reason: string, loc: SignedLocator, range: ByteRange, expect: Expectation, into: readonly Buffer[], onProgress?: Progress, signal?: AbortSignal): Promise<void> {
    this.counts.fallback[reason] = (this.counts.fallback[reason] ?? 0) + 1;
    return this.fallback.readRangeInto(loc, range, expect, into, onProgress, signal);
  }
}

/** The request's head as written on the wire, or undefined when it is not ours to write. */
function requestHead(url: URL, headers: Readonly<Record<string, string>> | undefined, range: ByteRange): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password) return undefined;
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!TOKEN.test(name) || OWN_HEADERS.has(name.toLowerCase()) || !PLAIN_VALUE.test(value)) return undefined;
    head += `${name}: ${value.trim()}\r\n`;
  }
  return `${head}Range: bytes=${range.start}-${range.end - 1}\r\n\r\n`;
}
