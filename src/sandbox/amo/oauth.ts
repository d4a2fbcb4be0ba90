import { randomBytes } from 'node:crypto';
import express, { type Router } from 'express';

/**
 * amoCRM's OAuth 2.0 token endpoint, POST /oauth2/access_token, with body
 * `{client_id, client_secret, grant_type, code | refresh_token, redirect_uri}` and answer
 * `{token_type: "Bearer", expires_in, access_token, refresh_token}`
 * (developers.kommo.com/reference/get-token; amocrm.ru/developers/content/oauth/step-by-step).
 *
 * Each refresh answers a NEW refresh token and revokes the one used: presenting it again
 * fails with `"hint":"Token has been revoked"` (amocrm/amocrm-api-php#123: "occurs if you use
 * a refresh token that was already used"). The access tokens issued before keep working
 * until they expire. Failures use amoCRM's OAuth problem body:
 * `{"hint":…,"title":"Некорректный запрос","type":"https://developers.amocrm.ru/v3/errors/OAuthProblemJson","status":400,"detail":"В запросе отсутствует ряд параметров или параметры невалидны"}`
 * (hints as seen in public issue reports; amoCRM does not document them).
 */

export interface OAuthApp {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

export interface TokenPair {
  token_type: 'Bearer';
  expires_in: number;
  access_token: string;
  refresh_token: string;
}

/** amoCRM's authorization code lives 20 minutes. */
const CODE_TTL_MS = 20 * 60_000;
/** amoCRM's refresh token lives 3 months. */
const REFRESH_TTL_MS = 90 * 86_400_000;

function token(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

export class TokenStore {
  private readonly codes = new Map<string, { expiresAt: number; used: boolean }>();
  private readonly access = new Map<string, { expiresAt: number }>();
  private readonly refresh = new Map<string, { expiresAt: number; used: boolean }>();

  constructor(
    private readonly app: OAuthApp,
    private readonly accessTtlSec: number,
    private longLivedToken: string | undefined,
    private readonly now: () => number,
  ) {}

  /** The long-lived token accepted from now on (undefined: none); the previous one is refused. */
  setLongLivedToken(value: string | undefined): void {
    this.longLivedToken = value;
  }

  issueAuthorizationCode(): string {
    const code = `def50200${token(48)}`;
    this.codes.set(code, { expiresAt: this.now() + CODE_TTL_MS, used: false });
    return code;
  }

  /** A fresh access/refresh pair, as a successful exchange answers it. */
  issuePair(): TokenPair {
    const accessToken = token(64);
    const refreshToken = `def50200${token(96)}`;
    this.access.set(accessToken, { expiresAt: this.now() + this.accessTtlSec * 1000 });
    this.refresh.set(refreshToken, { expiresAt: this.now() + REFRESH_TTL_MS, used: false });
    return { token_type: 'Bearer', expires_in: this.accessTtlSec, access_token: accessToken, refresh_token: refreshToken };
  }

  isValidAccessToken(value: string): boolean {
    if (this.longLivedToken !== undefined && value === this.longLivedToken) return true;
    const entry = this.access.get(value);
    return entry !== undefined && entry.expiresAt > this.now();
  }

  /** Every access token issued so far stops working; refresh tokens and the long-lived token stay valid. */
  revokeAccessTokens(): void {
    this.access.clear();
  }

  /** The answer to a token request: [status, body]. */
  exchange(body: Record<string, unknown>): [number, Record<string, unknown>] {
    const str = (key: string): string | undefined => (typeof body[key] === 'string' ? (body[key] as string) : undefined);
    const fail = (hint: string, status = 400): [number, Record<string, unknown>] => [
      status,
      {
        hint,
        title: 'Некорректный запрос',
        type: 'https://developers.amocrm.ru/v3/errors/OAuthProblemJson',
        status,
        detail: 'В запросе отсутствует ряд параметров или параметры невалидны',
      },
    ];

    if (str('client_id') !== this.app.clientId) return fail('Check the `client_id` parameter');
    if (str('client_secret') !== this.app.clientSecret) return fail('Client authentication failed', 401);
    if (str('redirect_uri') !== undefined && str('redirect_uri') !== this.app.redirectUri) {
      return fail('Check the `redirect_uri` parameter');
    }

    const grant = str('grant_type');
    if (grant === 'authorization_code') {
      const code = str('code');
      const entry = code === undefined ? undefined : this.codes.get(code);
      if (!code || !entry) return fail('Cannot decrypt the authorization code');
      if (entry.used) return fail('Authorization code has been revoked');
      if (entry.expiresAt <= this.now()) return fail('Authorization code has expired');
      entry.used = true;
      return [200, { ...this.issuePair() }];
    }
    if (grant === 'refresh_token') {
      const presented = str('refresh_token');
      const entry = presented === undefined ? undefined : this.refresh.get(presented);
      if (!presented || !entry) return fail('Cannot decrypt the refresh token');
      if (entry.used) return fail('Token has been revoked');
      if (entry.expiresAt <= this.now()) return fail('Token has expired');
      entry.used = true;
      return [200, { ...this.issuePair() }];
    }
    return fail('The authorization grant type is not supported by the authorization server.');
  }
}

/** POST /oauth2/access_token, taking a JSON or a form body. */
export function oauthRouter(tokens: TokenStore, bodyLimit: string): Router {
  const router = express.Router();
  router.post(
    '/oauth2/access_token',
    express.json({ limit: bodyLimit }),
    express.urlencoded({ extended: false, limit: bodyLimit }),
    (req, res) => {
      const body: unknown = req.body;
      const fields = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
      const [status, answer] = tokens.exchange(fields);
      res
        .status(status)
        .type(status === 200 ? 'application/json' : 'application/problem+json')
        .send(JSON.stringify(answer));
    },
  );
  return router;
}
