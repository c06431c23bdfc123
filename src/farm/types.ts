/**
 * The shared tier's seam: the few primitives of a key-value engine that the farm's protocols (shared
 * blocks, one fetch per block, shared metadata, upload leases, host heartbeats) are built on. Redis
 * serves it (redis-store.ts); another engine that keeps these promises could serve it instead (an
 * S3-compatible bucket for blocks, with conditional writes for claims: docs/scale.md).
 *
 * Promises an engine keeps:
 *  - Single-key operations are atomic; `setIfAbsent` is a compare-and-set (SET NX PX): of many hosts
 *    asking at once, exactly one gets true.
 *  - `renewIf`/`deleteIf` act only while the key holds `owner` (a lease or claim of someone else is
 *    never extended or dropped).
 *  - Values are bytes (`getBytes`) or text; an expired key reads as absent.
 *  - Every call may fail or hang: callers reach the engine only through GuardedStore (breaker.ts),
 *    which bounds each call and turns failures into the caller's fallback.
 */
export interface SharedStore {
  /** The stored bytes, or undefined. */
  getBytes(key: string): Promise<Buffer | undefined>;
  getText(key: string): Promise<string | undefined>;
  /** Set a value; with `ttlMs`, it expires after that many milliseconds. */
  set(key: string, value: Buffer | string, ttlMs?: number): Promise<void>;
  /** Set only when absent, expiring after `ttlMs`: true when this call set it. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Extend the expiry of `key` to `ttlMs` while it holds `owner`: true when it did. */
  renewIf(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Delete `key` while it holds `owner`: true when it did. */
  deleteIf(key: string, owner: string): Promise<boolean>;
  del(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Milliseconds until `key` expires: -1 without expiry, undefined when absent. */
  ttl(key: string): Promise<number | undefined>;
  incr(key: string): Promise<number>;
  /** Hash fields (host records, an upload's confirmed parts). */
  hset(key: string, fields: Record<string, string>, ttlMs?: number): Promise<void>;
  hgetall(key: string): Promise<Record<string, string>>;
  hdel(key: string, field: string): Promise<void>;
  publish(channel: string, message: string): Promise<void>;
  /** Messages on `channel`, also after a reconnection (messages sent while disconnected are lost). */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  /** A cheap write that shows the engine takes writes (not down, not full): the breaker's probe. */
  probe(): Promise<void>;
  /** Used memory and its limit, for `status`, when the engine tells. */
  memory(): Promise<{ used: number; max: number; policy: string } | undefined>;
  close(): Promise<void>;
}

/** Figures of the shared block tier (status document; a metrics series can be read from them). */
export interface SharedBlockStats {
  /** Blocks found in the shared tier (at once, or after waiting for another host's fetch). */
  readonly hits: number;
  /** Blocks the shared tier did not have: fetched from the origin. */
  readonly misses: number;
  /** Blocks another host was fetching that this one waited for... */
  readonly waits: number;
  /** ...and of those, how many arrived (the rest were fetched here after the wait). */
  readonly waitHits: number;
  /** Stored blocks whose header or CRC did not check: dropped and refetched. */
  readonly corrupt: number;
  /** Blocks written to the shared tier, and bytes. */
  readonly writes: number;
  readonly bytesWritten: number;
  readonly bytesRead: number;
  /** Blocks not shared because the write queue was full or the tier unavailable. */
  readonly skippedWrites: number;
}
