import { HttpError } from '../lib/http-error.js';
import { AmoAuthError } from './auth.js';
import { MissingTokenError } from './token-store.js';

export type AmoAuthKind = 'long-lived' | 'oauth';

/**
 * What a person must do when amoCRM refuses the bridge, from the error that ended a
 * request (after any refresh it was worth): the variable to change or the OAuth step to
 * run. Undefined for errors that are not a refusal.
 */
export function amoRefusalFix(error: unknown, auth: AmoAuthKind): string | undefined {
  if (error instanceof MissingTokenError) {
    return "no amoCRM OAuth token is stored: run `amobridge oauth <code>` with an authorization code from the integration's settings";
  }
  if (error instanceof AmoAuthError) {
    return 'amoCRM refused the OAuth refresh token: run `amobridge oauth <code>` with a new authorization code (and check AMO_CLIENT_ID, AMO_CLIENT_SECRET, AMO_REDIRECT_URI)';
  }
  if (!(error instanceof HttpError) || error.service !== 'amocrm') return undefined;
  if (error.status === 401) {
    return auth === 'long-lived'
      ? 'AMO_LONG_LIVED_TOKEN was refused by amoCRM: issue a new long-lived token'
      : 'amoCRM refused a freshly refreshed OAuth access token: run `amobridge oauth <code>` to authorize the integration again';
  }
  if (error.status === 403) {
    // amoCRM also answers 403 to an integration it blocked for breaking the rate limit.
    return auth === 'long-lived'
      ? 'amoCRM answered 403 Forbidden to AMO_LONG_LIVED_TOKEN: check the integration is not blocked, or issue a new long-lived token'
      : 'amoCRM answered 403 Forbidden: check the integration is not blocked, then run `amobridge oauth <code>` if its access was withdrawn';
  }
  return undefined;
}
