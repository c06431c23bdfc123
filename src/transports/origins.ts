/**
 * Credentials stay with the origin they were configured for (docs/semantics.md, "Credentials and
 * origins"). An origin is scheme + host + port, as browsers and curl compare them.
 *
 * Invariants:
 *  - A redirect is followed to an http(s) URL only; anything else (another scheme, no Location, an
 *    unparsable one) is an error naming where it pointed (without its query string).
 *  - Once a request has left its origin, it carries none of the headers it started with: the target
 *    must be a URL that authorizes itself (a presigned or SAS URL), which is what platforms legitimately
 *    redirect downloads to. This is stricter than undici's and Go's rule (they drop only Authorization,
 *    Cookie and Proxy-Authorization): Wordbee's X-Auth-Token, API keys and session headers are
 *    credentials too, and no list of names can know every platform's.
 */
import { FsError } from '../core/errors.js';
import { redactUrl } from '../util/redact.js';

export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Redirects followed per request by the read path. */
export const MAX_REDIRECTS = 5;

export function originOf(url: string | URL): string {
  return (typeof url === 'string' ? new URL(url) : url).origin;
}

export function sameOrigin(a: string | URL, b: string | URL): boolean {
  return originOf(a) === originOf(b);
}

/** The URL a redirect from `from` points at. Throws FsError EIO when it is missing or not http(s). */
export function redirectTarget(from: URL, location: string | string[] | undefined, what: string): URL {
  const raw = Array.isArray(location) ? location[0] : location;
  if (!raw) throw new FsError('EIO', `${what}: redirect without a Location`);
  let to: URL;
  try {
    to = new URL(raw, from);
  } catch (e) {
    throw new FsError('EIO', `${what}: redirect to an invalid URL`, { cause: e });
  }
  if (to.protocol !== 'http:' && to.protocol !== 'https:') throw new FsError('EIO', `${what}: redirect to ${to.protocol} refused (http and https only)`);
  return to;
}

/** The message of a refused cross-origin request: where it pointed (no query), and what stays where. */
export function crossOriginMessage(what: string, to: string | URL, configured: string): string {
  return `${what}: the server pointed at ${redactUrl(String(to))}, another origin than the configured ${configured}; credentials are only sent to the configured origin (set the source's URL to that origin if it is the right one)`;
}
