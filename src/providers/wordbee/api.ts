/**
 * The Wordbee API client (docs/providers.md#wordbee): JSON over HTTP with an `X-Auth-Token` session.
 *
 * Invariants:
 *  - One login at a time (TokenSession); a token is renewed before Wordbee's 30 idle minutes run out
 *    (IDLE_RENEW_MS is its life for the margin rule of common/expiring.ts).
 *  - Wordbee answers an expired token with 400 "Token invalid or expired.": that counts as a refusal
 *    (log in again, once), beside 401/403.
 */
import { FsError } from '../../core/errors.js';
import type { SourceConfigOf } from '../../config/schema.js';
import type { NetBounds } from '../../transports/bounds.js';
import { ApiClient, TokenSession, type ApiMeter } from '../common/api-client.js';

/** How long a token is trusted: Wordbee drops one after 30 idle minutes. */
export const IDLE_RENEW_MS = 25 * 60_000;

export class WordbeeApi {
  readonly http: ApiClient;
  readonly session: TokenSession;

  constructor(private readonly cfg: SourceConfigOf<'wordbee'>, net?: NetBounds, meter?: ApiMeter) {
    this.session = new TokenSession(
      async (signal) => ({ token: await this.login(signal), expiresInMs: IDLE_RENEW_MS }),
      (token) => ({ 'X-Auth-Token': token, 'X-Auth-AccountId': cfg.accountId }),
    );
    this.http = new ApiClient({
      baseUrl: cfg.baseUrl,
      what: `wordbee source "${cfg.name}"`,
      auth: this.session,
      bounds: net,
      meter,
      isAuthFailure: (status, text) => status === 400 && /token/i.test(text),
    });
  }

  private async login(signal?: AbortSignal): Promise<string> {
    const r = await this.http.send({ method: 'POST', path: 'auth/token', json: { accountid: this.cfg.accountId, key: this.cfg.apiKey }, login: true, signal });
    let token = r.text.trim();
    if (token.startsWith('"')) token = JSON.parse(token) as string; // a JSON string, or the bare token
    if (!token) throw new FsError('EACCES', `wordbee source "${this.cfg.name}": login answered no token`);
    return token;
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
