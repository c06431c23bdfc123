/**
 * What an error says, for people (one line) and for the log (a plain record). Node and its libraries
 * often throw errors whose own `message` is empty and whose reason is elsewhere: an AggregateError from
 * a connection attempt to every address of a host (`code` ECONNREFUSED, reasons in `errors`), undici's
 * errors with their `code`, SDK errors that wrap the network error in `cause`. Both forms here follow
 * `cause` and `errors`, so the reason is never lost. Neither redacts: callers pass the result through
 * util/redact.ts (the logger does so for every record).
 */

/** Fields of library errors that are large or carry the whole request (URLs, headers): never logged. */
const BULKY = new Set(['request', 'response', '$response', 'raw', 'config', 'options', 'socket', 'agent']);
/** Causes and aggregated errors followed at most this deep (some libraries build cycles). */
const MAX_DEPTH = 6;

type ErrorLike = { message?: unknown; code?: unknown; name?: unknown; errors?: unknown; cause?: unknown };

const isObject = (e: unknown): e is ErrorLike => typeof e === 'object' && e !== null;

/** The error's own reason, one line: its message; else its aggregated errors' reasons; else its code or name. */
function ownReason(e: unknown, depth: number): string {
  if (!isObject(e)) return e === undefined || e === null ? '' : String(e);
  const message = typeof e.message === 'string' ? e.message.trim().split('\n')[0]!.trim() : '';
  if (message) return message;
  if (Array.isArray(e.errors) && e.errors.length > 0 && depth < MAX_DEPTH) {
    const inner = [...new Set(e.errors.map((x) => describeError(x, depth + 1)).filter(Boolean))];
    if (inner.length > 0) return inner.join('; ');
  }
  if (typeof e.code === 'string' && e.code) return e.code;
  return typeof e.name === 'string' && e.name !== 'Error' ? e.name : '';
}

/**
 * Whether `reason` is already in `parts`, also without its leading `what: ` segments (an error that
 * rewraps its cause's message under another prefix has said it).
 */
function said(parts: readonly string[], reason: string): boolean {
  const tails = [reason];
  for (let at = reason.indexOf(': '); at >= 0; at = reason.indexOf(': ', at + 2)) tails.push(reason.slice(at + 2));
  return tails.some((t) => t.length >= 8 && parts.some((p) => p.includes(t))) || parts.some((p) => p.includes(reason));
}

/**
 * One line saying why `e` happened: its reason, then each cause's reason not already said
 * (`list "s": connect ECONNREFUSED 127.0.0.1:9` rather than an empty string or `[object Object]`).
 */
export function describeError(e: unknown, depth = 0): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  for (let cur: unknown = e, d = depth; cur !== undefined && cur !== null && !seen.has(cur) && d < MAX_DEPTH; d++) {
    seen.add(cur);
    const reason = ownReason(cur, d);
    if (reason && !said(parts, reason)) parts.push(reason);
    cur = isObject(cur) ? cur.cause : undefined;
  }
  return parts.join(': ') || (isObject(e) ? 'unknown error' : String(e));
}

/**
 * A plain, JSON-ready record of `e` for the log: type, message (never empty when anything says why),
 * the error's own enumerable fields (code, errno, syscall, status…, without request/response bodies),
 * stack, and `cause` and `errors` as records of their own.
 */
export function errorRecord(e: unknown, depth = 0, seen: Set<unknown> = new Set()): unknown {
  if (!isObject(e)) return e;
  if (seen.has(e) || depth >= MAX_DEPTH) return { message: ownReason(e, MAX_DEPTH) || '[circular or too deep]' };
  seen.add(e);
  const ctor = (e as { constructor?: { name?: unknown } }).constructor?.name;
  const rec: Record<string, unknown> = {
    type: typeof ctor === 'string' && ctor !== 'Object' ? ctor : typeof e.name === 'string' ? e.name : 'Error',
    message: ownReason(e, depth),
  };
  for (const [k, v] of Object.entries(e)) {
    if (k in rec || k === 'cause' || k === 'errors' || k === 'stack' || BULKY.has(k) || typeof v === 'function') continue;
    rec[k] = v;
  }
  const stack = (e as { stack?: unknown }).stack;
  if (typeof stack === 'string') rec.stack = stack;
  if (e.cause !== undefined) rec.cause = errorRecord(e.cause, depth + 1, seen);
  if (Array.isArray(e.errors) && e.errors.length > 0) rec.errors = e.errors.slice(0, 10).map((x) => errorRecord(x, depth + 1, seen));
  return rec;
}
