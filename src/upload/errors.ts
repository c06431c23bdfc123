/** Errors the upload engine treats specially. */

/** The platform no longer knows the upload session (expired, aborted, parts missing at commit): begin anew. */
export class SessionLostError extends Error {}

/** Another host of the farm holds the upload lease of the file: not a failed attempt, a wait. */
export class LeasedElsewhereError extends Error {
  constructor(
    holder: string,
    readonly retryInMs: number,
  ) {
    super(`another host (${holder}) is uploading this file`);
  }
}
