/**
 * A SharedStore whose every call goes through the circuit breaker (breaker.ts): bounded in time, and
 * failing at once while the engine is down, slow or full. Callers catch SharedUnavailableError and
 * answer their fallback (a miss, no claim, no lease news); `quiet` does that in one line.
 */
import type { SharedStore } from './types.js';
import type { CircuitBreaker } from './breaker.js';

export class GuardedStore implements SharedStore {
  constructor(
    private readonly engine: SharedStore,
    readonly breaker: CircuitBreaker,
  ) {}

  get available(): boolean {
    return this.breaker.available;
  }

  getBytes(key: string) {
    return this.breaker.run(() => this.engine.getBytes(key));
  }
  getText(key: string) {
    return this.breaker.run(() => this.engine.getText(key));
  }
  set(key: string, value: Buffer | string, ttlMs?: number) {
    return this.breaker.run(() => this.engine.set(key, value, ttlMs));
  }
  setIfAbsent(key: string, value: string, ttlMs: number) {
    return this.breaker.run(() => this.engine.setIfAbsent(key, value, ttlMs));
  }
  renewIf(key: string, owner: string, ttlMs: number) {
    return this.breaker.run(() => this.engine.renewIf(key, owner, ttlMs));
  }
  deleteIf(key: string, owner: string) {
    return this.breaker.run(() => this.engine.deleteIf(key, owner));
  }
  del(key: string) {
    return this.breaker.run(() => this.engine.del(key));
  }
  exists(key: string) {
    return this.breaker.run(() => this.engine.exists(key));
  }
  ttl(key: string) {
    return this.breaker.run(() => this.engine.ttl(key));
  }
  incr(key: string) {
    return this.breaker.run(() => this.engine.incr(key));
  }
  hset(key: string, fields: Record<string, string>, ttlMs?: number) {
    return this.breaker.run(() => this.engine.hset(key, fields, ttlMs));
  }
  hgetall(key: string) {
    return this.breaker.run(() => this.engine.hgetall(key));
  }
  hdel(key: string, field: string) {
    return this.breaker.run(() => this.engine.hdel(key, field));
  }
  publish(channel: string, message: string) {
    return this.breaker.run(() => this.engine.publish(channel, message));
  }
  /** Not bounded: a subscription lives as long as the daemon and survives reconnections. */
  subscribe(channel: string, onMessage: (message: string) => void) {
    return this.engine.subscribe(channel, onMessage);
  }
  probe() {
    return this.breaker.run(() => this.engine.probe());
  }
  memory() {
    return this.breaker.run(() => this.engine.memory());
  }
  close() {
    this.breaker.close();
    return this.engine.close();
  }
}

/** `p`'s value, or `fallback` when the shared tier failed it (the failure is the breaker's to count). */
export async function quiet<T>(p: Promise<T>, fallback: T): Promise<T> {
  try {
    return await p;
  } catch {
    return fallback;
  }
}
