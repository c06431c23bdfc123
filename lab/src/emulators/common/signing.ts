/**
 * What the emulators sign: access tokens (JWT-shaped, HS256) and signed URLs (HMAC over the path and
 * the expiry, never over Range, so any range of a signed URL works until it expires).
 * One `Signer` per emulator instance; a fresh random secret each start, so nothing outlives the process.
 * `revokeAll()` makes every token issued so far fail as expired (the "expired token" fault).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export type Verdict<T> = { ok: true; claims: T } | { ok: false; reason: 'invalid' | 'expired' };

export class Signer {
  private readonly secret = randomBytes(32);
  /** Tokens of an earlier epoch are treated as expired (revokeAll() starts a new one). */
  private epoch = 0;

  private mac(text: string): Buffer {
    return createHmac('sha256', this.secret).update(text).digest();
  }

  /** A JWT-shaped HS256 token carrying `claims` plus iat/exp (seconds, with ms precision kept in `expMs`). */
  issue<T extends object>(claims: T, ttlMs: number): string {
    const now = Date.now();
    const payload = { ...claims, epoch: this.epoch, iat: Math.floor(now / 1000), iatMs: now, exp: Math.floor((now + ttlMs) / 1000), expMs: now + ttlMs, jti: randomBytes(6).toString('hex') };
    const head = `${b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64u(JSON.stringify(payload))}`;
    return `${head}.${b64u(this.mac(head))}`;
  }

  verify<T extends object>(token: string | undefined): Verdict<T & { expMs: number }> {
    const parts = (token ?? '').split('.');
    if (parts.length !== 3) return { ok: false, reason: 'invalid' };
    const want = this.mac(`${parts[0]}.${parts[1]}`);
    const got = Buffer.from(parts[2]!, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, reason: 'invalid' };
    let claims: T & { expMs: number; iatMs: number; epoch: number };
    try {
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'invalid' };
    }
    if (Date.now() >= claims.expMs || claims.epoch < this.epoch) return { ok: false, reason: 'expired' };
    return { ok: true, claims };
  }

  /** `?se=<epoch ms>&sig=<hmac(path|se)>` for `path` (the URL path, decoded form as the server sees it). */
  signPath(path: string, ttlMs: number): string {
    const se = Date.now() + ttlMs;
    return `se=${se}&sig=${b64u(this.mac(`${path}\n${se}`))}`;
  }

  verifyPath(path: string, query: URLSearchParams): 'ok' | 'invalid' | 'expired' {
    const se = Number(query.get('se'));
    const sig = query.get('sig') ?? '';
    if (!Number.isFinite(se) || !sig) return 'invalid';
    const want = this.mac(`${path}\n${se}`);
    const got = Buffer.from(sig, 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) return 'invalid';
    return Date.now() >= se ? 'expired' : 'ok';
  }

  revokeAll(): void {
    this.epoch++;
  }
}

export function bearer(auth: string | string[] | undefined): string | undefined {
  const v = Array.isArray(auth) ? auth[0] : auth;
  const m = v ? /^Bearer\s+(.+)$/i.exec(v.trim()) : null;
  return m?.[1];
}
