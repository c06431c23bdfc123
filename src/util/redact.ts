/**
 * Keeps secrets out of logs, status output and error messages, by field name and by content.
 *
 * By content (redactText), wherever the text came from (a message, a cause, a stack, a server's body):
 *  - URLs lose their query string (signed URLs carry their secret there: SAS `sig`, `X-Amz-Signature`)
 *    and the password of `user:pass@`;
 *  - secret parameters outside URLs (`sig=`, `X-Amz-Credential=`, `password=`, a SAS token on its own);
 *  - connection-string secrets (`AccountKey=`, `SharedAccessSignature=`…);
 *  - JSON fields `access_token`, `refresh_token`, `password`, `client_secret`, `apiKey`… (also when the
 *    JSON is itself quoted inside a JSON string);
 *  - `Bearer`/`Basic`/`SharedKey` credentials and token headers (`X-Auth-Token: …`);
 *  - bare JWTs.
 * By field name (redactDeep): any field whose name says secret, at any depth.
 */
import { errorRecord } from './error-text.js';

/** `https://host/path?sig=…` → `https://host/path?…`; leaves non-URLs alone. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : `${url.slice(0, q)}?…`;
}

const SECRET_KEY = /(secret|password|passwd|token|apikey|api_key|sas|signature|authorization|key|jwt|credential|cookie)/i;

/** Names of JSON fields and headers whose values are credentials. */
const SECRET_FIELDS = 'access_token|refresh_token|id_token|client_secret|clientSecret|password|passwd|apiKey|api_key|secret|secretAccessKey|accountKey|sasToken|token|key|authorization|x-auth-token|connectionString';
/** Query/form parameters whose values are credentials or signatures. */
const SECRET_PARAMS = 'sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|awsaccesskeyid|key-pair-id|credential|token|access_token|refresh_token|id_token|client_secret|apikey|api_key|password|passwd|secret';

const RULES: ReadonlyArray<readonly [RegExp, string]> = [
  // Bare JWTs (header.payload.signature, base64url; the header always starts with `{"`, i.e. eyJ).
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, '[redacted-jwt]'],
  // The password of scheme://user:pass@host.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:"'<>]*):[^\s/?#@"'<>]*@/gi, '$1:[redacted]@'],
  // URL query strings.
  [/(https?:\/\/[^\s?#"'<>]+)\?[^\s"'<>#)]*/gi, '$1?…'],
  // Credentials of an Authorization header (schemes; Token is left alone: "Token invalid" is prose).
  [/\b(Bearer|Basic|SharedKey|SharedKeyLite|Digest)\s+[A-Za-z0-9._~+/=:-]{8,}/g, '$1 [redacted]'],
  // Connection-string secrets.
  [/\b(AccountKey|SharedAccessKey|SharedAccessSignature|AccessKey|SecretAccessKey|Password|Pwd)=[^;\s"']+/gi, '$1=[redacted]'],
  // Secret parameters anywhere (a SAS token alone, form bodies, AWS4 Credential=/Signature=).
  [new RegExp(`(?<![\\w-])(${SECRET_PARAMS})=[^&\\s"';,]+`, 'gi'), '$1=[redacted]'],
  // JSON fields, plain and escaped inside a JSON string.
  [new RegExp(`("(?:${SECRET_FIELDS})"\\s*:\\s*")(?:[^"\\\\]|\\\\.)*"`, 'gi'), '$1[redacted]"'],
  [new RegExp(`(\\\\"(?:${SECRET_FIELDS})\\\\"\\s*:\\s*\\\\")(?:(?!\\\\").)*\\\\"`, 'gi'), '$1[redacted]\\"'],
  // Inspected objects and header lines: `password: 'x'`, `X-Auth-Token: abc`.
  [new RegExp(`(\\b(?:${SECRET_FIELDS})\\s*:\\s*)'[^']*'`, 'gi'), "$1'[redacted]'"],
  [/\b(x-auth-token|x-api-key|api-key|ocp-apim-subscription-key|cookie|set-cookie|authorization)(\s*:\s*)(?!\[redacted|(?:Bearer|Basic|SharedKey|SharedKeyLite|Digest)\s)[^\s,;"']+/gi, '$1$2[redacted]'],
];

/** Remove every secret form listed above from free text (messages, stacks, bodies from servers). */
export function redactText(text: string): string {
  let out = text;
  for (const [re, by] of RULES) out = out.replace(re, by);
  return out;
}

/**
 * Deep copy of `value` fit for a log record: every string through redactText, every field whose name
 * says secret replaced, every Error turned into a record with its message, fields, stack, cause and
 * aggregated errors (error-text.ts), which are redacted the same way. Cycles and depth are bounded.
 */
export function redactDeep(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value !== 'object' || value === null) return value;
  if (depth > 12) return '[…]';
  if (value instanceof Date) return value;
  if (value instanceof URL) return redactText(value.href);
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return `[${value.byteLength} bytes]`;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  const plain = value instanceof Error ? errorRecord(value) : value;
  try {
    if (Array.isArray(plain)) return plain.map((v) => redactDeep(v, depth + 1, seen));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(plain as object)) {
      out[k] = SECRET_KEY.test(k) && (typeof v !== 'object' || v === null) ? '[redacted]' : redactDeep(v, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value); // only ancestors count as a cycle; the same object twice side by side is fine
  }
}
