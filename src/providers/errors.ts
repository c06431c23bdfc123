/**
 * Turns storage SDK errors into FsErrors. Messages carry the operation and key and say why (the
 * service's own code and message, or the network fault), never credentials or URLs.
 *
 *  - A missing bucket or container is a MisconfiguredError (the config names it), not a missing file.
 *  - A refusal (401/403 and the SDKs' auth codes) is an AuthError; when the request carried a SAS whose
 *    `se` has passed, the message says the SAS expired (the service only says "failed to authenticate").
 *  - 408/429/5xx and network faults are TransientErrors.
 */
import { AuthError, FsError, MisconfiguredError, NotFoundError, TransientError } from '../core/errors.js';
import { redactText } from '../util/redact.js';
import { describeError } from '../util/error-text.js';

interface SdkLikeError {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  BucketName?: string;
  request?: { url?: string };
}

/** The expiry (`se`) of the SAS in the URL an Azure request went to, when it has passed. */
function expiredSas(url: string | undefined): string | undefined {
  if (!url || !url.includes('sig=')) return undefined;
  try {
    const se = new URL(url).searchParams.get('se');
    return se && Date.parse(se) < Date.now() ? se : undefined;
  } catch {
    return undefined;
  }
}

export function mapStorageError(e: unknown, what: string): FsError {
  if (e instanceof FsError) return e;
  const err = (e ?? {}) as SdkLikeError;
  const status = err.$metadata?.httpStatusCode ?? err.statusCode;
  const name = err.name && err.name !== 'Error' && err.name !== 'RestError' ? err.name : err.code ?? err.name ?? '';
  const detail = redactText(describeError(e));
  const said = name && !detail.includes(name) ? `${name}: ${detail}` : detail;
  if (/NoSuchBucket|ContainerNotFound/.test(`${name} ${err.code ?? ''}`)) {
    const which = /NoSuchBucket/.test(`${name} ${err.code ?? ''}`) ? `bucket${err.BucketName ? ` "${err.BucketName}"` : ''}` : 'container';
    return new MisconfiguredError(`${what}: the ${which} does not exist (${said})`, { cause: e });
  }
  if (status === 404 || /NoSuchKey|NotFound|BlobNotFound/.test(name)) {
    return new NotFoundError(`${what}: not found`, { cause: e, status });
  }
  if (status === 401 || status === 403 || /AccessDenied|AuthenticationFailed|AuthorizationFailure|InvalidAccessKeyId|SignatureDoesNotMatch/.test(`${name} ${err.code ?? ''}`)) {
    const se = expiredSas(err.request?.url);
    if (se) return new AuthError(`${what}: access denied: the SAS token expired at ${se} (${said})`, { cause: e, status });
    return new AuthError(`${what}: access denied (${said})`, { cause: e, status });
  }
  if (status === undefined || status === 408 || status === 429 || status >= 500 || err.$retryable || /ECONNRESET|ECONNREFUSED|ETIMEDOUT|socket|Timeout|REQUEST_SEND_ERROR/i.test(`${name} ${err.code ?? ''} ${detail}`)) {
    return new TransientError(`${what}: ${said}`, { cause: e, status });
  }
  return new FsError('EIO', `${what}: ${said}`, { cause: e, status });
}
