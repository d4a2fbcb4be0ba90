import type { IToken } from 'amocrm-js/dist/common/Token.js';
import { z } from 'zod';
import { CredentialsRefusedError, HttpError, PermanentError } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import { MissingTokenError, type AmoTokenSet, type TokenStore } from './token-store.js';
import { AmoResponseError, withRetries, type AmoTransport, type RetryPolicy } from './transport.js';

/** What the request path needs from authentication. */
export interface AccessTokenProvider {
  /** The bearer token to send now (loaded, and refreshed first when about to expire). */
  accessToken(): Promise<string>;
  /**
   * After a 401 for `refused`: a token worth exactly one more try, or undefined when
   * there is none (a long-lived token cannot be renewed).
   */
  onUnauthorized(refused: string): Promise<string | undefined>;
}

/** amoCRM refused our OAuth credentials (bad code, spent or revoked refresh token). */
export class AmoAuthError extends CredentialsRefusedError {
  override name = 'AmoAuthError';
}

/** A long-lived token (AMO_LONG_LIVED_TOKEN): nothing to refresh, nothing to store. */
export class LongLivedToken implements AccessTokenProvider {
  constructor(private readonly token: string) {
    if (!token) throw new Error('long-lived token must not be empty');
  }
  accessToken(): Promise<string> {
    return Promise.resolve(this.token);
  }
  onUnauthorized(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }
}

const tokenResponseSchema = z.object({
  token_type: z.string(),
  expires_in: z.number().positive(),
  access_token: z.string().min(1),
  refresh_token: z.string().min(1),
});

export interface OAuthTokensOptions {
  /** amocrm-js's token holder: the current pair lives there, as in the library. */
  token: IToken;
  store: TokenStore;
  transport: AmoTransport;
  retry: RetryPolicy;
  logger: Logger;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** Refresh this long before expiry (default 60 s), so a token does not die mid-request. */
  earlyMs?: number;
}

/**
 * OAuth tokens with amocrm-js's `Token` as the in-memory holder (setValue/getValue, as
 * the library keeps them), and the token endpoint called here, beside amocrm-js.
 *
 * Note — why not amocrm-js's own `Token.fetch()/refresh()`: they build a `DomainRequest`
 * themselves rather than going through the connection, so the transport adapter cannot
 * reach them: they would (a) go over HTTPS to <domain>.amocrm.ru with no timeout,
 * whatever the base URL, (b) start one refresh per parallel request on an expired token
 * (Connection.update has no single flight), each spending the same single-use refresh
 * token, (c) never happen on a 401, and (d) persist nothing. That cannot be patched
 * correctly from outside, so POST /oauth2/access_token is sent from this module through
 * AmoTransport, and AmoClient redirects `sdk.token.fetch/refresh` here. Here: one
 * refresh at a time in the process (a shared promise), one across instances
 * (TokenStore.rotate), the new pair persisted before it is used.
 */
export class OAuthTokens implements AccessTokenProvider {
  private refreshing?: Promise<string>;
  private loading?: Promise<AmoTokenSet>;
  private readonly earlyMs: number;

  constructor(private readonly options: OAuthTokensOptions) {
    this.earlyMs = options.earlyMs ?? 60_000;
  }

  async accessToken(): Promise<string> {
    const current = await this.current();
    if (current.expiresAt - this.earlyMs > Date.now()) return current.accessToken;
    try {
      return await this.refreshFrom(current.accessToken);
    } catch (error) {
      // An early refresh that failed for a passing reason (amoCRM down, timeout) need not
      // fail the call while the held token still has some life in it.
      if (!(error instanceof PermanentError) && current.expiresAt > Date.now() + 5_000) {
        this.options.logger.warn('amo.token.refresh_deferred', { error: String(error).slice(0, 300) });
        return current.accessToken;
      }
      throw error;
    }
  }

  async onUnauthorized(refused: string): Promise<string | undefined> {
    return this.refreshFrom(refused);
  }

  /** Exchanges an authorization code (single use) for a pair and stores it. */
  async exchange(code: string): Promise<void> {
    if (!code) throw new TypeError('authorization code must not be empty');
    const pair = await this.requestToken({ grant_type: 'authorization_code', code });
    await this.options.store.save(pair);
    this.remember(pair);
    this.options.logger.info('amo.token.authorized', { expiresAt: pair.expiresAt });
  }

