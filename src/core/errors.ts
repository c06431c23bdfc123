/**
 * Domain errors. Each carries a symbolic errno `code`; only src/fuse/ turns codes into numbers.
 * Messages must never contain secrets or signed-URL query strings (use util/redact.ts on URLs).
 */
export type ErrnoCode =
  | 'ENOENT' | 'EIO' | 'EACCES' | 'EAGAIN' | 'EROFS' | 'ENOTSUP' | 'EXDEV' | 'EISDIR' | 'ENOTDIR'
  | 'EEXIST' | 'ENOTEMPTY' | 'EINVAL' | 'EBADF' | 'ENOSPC' | 'ESTALE' | 'ENAMETOOLONG' | 'EPERM'
  | 'ENODATA';

export class FsError extends Error {
  readonly code: ErrnoCode;
  /** The HTTP status of the answer behind it, when there was one (the upload engine tells refusals by it). */
  readonly status: number | undefined;
  constructor(code: ErrnoCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = options?.status;
  }
}

/** The remote entry does not exist (404, or absent from its parent listing). */
export class NotFoundError extends FsError {
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('ENOENT', message, options);
  }
}

/** A signed URL or token was refused (401/403) or has expired: re-locate / re-authenticate, then retry. */
export class ExpiredError extends FsError {
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('EACCES', message, options);
  }
}

/** Credentials were refused even after re-authenticating. */
export class AuthError extends FsError {
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('EACCES', message, options);
  }
}

/** The remote object changed under us (ETag/size differs from the version being read). */
export class StaleError extends FsError {
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('ESTALE', message, options);
  }
}

/** Worth retrying: 5xx, 429, connection reset, timeout, short body. `retryAfterMs` honours Retry-After. */
export class TransientError extends FsError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, options?: { cause?: unknown; retryAfterMs?: number; status?: number }) {
    super('EIO', message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * The source's configuration points at nothing (a bucket or container that does not exist, an API path
 * that is not there): no retry helps until the config is fixed. Not ENOENT: the folder a reader asked
 * for is not missing, its source is broken.
 */
export class MisconfiguredError extends FsError {
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('EIO', message, options);
  }
}

/**
 * A source that has not answered once since the daemon started, and whose server cannot even be
 * connected to (refused, no such host, no route): answered at once with EIO rather than retried.
 */
export class UnreachableError extends FsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('EIO', message, options);
  }
}

/** The file exists but cannot be read now (archived, uploading, processing). */
export class UnavailableError extends FsError {}

export function isFsError(e: unknown): e is FsError {
  return e instanceof FsError;
}

/** Abort errors from signals are not failures of the remote side. */
export function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || (e as { code?: string }).code === 'ABORT_ERR');
}
