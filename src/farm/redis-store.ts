/**
 * The SharedStore on Redis (node-redis): one connection for commands, one for pub/sub.
 *
 * Invariants:
 *  - Nothing waits for a connection: commands issued while disconnected fail at once (no offline
 *    queue), and the client reconnects by itself with a growing delay; the breaker (breaker.ts) turns
 *    both into fallbacks and finds the engine again with its probe.
 *  - Values are read as Buffers (blocks stay bytes; text is decoded where asked for).
 *  - `renewIf`/`deleteIf` are one Lua script each: the compare and the write are atomic.
 *  - Addresses: redis://, rediss:// (TLS), unix:///path?db=N or a plain absolute socket path.
 */
import { hostname } from 'node:os';
import { createClient, RESP_TYPES } from 'redis';
import type { Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import type { SharedStore } from './types.js';

const RENEW_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const DELETE_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/** node-redis options for one of our addresses. */
export function clientOptions(address: string): { url?: string; socket: Record<string, unknown>; database?: number } {
  const reconnectStrategy = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 8), 5_000);
  const socket = { reconnectStrategy, connectTimeout: 5_000 };
  if (address.startsWith('/') || address.startsWith('unix://')) {
    const u = address.startsWith('/') ? undefined : new URL(address);
    const path = u ? decodeURIComponent(u.pathname) : address;
    const db = u?.searchParams.get('db');
    return { socket: { ...socket, path }, ...(db ? { database: Number(db) } : {}) };
  }
  return { url: address, socket: { ...socket, ...(address.startsWith('rediss://') ? { tls: true } : {}) } };
}

function makeClient(address: string) {
  return createClient({ ...clientOptions(address), disableOfflineQueue: true }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
}

type Client = ReturnType<typeof makeClient>;

export class RedisStore implements SharedStore {
  private readonly client: Client;
  private subscriber: Client | undefined;
  private readonly probeKey: string;

  constructor(
    private readonly address: string,
    private readonly log: Logger,
    keyPrefix: string,
  ) {
    this.client = this.watch(makeClient(address), 'commands');
    this.probeKey = `${keyPrefix}probe:${hostname()}:${process.pid}`;
  }

  /**
   * Connects, waiting at most `waitMs`: node-redis keeps trying in the background until it is connected,
   * so a Redis that is down at start is found later (breaker.ts's probe notices).
   */
  async connect(waitMs: number): Promise<boolean> {
    const connected = this.client.connect().then(
      () => true,
      () => false,
    );
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), waitMs)));
    const ok = await Promise.race([connected, late]);
    clearTimeout(timer);
    if (!ok) this.log.warn({ redis: this.toString() }, 'shared tier: Redis not reachable yet; reading from the origin meanwhile');
    return ok;
  }

  private watch(c: Client, role: string): Client {
    let down = false;
    c.on('error', (e: unknown) => {
      if (down) return; // one line per outage, not one per reconnection attempt
      down = true;
      this.log.warn({ role, err: redactText(e instanceof Error ? e.message : String(e)) }, 'shared tier: Redis connection lost; reconnecting');
    });
    c.on('ready', () => {
      if (down) this.log.info({ role }, 'shared tier: Redis connection back');
      down = false;
    });
    return c;
  }

  async getBytes(key: string): Promise<Buffer | undefined> {
    const v = await this.client.get(key);
    return v ?? undefined;
  }

  async getText(key: string): Promise<string | undefined> {
    const v = await this.client.get(key);
    return v ? v.toString('utf8') : undefined;
  }

  async set(key: string, value: Buffer | string, ttlMs?: number): Promise<void> {
    await this.client.set(key, value, ttlMs ? { expiration: { type: 'PX', value: Math.max(1, Math.round(ttlMs)) } } : undefined);
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    const r = await this.client.set(key, value, { condition: 'NX', expiration: { type: 'PX', value: Math.max(1, Math.round(ttlMs)) } });
    return r !== null;
  }

  async renewIf(key: string, owner: string, ttlMs: number): Promise<boolean> {
    return Number(await this.client.eval(RENEW_IF, { keys: [key], arguments: [owner, String(Math.max(1, Math.round(ttlMs)))] })) === 1;
  }

  async deleteIf(key: string, owner: string): Promise<boolean> {
    return Number(await this.client.eval(DELETE_IF, { keys: [key], arguments: [owner] })) === 1;
  }

  async del(key: string): Promise<void> {
    await this.client.unlink(key);
  }

  async exists(key: string): Promise<boolean> {
    return (await this.client.exists(key)) === 1;
  }

  async ttl(key: string): Promise<number | undefined> {
    const t = await this.client.pTTL(key);
    return t === -2 ? undefined : t;
  }

  async incr(key: string): Promise<number> {
    return this.client.incr(key);
  }

  async hset(key: string, fields: Record<string, string>, ttlMs?: number): Promise<void> {
    if (!ttlMs) {
      await this.client.hSet(key, fields);
      return;
    }
    await this.client.multi().hSet(key, fields).pExpire(key, Math.round(ttlMs)).exec();
  }

  async hgetall(key: string): Promise<Record<string, string>> {
    const raw = (await this.client.hGetAll(key)) as unknown as Record<string, Buffer | string>;
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v.toString()]));
  }

  async hdel(key: string, field: string): Promise<void> {
    await this.client.hDel(key, field);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.client.publish(channel, message);
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<void> {
    if (!this.subscriber) {
      this.subscriber = this.watch(this.client.duplicate(), 'pub/sub');
      await this.subscriber.connect().catch(() => undefined); // reconnects by itself; subscriptions are renewed on reconnect
    }
    await this.subscriber.subscribe(channel, (m: Buffer | string) => onMessage(m.toString()));
  }

  async probe(): Promise<void> {
    await this.client.set(this.probeKey, '1', { expiration: { type: 'PX', value: 10_000 } });
  }

  async memory(): Promise<{ used: number; max: number; policy: string } | undefined> {
    const info = (await this.client.info('memory')).toString();
    const field = (name: string) => /^([^:]+):(.*)$/m.exec(info.split(/\r?\n/).find((l) => l.startsWith(`${name}:`)) ?? '')?.[2]?.trim();
    const used = Number(field('used_memory'));
    if (!Number.isFinite(used)) return undefined;
    return { used, max: Number(field('maxmemory') ?? 0), policy: field('maxmemory_policy') ?? '' };
  }

  async close(): Promise<void> {
    for (const c of [this.subscriber, this.client]) {
      if (!c) continue;
      try {
        if (c.isReady) await c.close();
        else c.destroy();
      } catch {
        c.destroy();
      }
    }
  }

  toString(): string {
    return redactText(this.address);
  }
}
