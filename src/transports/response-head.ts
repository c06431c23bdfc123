/**
 * The status line and headers of an HTTP/1.1 response, parsed strictly for the fast receive path
 * (fast-http.ts): only the narrow case it handles itself is accepted, and everything else is `odd`,
 * which hands the request to undici (its llhttp is the well-tested parser for the rest of HTTP).
 *
 * Accepted: `HTTP/1.1 NNN reason`, header lines `token: value` (values of visible ASCII, tab or
 * space), at most one Content-Length value (repeats of the same value are one). Whether the body's
 * framing is one the caller reads itself (a Content-Length and no Transfer-Encoding) is the caller's
 * call: an error status is answered without reading its body whatever its framing.
 * Odd: another HTTP version, obs-fold (a continuation line), a malformed line, bare LFs, conflicting
 * or malformed Content-Lengths. (A head longer than the caller's buffer is the caller's to judge.)
 */

export type HeadValues = Record<string, string | string[]>;

export interface ResponseHead {
  readonly kind: 'head';
  readonly status: number;
  /** Lower-cased names; a repeated header's values in order. */
  readonly headers: HeadValues;
  /** Bytes of the head, its blank line included: the body starts here. */
  readonly length: number;
  /** The body's length, when the response declared one and no Transfer-Encoding overrides it. */
  readonly contentLength: number | undefined;
  /** The response has a Transfer-Encoding (chunked or other): its body is framed otherwise. */
  readonly transferEncoded: boolean;
  /** The server lets the connection be used again (HTTP/1.1 without `Connection: close`). */
  readonly keepAlive: boolean;
  /** `Keep-Alive: timeout=N` in ms: the server closes an idle connection after this long. */
  readonly keepAliveMs: number | undefined;
}

export type HeadParse = ResponseHead | { readonly kind: 'incomplete' } | { readonly kind: 'odd'; readonly reason: string };

const STATUS_LINE = /^HTTP\/1\.1 ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/;
const END = Buffer.from('\r\n\r\n', 'latin1');

const odd = (reason: string): HeadParse => ({ kind: 'odd', reason });

/** Parse the head at the start of `buf` (the bytes received so far). */
export function parseResponseHead(buf: Buffer): HeadParse {
  const end = buf.indexOf(END);
  // A head ended by bare LFs is HTTP that lenient parsers accept: not ours.
  if (end < 0) return buf.includes('\n\n', 0, 'latin1') ? odd('bare LF in the head') : { kind: 'incomplete' };
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const status = STATUS_LINE.exec(lines[0]!);
  // Reasons are categories, never the server's text: they key counters that live as long as the daemon.
  if (!status) return odd('status line');
  const headers: HeadValues = {};
  for (let i = 1; i < lines.length; i++) {
    const m = HEADER_LINE.exec(lines[i]!);
    if (!m) return odd('header line');
    const name = m[1]!.toLowerCase();
    const value = m[2]!;
    const had = headers[name];
    headers[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  const transferEncoded = headers['transfer-encoding'] !== undefined;
  let contentLength: number | undefined;
  const declared = headers['content-length'];
  if (declared !== undefined) {
    const values = new Set((Array.isArray(declared) ? declared : [declared]).flatMap((v) => v.split(',').map((s) => s.trim())));
    const [only] = values;
    if (values.size !== 1 || !/^\d{1,15}$/.test(only!)) return odd('Content-Length');
    contentLength = Number(only);
    headers['content-length'] = only!;
  }
  const connection = tokens(headers['connection']);
  return {
    kind: 'head',
    status: Number(status[1]),
    headers,
    length: end + END.length,
    contentLength: transferEncoded ? undefined : contentLength,
    transferEncoded,
    keepAlive: !connection.includes('close'),
    keepAliveMs: keepAliveTimeout(headers['keep-alive']),
  };
}

function tokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((s) => s.trim().toLowerCase());
}

function keepAliveTimeout(value: string | string[] | undefined): number | undefined {
  for (const t of tokens(value)) {
    const m = /^timeout\s*=\s*(\d+)$/.exec(t);
    if (m) return Number(m[1]) * 1000;
  }
  return undefined;
}
