/**
 * The S3 browser-POST endpoint that MediaHub's `form_post_url` points at (docs/providers.md#mediahub, "Uploads", step 2: "an
 * S3 POST policy, not a signed PUT"). s3rver's own POST-policy support is doubtful, so the emulator
 * serves the form itself at `{emulator}/s3-form/<bucket>/` and checks it as S3 does:
 *  - `policy` is base64 JSON `{expiration, conditions}`; `signature` is base64 HMAC-SHA1 of the base64
 *    policy under the key of `AWSAccessKeyId` (S3's signature V2 for POST; the secret is random per run);
 *  - the policy must not have expired; every condition must hold (`{field: value}` and `["eq", …]` exact,
 *    `["starts-with", "$field", prefix]`, `["content-length-range", min, max]` on the file's size);
 *  - every form field but policy, signature, AWSAccessKeyId, file and `x-ignore-*` must be covered by a
 *    condition ("Extra input fields"); field names compare case-insensitively; `file` must come last
 *    (S3 ignores what follows it; here that is refused so clients notice).
 * Errors are S3's XML bodies (`<Error><Code>…</Code><Message>…</Message></Error>`), not MediaHub's JSON.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Ctx } from '../common/server.js';

export const FORM_ACCESS_KEY = 'AKIAMEDIAHUBEMULATOR';

export interface PolicyDoc {
  expiration: string;
  conditions: (Record<string, string> | [string, string | number, string | number])[];
}

export class S3FormError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function s3ErrorXml(e: S3FormError, resource: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.code}</Code><Message>${xmlEscape(e.message)}</Message><Resource>${xmlEscape(resource)}</Resource><RequestId>${randomBytes(8).toString('hex')}</RequestId></Error>`;
}

export function postResponseXml(location: string, bucket: string, key: string, etag: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse><Location>${xmlEscape(location)}</Location><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>"${etag}"</ETag></PostResponse>`;
}

const denied = (why: string) => new S3FormError(403, 'AccessDenied', `Invalid according to Policy: ${why}`);

/** Signs and checks POST policies; one per emulator (its secret never leaves the process). */
export class PostPolicySigner {
  private readonly secret = randomBytes(32);

  sign(doc: PolicyDoc): { policy: string; signature: string } {
    const policy = Buffer.from(JSON.stringify(doc)).toString('base64');
    return { policy, signature: this.mac(policy) };
  }

  private mac(policy: string): string {
    return createHmac('sha1', this.secret).update(policy).digest('base64');
  }

  /** Throws S3FormError unless the form satisfies its signed policy. Returns the decoded policy. */
  check(fields: Map<string, string>, bucket: string, fileSize: number): PolicyDoc {
    const policy = fields.get('policy');
    const signature = fields.get('signature');
    if (!policy || !signature) throw new S3FormError(403, 'AccessDenied', 'Access Denied: policy and signature are required');
    if (fields.get('awsaccesskeyid') !== FORM_ACCESS_KEY) throw new S3FormError(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    const want = Buffer.from(this.mac(policy));
    const got = Buffer.from(signature);
    if (want.length !== got.length || !timingSafeEqual(want, got)) {
      throw new S3FormError(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
    }
    let doc: PolicyDoc;
    try {
      doc = JSON.parse(Buffer.from(policy, 'base64').toString('utf8')) as PolicyDoc;
    } catch {
      throw new S3FormError(400, 'InvalidPolicyDocument', 'Invalid Policy: Invalid JSON.');
    }
    if (!(Date.parse(doc.expiration) > Date.now())) throw denied('Policy expired.');
    const covered = new Set(['policy', 'signature', 'awsaccesskeyid', 'file']);
    const value = (name: string) => (name === 'bucket' ? bucket : fields.get(name));
    for (const c of doc.conditions) {
      const text = JSON.stringify(c);
      if (!Array.isArray(c)) {
        for (const [k, v] of Object.entries(c)) {
          covered.add(k.toLowerCase());
          if (value(k.toLowerCase()) !== v) throw denied(`Policy Condition failed: ["eq", "$${k}", "${v}"]`);
        }
        continue;
      }
      const [op, a, b] = c;
      if (op === 'content-length-range') {
        if (fileSize < Number(a) || fileSize > Number(b)) {
          throw new S3FormError(400, fileSize > Number(b) ? 'EntityTooLarge' : 'EntityTooSmall', `Your proposed upload size ${fileSize} is outside the allowed range ${a}-${b}`);
        }
        continue;
      }
      const name = String(a).replace(/^\$/, '').toLowerCase();
      covered.add(name);
      const v = value(name) ?? '';
      if ((op === 'eq' && v !== String(b)) || (op === 'starts-with' && !v.startsWith(String(b)))) throw denied(`Policy Condition failed: ${text}`);
      if (op !== 'eq' && op !== 'starts-with') throw new S3FormError(400, 'InvalidPolicyDocument', `Invalid Policy: unknown condition ${text}`);
    }
    const extra = [...fields.keys()].filter((k) => !covered.has(k) && !k.startsWith('x-ignore-'));
    if (extra.length) throw denied(`Extra input fields: ${extra.join(', ')}`);
    return doc;
  }
}

/** The fields (names lower-cased) and the file of a multipart/form-data POST. */
export async function parseForm(ctx: Ctx): Promise<{ fields: Map<string, string>; file: Buffer }> {
  const type = String(ctx.req.headers['content-type'] ?? '');
  if (!type.toLowerCase().startsWith('multipart/form-data')) {
    throw new S3FormError(412, 'PreconditionFailed', 'Bucket POST must be of the enclosure-type multipart/form-data');
  }
  let form: FormData;
  try {
    form = await new Response(await ctx.body(), { headers: { 'content-type': type } }).formData();
  } catch {
    throw new S3FormError(400, 'MalformedPOSTRequest', 'The body of your POST request is not well-formed multipart/form-data.');
  }
  const fields = new Map<string, string>();
  let file: Buffer | undefined;
  for (const [name, v] of form) {
    if (file) throw new S3FormError(400, 'InvalidArgument', `Field ${name} comes after the file field (S3 ignores it)`);
    if (name.toLowerCase() === 'file') file = typeof v === 'string' ? Buffer.from(v) : Buffer.from(await v.arrayBuffer());
    else fields.set(name.toLowerCase(), typeof v === 'string' ? v : await v.text());
  }
  if (!file) throw new S3FormError(400, 'InvalidArgument', 'POST requires exactly one file upload per request.');
  return { fields, file };
}
