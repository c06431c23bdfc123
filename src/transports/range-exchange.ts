/**
 * One ranged GET on one pooled connection (socket-pool.ts), its body read by the kernel straight into
 * the caller's buffers: the head lands in the connection's head buffer, and from then on each read is
 * handed the part of `into` the next bytes belong in (bytes a 200 sends before the range go to a
 * scratch buffer). No read is ever offered more room than the body has left, so the kernel cannot
 * place a byte of the next response, or of garbage, in a block.
 *
 * The response is checked exactly as the undici path checks it (planBody and statusError of http.ts:
 * Content-Range and total size, Content-Length, ETag, the status mapping). What this path does not
 * handle — 1xx, 3xx, a missing Content-Length, any Transfer-Encoding, an odd or oversized head — ends
 * the exchange as `fallback` before any byte reached `into`, and the caller hands the request to
 * undici. The outcome is settled exactly once; after it the connection is back in the pool only when
 * its response was read to the end and the server keeps it, otherwise it is closed.
 */
import type { ByteRange, Expectation, Progress, SignedLocator } from '../core/types.js';
import { FsError, TransientError } from '../core/errors.js';
import { planBody, statusError, TRANSIENT_CODES } from './http.js';
import { parseResponseHead } from './response-head.js';
import type { Connection, ReadSink } from './socket-pool.js';

export interface RangeJob {
  readonly loc: SignedLocator;
  readonly range: ByteRange;
  readonly expect: Expectation;
  /** The request as messages name it (URL redacted). */
  readonly what: string;
  readonly into: readonly Buffer[];
  readonly onProgress?: Progress;
}

export type Outcome =
  /** The range is in `into`. `keepAliveMs`: how long the server keeps the idle connection, if it said. */
  | { readonly kind: 'done'; readonly reusable: boolean; readonly keepAliveMs?: number }
  /** Not ours to read (reason for the log); nothing was written to `into`. */
  | { readonly kind: 'fallback'; readonly reason: string }
  /** `closedUnanswered`: the connection closed before a byte of a response (the idle-close race). */
  | { readonly kind: 'failed'; readonly error: unknown; readonly closedUnanswered: boolean };

/** Scratch for bytes of a 200 before the range: discarded, so one buffer's worth at a time. */
const SCRATCH_BYTES = 1024 * 1024;

export class RangeExchange implements ReadSink {
  private phase: 'head' | 'body' | 'over' = 'head';
  /** Head bytes received so far, in conn.head. */
  private headFill = 0;
  /** Body bytes received so far. */
  private at = 0;
  private want: ByteRange = { start: 0, end: 0 };
  private total = 0;
  private reusable = false;
  private keepAliveMs: number | undefined;
  private scratch: Buffer | undefined;
  /** The buffer of `into` holding body offset `want.start + base`, and that offset. */
  private part = 0;
  private base = 0;
  private settle!: (o: Outcome) => void;

  /**
   * `release(reusable, keepAliveMs)` gives the connection back to its pool (or closes it) the moment
   * the outcome is known, inside the read that completed the body: the connection's next read must
   * land in its head buffer again.
   */
  constructor(
    private readonly conn: Connection,
    private readonly job: RangeJob,
    private readonly stallMs: number,
    private readonly release: (reusable: boolean, keepAliveMs?: number) => void,
  ) {}

