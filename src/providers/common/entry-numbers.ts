/**
 * Sizes and modification times from a server, checked before they reach a RemoteEntry. Every provider
 * builds its entries' numbers here (docs/semantics.md "Numbers from servers").
 *
 * Believed: a size that is a whole number of bytes from 0 to 1 PiB (numbers, digit strings, bigints);
 * a time from 1980 to a day past our clock (Date objects, epoch-ms numbers, strings Date.parse reads).
 * Anything else — negative, fractional, NaN, 2^64−1, 1970, year 9999, garbage — is unknown, and so is
 * an absent size:
 *  - unknown size: the entry says size 0 and is unreadable (EIO, naming what the server sent). A size
 *    is what reads are cut and checked by, so a file without one cannot be read correctly; it shows up
 *    again once the server sends a sane size (the next listing after the metadata TTL).
 *  - unknown time: RemoteEntry.mtimeMs is UNKNOWN_MTIME (0); the VFS shows the mount's start for it.
 * A bad number is logged once per (entry, field, value), however often the entry is listed again.
 */
import { LRUCache } from 'lru-cache';
import type { Ref, Unreadable } from '../../core/types.js';
import type { Logger } from '../../util/logger.js';

/** RemoteEntry.mtimeMs when the server gave no usable time. */
export const UNKNOWN_MTIME = 0;
/** The largest size believed: 1 PiB (an S3 object ends at 50 TB, an Azure block blob at 190.7 TiB). */
export const MAX_SIZE = 2 ** 50;
/** The earliest time believed: none of these platforms held a file before; 0, and seconds read as ms, land in 1970. */
export const MIN_TIME_MS = Date.UTC(1980, 0, 1);
/** How far past our clock a server's time may be (its clock may run ahead of ours). */
export const FUTURE_SLACK_MS = 86_400_000;

export type Checked = { ok: true; value: number } | { ok: false; why: string };

const absent = (v: unknown) => v === undefined || v === null || v === '';
const shown = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v.slice(0, 64)) : v instanceof Date ? `Date(${v.getTime()})` : String(v));

/** A size in bytes, or why not. */
export function checkSize(raw: unknown): Checked {
  if (absent(raw)) return { ok: false, why: 'no size' };
  let n: number;
  if (typeof raw === 'number') n = raw;
  else if (typeof raw === 'bigint') n = raw <= BigInt(MAX_SIZE) && raw >= 0n ? Number(raw) : Number.NaN;
  else if (typeof raw === 'string' && /^\s*\d+\s*$/.test(raw)) n = Number(raw);
  else return { ok: false, why: `size ${shown(raw)}` };
  if (!Number.isInteger(n) || n < 0 || n > MAX_SIZE) return { ok: false, why: `size ${shown(raw)}` };
  return { ok: true, value: n };
}

/** A modification time in epoch ms, or why not. */
export function checkTime(raw: unknown, now = Date.now()): Checked {
  if (absent(raw)) return { ok: false, why: 'no time' };
  const t = raw instanceof Date ? raw.getTime() : typeof raw === 'number' ? raw : typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  if (!Number.isFinite(t) || t < MIN_TIME_MS || t > now + FUTURE_SLACK_MS) return { ok: false, why: `time ${shown(raw)}` };
  return { ok: true, value: Math.trunc(t) };
}

export interface FileNumbers {
  readonly size: number;
  readonly mtimeMs: number;
  readonly unreadable?: Unreadable;
}

export class EntryNumbers {
  private logged: LRUCache<string, true> | undefined;

  /** `what` names the source in log lines (`s3 source "media"`). */
  constructor(private readonly opts: { log: Logger; what: string }) {}

  /**
   * Size, mtime and — when the size is unusable — why the file cannot be read, to spread into a file
   * entry. A platform's own reason (archived, processing) spread after it takes precedence.
   */
  file(ref: Ref, name: string, raw: { size: unknown; mtime: unknown }): FileNumbers {
    const size = checkSize(raw.size);
    const mtimeMs = this.mtime(ref, name, raw.mtime);
    if (size.ok) return { size: size.value, mtimeMs };
    this.warn(ref, name, 'size', raw.size, size.why);
    const reason = `the server sent ${size.why} for this file; it cannot be read until the server sends a valid size`;
    return { size: 0, mtimeMs, unreadable: { code: 'EIO', reason } };
  }

  /** An entry's mtime, UNKNOWN_MTIME when the server sent none or a bad one (only a bad one is logged). */
  mtime(ref: Ref, name: string, raw: unknown): number {
    if (absent(raw)) return UNKNOWN_MTIME;
    const t = checkTime(raw);
    if (t.ok) return t.value;
    this.warn(ref, name, 'mtime', raw, t.why);
    return UNKNOWN_MTIME;
  }

  private warn(ref: Ref, name: string, field: 'size' | 'mtime', raw: unknown, why: string): void {
    this.logged ??= new LRUCache<string, true>({ max: 10_000 });
    const key = `${ref}\0${field}\0${shown(raw)}`;
    if (this.logged.has(key)) return;
    this.logged.set(key, true);
    const shownAs = field === 'size' ? 'listed with size 0 and unreadable (EIO)' : "shown with the mount's start time";
    this.opts.log.warn({ ref, name, field, value: shown(raw) }, `${this.opts.what}: "${name}": the server sent ${why}; ${shownAs}`);
  }
}
