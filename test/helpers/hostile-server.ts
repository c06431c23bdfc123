/**
 * Hostile servers for the hostile suite (test/contract/hostile-suite.ts) and the credential tests: the
 * fault proxy (lab/src/emulators/fault-proxy.ts) in front of a real server misbehaves on command (trickle,
 * stall, redirect, wrong Content-Length or Content-Range, malformed or huge bodies, rewritten answers),
 * and a second proxy on another origin ("elsewhere") records what reaches it.
 */
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '@assetfs/lab/emulators/fault-proxy.js';

/** Header names that carry a source's credentials on some platform or storage. */
export const CREDENTIAL_HEADERS = [
  'authorization', 'proxy-authorization', 'cookie', 'x-auth-token', 'x-auth-accountid', 'x-api-key', 'api-key',
  'x-mkio-token', 'x-ms-authorization', 'x-session-token', 'x-amz-security-token',
];

/**
 * Credentials seen in `requests`: every credential header by name, and every header (or path and query)
 * carrying one of `secrets` (configured keys, passwords, tokens). Empty when none arrived.
 */
export function credentialsSeen(requests: readonly ProxiedRequest[], secrets: readonly string[]): string[] {
  const seen: string[] = [];
  for (const r of requests) {
    for (const [name, value] of Object.entries(r.headers)) {
      const v = Array.isArray(value) ? value.join(',') : String(value ?? '');
      if (CREDENTIAL_HEADERS.includes(name.toLowerCase())) seen.push(`${r.method} ${r.path}: ${name}`);
      else if (secrets.some((s) => s && v.includes(s))) seen.push(`${r.method} ${r.path}: ${name} carries a secret`);
    }
    if (secrets.some((s) => s && `${r.path}${r.query}`.includes(s))) seen.push(`${r.method} ${r.path}: a secret in the URL`);
  }
  return seen;
}

/** Another origin that forwards to `target` (so a presigned URL still reads there) and records every request. */
export function startElsewhere(target: string): Promise<FaultProxy> {
  return startFaultProxy(target);
}

/** Bytes of `got` that differ from `want` (a length difference counts as that many wrong bytes). */
export function wrongBytes(got: Buffer, want: Buffer): number {
  let n = Math.abs(got.length - want.length);
  for (let i = 0; i < Math.min(got.length, want.length); i++) if (got[i] !== want[i]) n++;
  return n;
}