  /** Send `request` on the connection and read its answer. Never rejects. */
  run(request: string, signal?: AbortSignal): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const onAbort = () => this.end({ kind: 'failed', error: signal!.reason, closedUnanswered: false });
      this.settle = (o) => {
        signal?.removeEventListener('abort', onAbort);
        resolve(o);
      };
      if (signal?.aborted) return onAbort();
      // Closed between its release and now: the same as the server closing it before answering.
      if (this.conn.destroyed) return this.failed(Object.assign(new Error('closed while idle'), { code: 'EOF' }));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.conn.hold(this, this.stallMs);
      this.conn.socket.write(request, 'latin1');
    });
  }

  nextBuffer(): Buffer {
    if (this.phase === 'head') return this.conn.head.subarray(this.headFill);
    if (this.phase === 'over') return this.conn.head;
    const { at, want } = this;
    if (at < want.start) {
      this.scratch ??= Buffer.allocUnsafe(Math.min(SCRATCH_BYTES, want.start - at));
      return this.scratch.subarray(0, Math.min(this.scratch.length, want.start - at));
    }
    return this.window(want.end - at);
  }

  received(n: number): void {
    if (this.phase === 'head') return this.headReceived(n);
    if (this.phase === 'body') this.bodyReceived(n);
  }

  failed(e: Error & { code?: string }): void {
    if (this.phase === 'over') return;
    const { what } = this.job;
    const closedUnanswered = this.phase === 'head' && this.headFill === 0 && (e.code === 'EOF' || e.code === 'ECONNRESET' || e.code === 'EPIPE');
    let error: unknown;
    if (e.code === 'STALL') {
      const when = !this.conn.connected ? 'connecting (CONNECT_TIMEOUT)' : this.phase === 'head' ? 'waiting for the response (HEADERS_TIMEOUT)' : 'in the body (BODY_TIMEOUT)';
      error = new TransientError(`${what}: no bytes for ${this.stallMs} ms ${when}`);
    } else if (this.phase === 'body') {
      const reason = e.code === 'EOF' ? 'closed' : e.code ?? e.message;
      error = new TransientError(`${what}: short body (${this.at} of ${this.total} bytes, ${reason})`, { cause: e });
    } else if (e.code === 'EOF') {
      error = new TransientError(`${what}: connection closed before a complete response`, { cause: e });
    } else {
      const transient = e.code === undefined || TRANSIENT_CODES.has(e.code);
      // Not mended by retrying: a refused certificate, an unknown host.
      error = transient ? new TransientError(`${what}: ${e.code ?? e.message}`, { cause: e }) : new FsError('EIO', `${what}: ${e.code}`, { cause: e });
    }
    this.end({ kind: 'failed', error, closedUnanswered });
  }

  private headReceived(n: number): void {
    this.headFill += n;
    const head = parseResponseHead(this.conn.head.subarray(0, this.headFill));
    if (head.kind === 'incomplete') {
      if (this.headFill === this.conn.head.length) this.end({ kind: 'fallback', reason: `a head over ${this.conn.head.length} bytes` });
      return;
    }
    if (head.kind === 'odd') return this.end({ kind: 'fallback', reason: head.reason });
    const { status, headers } = head;
    if (status < 200 || (status >= 300 && status < 400)) return this.end({ kind: 'fallback', reason: `HTTP ${status}` });
    try {
      // An error status is never waited on for its body: the connection is closed.
      if (status !== 200 && status !== 206) throw statusError(status, headers, this.job.what, this.job.loc);
      if (head.transferEncoded) return this.end({ kind: 'fallback', reason: 'Transfer-Encoding' });
      if (head.contentLength === undefined) return this.end({ kind: 'fallback', reason: 'no Content-Length' });
      ({ want: this.want, total: this.total } = planBody(this.job, status, headers));
    } catch (e) {
      return this.end({ kind: 'failed', error: e, closedUnanswered: false });
    }
    this.phase = 'body';
    // Bytes past the body in the head buffer: the server sent more than it declared, never reuse.
    this.reusable = head.keepAlive && this.headFill - head.length <= this.total;
    this.keepAliveMs = head.keepAliveMs;
    // Body bytes that came with the head: the one copy this path makes, of at most HEAD_BYTES.
    let from = head.length;
    while (from < this.headFill && this.phase === 'body') {
      const dst = this.nextBuffer();
      const len = Math.min(dst.length, this.headFill - from);
      this.conn.head.copy(dst, 0, from, from + len);
      from += len;
      this.bodyReceived(len);
    }
  }

  private bodyReceived(n: number): void {
    this.at += n;
    const { at, want } = this;
    if (at <= want.start) return;
    try {
      this.job.onProgress?.(Math.min(at, want.end) - want.start);
    } catch (e) {
      return this.end({ kind: 'failed', error: e, closedUnanswered: false });
    }
    if (at < want.end) return;
    // A 200 whose remainder is not wanted is not drained: its connection is closed.
    this.end({ kind: 'done', reusable: this.reusable && at === this.total, keepAliveMs: this.keepAliveMs });
  }

  /** The part of `into` the body's next bytes belong in, at most `max` bytes (> 0). */
  private window(max: number): Buffer {
    const offset = this.at - this.want.start;
    const { into } = this.job;
    while (offset >= this.base + into[this.part]!.length) this.base += into[this.part++]!.length;
    const buf = into[this.part]!;
    const from = offset - this.base;
    return buf.subarray(from, Math.min(buf.length, from + max));
  }

  private end(o: Outcome): void {
    if (this.phase === 'over') return;
    this.phase = 'over';
    if (o.kind === 'done') this.release(o.reusable, o.keepAliveMs);
    else this.release(false);
    this.settle(o);
  }
}
