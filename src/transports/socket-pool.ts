/**
 * Keep-alive connections per origin for the fast receive path (fast-http.ts): plain `net`/`tls`
 * sockets whose reads land where their current owner says (`onread` with a buffer function), so a
 * response body can be read straight from the kernel into the block buffers that will hold it.
 *
 * Invariants:
 *  - A connection carries one request at a time; whoever holds it (a ReadSink) decides where each
 *    read lands and is told of every failure. Bytes arriving while nobody holds it (a server sending
 *    more than it declared, or talking out of turn) close it.
 *  - While nobody holds a connection, the buffer its next read lands in is its own head buffer, from
 *    the start: a sink starts reading a response head there.
 *  - At most `connectionsPerOrigin` connections per origin exist (connecting, busy or idle); more
 *    requests wait, in order, for one to be released or to close.
 *  - Every socket is bounded by `stallMs` while connecting and while held (the sink hears `STALL`), and
 *    an idle one lives `idleMs` (less when the server's Keep-Alive says it closes sooner).
 */
import { connect as netConnect, isIP, type OnReadOpts, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** Where a held connection's reads land, and who hears that it failed. */
export interface ReadSink {
  /** The buffer the next read lands in: never empty. */
  nextBuffer(): Buffer;
  /** `n` bytes landed at the start of `buf`, the buffer nextBuffer() returned last. */
  received(n: number, buf: Buffer): void;
  /** The connection failed: `code` ECONNRESET etc., `EOF` (closed by the server) or `STALL` (no bytes for stallMs). */
  failed(e: Error & { code?: string }): void;
}

/** The bytes of one response head must fit here (Node's own limit for a head is 16 KiB). */
export const HEAD_BYTES = 16 * 1024;

/** Keep-alive is not trusted closer than this to the server's own idle timeout. */
const KEEP_ALIVE_MARGIN_MS = 1000;

export interface SocketPoolOptions {
  connectionsPerOrigin: number;
  idleMs: number;
  stallMs: number;
  /** Extra TLS options (a CA for a test server); certificates are verified as by default. */
  tls?: ConnectionOptions;
}

export class Connection {
  readonly head = Buffer.allocUnsafe(HEAD_BYTES);
  readonly socket: Socket;
  /** Set once the socket is connected (and, for TLS, the handshake done). */
  connected = false;
  /** Requests this connection completed: above 0, a request on it is on a reused connection. */
  served = 0;
  private sink: ReadSink | undefined;
  private error: (Error & { code?: string }) | undefined;

  constructor(url: URL, o: SocketPoolOptions, onClose: (c: Connection) => void) {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const https = url.protocol === 'https:';
    const port = Number(url.port || (https ? 443 : 80));
    const onread: OnReadOpts = {
      buffer: () => this.sink?.nextBuffer() ?? this.head,
      callback: (n, buf) => {
        this.received(n, buf as Buffer);
        return true;
      },
    };
    // tls.connect takes `onread` too (Node 20), though @types/node does not declare it there.
    this.socket = https
      ? tlsConnect({ ...o.tls, host, port, servername: isIP(host) ? undefined : host, onread } as ConnectionOptions)
      : netConnect({ host, port, onread, noDelay: true });
    this.socket.setTimeout(o.stallMs);
    this.socket.once(https ? 'secureConnect' : 'connect', () => (this.connected = true));
    this.socket.on('timeout', () => this.fail(Object.assign(new Error('no bytes in time'), { code: 'STALL' })));
    this.socket.on('error', (e: Error) => (this.error ??= e));
    this.socket.once('close', () => {
      this.fail(this.error ?? Object.assign(new Error('closed by the server'), { code: 'EOF' }));
      onClose(this);
    });
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  /** Hand the connection's reads to `sink`, bounded by `stallMs` of silence. */
  hold(sink: ReadSink, stallMs: number): void {
    this.sink = sink;
    this.socket.setTimeout(stallMs);
  }

  /** The holder is done: reads go to the head buffer again, and silence is bounded by `idleMs`. */
  letGo(idleMs: number): void {
    this.sink = undefined;
    this.socket.setTimeout(idleMs);
  }

  destroy(): void {
    this.sink = undefined;
    this.socket.destroy();
  }

  private received(n: number, buf: Buffer): void {
    if (!this.sink) return void this.socket.destroy(); // nobody asked: the stream is out of step, never reuse it
    try {
      this.sink.received(n, buf);
    } catch (e) {
      // Never out of a socket's read callback (that would be an uncaught exception): the holder hears it.
      this.fail(Object.assign(new Error(`while receiving: ${(e as Error).message}`, { cause: e }), { code: 'EIO' }));
    }
  }

  private fail(e: Error & { code?: string }): void {
    const sink = this.sink;
    this.sink = undefined;
    this.socket.destroy();
    sink?.failed(e);
  }
}

interface Waiter {
  resolve(c: Connection): void;
  reject(e: unknown): void;
}

class OriginPool {
  readonly all = new Set<Connection>();
  readonly idle: Connection[] = [];
  readonly waiters: Waiter[] = [];
}

export class SocketPool {
  private readonly origins = new Map<string, OriginPool>();
  private closed = false;

  constructor(private readonly opts: SocketPoolOptions) {}

  /**
   * A connection to `url`'s origin: an idle one (most recently used first) unless `fresh`, else a new
   * one when the origin has room, else the next one released. `fresh` makes room by closing an idle one.
   */
  acquire(url: URL, fresh: boolean, signal?: AbortSignal): Promise<Connection> {
    if (this.closed) return Promise.reject(new Error('transport closed'));
    const key = url.origin;
    let pool = this.origins.get(key);
    if (!pool) this.origins.set(key, (pool = new OriginPool()));
    while (!fresh && pool.idle.length) {
      const c = pool.idle.pop()!;
      if (!c.destroyed) return Promise.resolve(c); // (a destroyed one leaves the list on its 'close')
    }
    if (fresh && pool.all.size >= this.opts.connectionsPerOrigin) pool.idle.shift()?.destroy();
    if (pool.all.size < this.opts.connectionsPerOrigin) return Promise.resolve(this.open(url, pool));
    return new Promise<Connection>((resolve, reject) => {
      const onAbort = () => {
        const i = pool.waiters.indexOf(waiter);
        if (i >= 0) pool.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve: (c) => (signal?.removeEventListener('abort', onAbort), resolve(c)),
        reject: (e) => (signal?.removeEventListener('abort', onAbort), reject(e)),
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      pool.waiters.push(waiter);
    });
  }

  /**
   * The request on `c` is over. `reusable`: its response was read to its end and the server keeps the
   * connection (`keepAliveMs`: for how long, if it said). Anything else closes it.
   */
  release(c: Connection, url: URL, reusable: boolean, keepAliveMs?: number): void {
    const pool = this.origins.get(url.origin);
    const idleMs = Math.min(this.opts.idleMs, keepAliveMs === undefined ? Infinity : keepAliveMs - KEEP_ALIVE_MARGIN_MS);
    if (!pool || this.closed || !reusable || c.destroyed || idleMs <= 0) {
      c.destroy(); // its 'close' frees its place for a waiter
      return;
    }
    c.served++;
    c.letGo(idleMs);
    const waiter = pool.waiters.shift();
    if (waiter) return waiter.resolve(c);
    pool.idle.push(c);
  }

  /** Close every connection, busy ones too (their requests fail); requests waiting for one fail. */
  close(): void {
    this.closed = true;
    for (const pool of this.origins.values()) {
      for (const w of pool.waiters.splice(0)) w.reject(new Error('transport closed'));
      for (const c of pool.all) c.destroy();
    }
  }

  private open(url: URL, pool: OriginPool): Connection {
    const conn = new Connection(url, this.opts, (c) => {
      pool.all.delete(c);
      const i = pool.idle.indexOf(c);
      if (i >= 0) pool.idle.splice(i, 1);
      const waiter = pool.waiters.shift();
      if (!waiter) {
        // An origin with nothing left is forgotten: signed URLs may name many hosts over a daemon's life.
        if (pool.all.size === 0 && this.origins.get(url.origin) === pool) this.origins.delete(url.origin);
        return;
      }
      if (this.closed) return waiter.reject(new Error('transport closed'));
      waiter.resolve(this.open(url, pool));
    });
    pool.all.add(conn);
    return conn;
  }
}
