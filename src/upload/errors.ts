/** Errors the upload engine treats specially, and which failures are worth another attempt. */
import { AuthError, ExpiredError, FsError, MisconfiguredError, NotFoundError, StaleError, TransientError, type ErrnoCode } from '../core/errors.js';

/** The platform no longer knows the upload session (expired, aborted, parts missing at commit): begin anew. */
export class SessionLostError extends Error {}

/** Errnos of a refusal that the same request meets again (a name, an operation or a size not allowed). */
const REFUSAL_CODES: ReadonlySet<ErrnoCode> = new Set(['EACCES', 'EPERM', 'EINVAL', 'ENAMETOOLONG', 'EISDIR', 'ENOTDIR', 'EROFS', 'ENOTSUP', 'EEXIST']);

/**
 * 4xx statuses that are not a refusal of the request itself: a missing object (a folder made a moment
 * later, a stale cached id), a timeout, a conflict or lock of the moment, throttling.
 */
const PASSING_4XX: ReadonlySet<number> = new Set([404, 408, 409, 410, 412, 423, 425, 429]);

/**
 * Whether an upload attempt's failure is permanent: repeating the same upload meets the same refusal
 * until someone changes something (the name, the credential, the config, the file). Those are
 * credentials refused even after a fresh login (a read-only key: AuthError), a broken source
 * (MisconfiguredError), a refusal errno, and any other answer with a 4xx status outside PASSING_4XX
 * (a 400 "name not allowed", a 413 too large). Everything else is transient and retried with a
 * growing delay: 5xx, 429, network faults, an expired part URL (ExpiredError: a fresh one is minted),
 * a lost session, a missing object, a file that changed, and errors that carry no status.
 */
export function isPermanentFailure(e: unknown): boolean {
  if (!(e instanceof FsError)) return false;
  if (e instanceof TransientError || e instanceof ExpiredError || e instanceof NotFoundError || e instanceof StaleError) return false;
  if (e instanceof AuthError || e instanceof MisconfiguredError) return true;
  if (REFUSAL_CODES.has(e.code)) return true;
  return e.status !== undefined && e.status >= 400 && e.status < 500 && !PASSING_4XX.has(e.status);
}

/** Another host of the farm holds the upload lease of the file: not a failed attempt, a wait. */
export class LeasedElsewhereError extends Error {
  constructor(
    holder: string,
    readonly retryInMs: number,
  ) {
    super(`another host (${holder}) is uploading this file`);
  }
}
