/** Errors the upload engine treats specially. */

/** The platform no longer knows the upload session (expired, aborted, parts missing at commit): begin anew. */
export class SessionLostError extends Error {}
