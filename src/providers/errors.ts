/** Turns storage SDK errors into FsErrors. Messages carry the operation and key, never credentials or URLs. */
import { AuthError, FsError, NotFoundError, TransientError } from '../core/errors.js';
import { redactText } from '../util/redact.js';

interface SdkLikeError {
  name?: string;
  code?: string;
  statusCode?: number;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

export function mapStorageError(e: unknown, what: string): FsError {
  if (e instanceof FsError) return e;
  const err = (e ?? {}) as SdkLikeError;
  const status = err.$metadata?.httpStatusCode ?? err.statusCode;
  const name = err.name ?? err.code ?? '';
  const detail = redactText(String(err.message ?? name ?? e)).split('\n')[0];
  if (status === 404 || /NoSuchKey|NotFound|BlobNotFound|ContainerNotFound|NoSuchBucket/.test(name)) {
    return new NotFoundError(`${what}: not found`, { cause: e });
  }
  if (status === 401 || status === 403 || /AccessDenied|AuthenticationFailed|InvalidAccessKeyId|SignatureDoesNotMatch/.test(name)) {
    return new AuthError(`${what}: access denied (${name || status})`, { cause: e });
  }
  if (status === undefined || status === 408 || status === 429 || status >= 500 || err.$retryable || /ECONNRESET|ECONNREFUSED|ETIMEDOUT|socket|Timeout|REQUEST_SEND_ERROR/i.test(`${name} ${err.code ?? ''} ${detail}`)) {
    return new TransientError(`${what}: ${detail}`, { cause: e, status });
  }
  return new FsError('EIO', `${what}: ${detail}`, { cause: e });
}