  /** Whether a pair is stored (or already held). */
  async hasToken(): Promise<boolean> {
    return this.memory() !== undefined || (await this.options.store.load()) !== undefined;
  }

  /** Forces a refresh of the current token (amocrm-js's `token.refresh()` lands here). */
  async refreshNow(): Promise<void> {
    const current = await this.current();
    await this.refreshFrom(current.accessToken);
  }

  private memory(): AmoTokenSet | undefined {
    const value = this.options.token.getValue();
    if (!value) return undefined;
    return {
      accessToken: value.access_token,
      refreshToken: value.refresh_token,
      expiresAt: value.expires_at ?? 0,
    };
  }

  private remember(pair: AmoTokenSet): void {
    this.options.token.setValue({
      token_type: 'Bearer',
      expires_in: Math.max(0, Math.round((pair.expiresAt - Date.now()) / 1000)),
      access_token: pair.accessToken,
      refresh_token: pair.refreshToken,
      expires_at: pair.expiresAt,
    });
  }

  private async current(): Promise<AmoTokenSet> {
    const held = this.memory();
    if (held) return held;
    this.loading ??= this.options.store.load().then((stored) => {
      if (!stored) throw new MissingTokenError();
      this.remember(stored);
      return stored;
    });
    try {
      return await this.loading;
    } finally {
      this.loading = undefined;
    }
  }

  /**
   * Single flight: every caller that finds the token expired or refused while a refresh
   * runs waits for that one refresh; a caller whose refused token was already replaced
   * in this process just takes the replacement.
   */
  private refreshFrom(stale: string): Promise<string> {
    const held = this.memory();
    if (held && held.accessToken !== stale && held.expiresAt - this.earlyMs > Date.now()) {
      return Promise.resolve(held.accessToken);
    }
    this.refreshing ??= this.rotate(stale).finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async rotate(stale: string): Promise<string> {
    const { store, logger } = this.options;
    const outcome = { spent: false };
    const pair = await store.rotate(stale, Date.now() + this.earlyMs, async (current) => {
      outcome.spent = true;
      return this.requestToken({ grant_type: 'refresh_token', refresh_token: current.refreshToken });
    });
    this.remember(pair);
    logger.info(outcome.spent ? 'amo.token.refreshed' : 'amo.token.adopted', { expiresAt: pair.expiresAt });
    return pair.accessToken;
  }

  /** POST /oauth2/access_token through the same transport (limiter, timeout, metrics). */
  private async requestToken(grant: Record<string, string>): Promise<AmoTokenSet> {
    const { transport, retry, logger, clientId, clientSecret, redirectUri } = this.options;
    const path = '/oauth2/access_token';
    const body = JSON.stringify({ client_id: clientId, client_secret: clientSecret, redirect_uri: redirectUri, ...grant });
    const requestedAt = Date.now();
    let text: string;
    let status: number;
    try {
      // Codes and refresh tokens are single use: a POST whose outcome is unknown is not
      // repeated (withRetries retries it only on 429 or when no connection was made).
      const response = await withRetries(() => transport.send({ method: 'POST', path, body }), retry, {
        idempotent: false,
        logger,
        method: 'POST',
        endpoint: path,
      });
      text = response.text;
      status = response.status;
    } catch (error) {
      if (error instanceof HttpError && error.status >= 400 && error.status < 500 && error.status !== 429) {
        throw new AmoAuthError(
          `amoCRM refused the ${grant.grant_type} grant (${error.status}): authorize the integration again. ${error.excerpt}`,
        );
      }
      throw error;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AmoResponseError('POST', path, status, 'not JSON');
    }
    const parsed = tokenResponseSchema.safeParse(json);
    if (!parsed.success) throw new AmoResponseError('POST', path, status, parsed.error.issues[0]?.message ?? 'bad token');
    return {
      accessToken: parsed.data.access_token,
      refreshToken: parsed.data.refresh_token,
      expiresAt: requestedAt + parsed.data.expires_in * 1000,
    };
  }
}
