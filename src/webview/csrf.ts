import { doubleCsrf } from 'csrf-csrf';
import type { Request, Response } from 'express';

/**
 * CSRF protection of every webview form (csrf-csrf's signed double-submit cookie): each
 * form carries a hidden `_csrf` field equal to an httpOnly cookie whose value is an HMAC
 * over the session (the hash of its id) and a random value. A POST whose field is
 * missing, differs from the cookie, or was made for another session is refused. This is
 * on top of the session cookie's SameSite=Lax, which already keeps cross-site POSTs
 * from carrying the session.
 */

export const CSRF_COOKIE = 'amobridge_csrf';
export const CSRF_FIELD = '_csrf';

export interface Csrf {
  /** The token to render into a form (sets or reuses the cookie). */
  tokenFor(req: Request, res: Response): string;
  /** Whether a POST carries a valid token for its session. */
  valid(req: Request): boolean;
}

export function createCsrf(secret: string, sessionIdentifier: (req: Request) => string | undefined): Csrf {
  const { generateCsrfToken, validateRequest } = doubleCsrf({
    getSecret: () => secret,
    // Without a session no form is rendered, and a POST is refused before it gets here.
    getSessionIdentifier: (req) => sessionIdentifier(req) ?? '',
    cookieName: CSRF_COOKIE,
    getCsrfTokenFromRequest: (req) => {
      const body: unknown = req.body;
      if (typeof body !== 'object' || body === null) return undefined;
      const value = (body as Record<string, unknown>)[CSRF_FIELD];
      return typeof value === 'string' ? value : undefined;
    },
  });
  return {
    tokenFor(req, res) {
      // Same cookie attributes as the session's (see session.ts); Secure follows the request.
      return generateCsrfToken(req, res, {
        cookieOptions: { httpOnly: true, sameSite: 'lax', secure: req.secure, path: '/webview' },
      });
    },
    valid(req) {
      return sessionIdentifier(req) !== undefined && validateRequest(req);
    },
  };
}
