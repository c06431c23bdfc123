/**
 * Keeps secrets out of logs, status output and error messages. Signed URLs carry their secret in the
 * query string (SAS `sig`, `X-Amz-Signature`, tokens), so a URL is only ever shown without its query.
 */

/** `https://host/path?sig=…` → `https://host/path?…`; leaves non-URLs alone. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : `${url.slice(0, q)}?…`;
}

const SECRET_KEY = /(secret|password|passwd|token|apikey|api_key|sas|signature|authorization|key|jwt|credential|cookie)/i;

/** Deep copy of `value` with every secret-looking field replaced and every URL query removed. */
export function redactDeep(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[…]';
  if (typeof value === 'string') return /^https?:\/\//.test(value) ? redactUrl(value) : value;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && typeof v !== 'object' ? '[redacted]' : redactDeep(v, depth + 1);
    }
    return out;
  }
  return value;
}

/** Replace any URL query strings and bearer tokens inside free text (error messages from libraries). */
export function redactText(text: string): string {
  return text
    .replace(/(https?:\/\/[^\s?"'<>]+)\?[^\s"'<>]*/g, '$1?…')
    .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1[redacted]')
    .replace(/((?:sig|signature|X-Amz-Signature|X-Amz-Credential|token|apiKey|password|secret)=)[^&\s"']+/gi, '$1[redacted]');
}
