/**
 * `metrics.listen` addresses: `host:port`, an IPv6 host in brackets (`[::1]:9464`). The TCP listener
 * is loopback-only unless `metrics.allowRemote` says otherwise; this decides what loopback is.
 */
import { isIP } from 'node:net';

export interface ListenAddress {
  /** Without brackets. */
  readonly host: string;
  readonly port: number;
}

export function parseListen(listen: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`metrics.listen: expected host:port (e.g. 127.0.0.1:9464 or [::1]:9464), got ${JSON.stringify(listen)}`);
  return { host: m[1] ?? m[2]!, port };
}

/** Whether `host` can only be reached from this machine: 127.0.0.0/8, ::1 (also IPv4-mapped), localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.split('.')[0] === '127';
  if (isIP(h) !== 6) return false;
  // The URL parser writes IPv6 addresses in their shortest form (IPv4-mapped ones in hex).
  const short = new URL(`http://[${h}]/`).hostname;
  return short === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(short);
}

export function isLoopbackListen(listen: string): boolean {
  try {
    return isLoopbackHost(parseListen(listen).host);
  } catch {
    return true; // a malformed address is reported by its own check, not as a remote one
  }
}
