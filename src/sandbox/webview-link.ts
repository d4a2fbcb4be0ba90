import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { SANDBOX_WEBVIEW_JWT } from './env.js';

export interface SandboxUser {
  /** Company 1's user id (the token's sub). */
  userId: string;
  givenName: string;
  familyName: string;
  phone: string;
}

/**
 * The link Company 1's app opens for a signed-in user: `/webview?token=<JWT>`, HS256 with
 * the sandbox secret, valid for five minutes and for one sign-in (a fresh jti each time).
 */
export async function sandboxSignInLink(bridgeUrl: string, user: SandboxUser): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ given_name: user.givenName, family_name: user.familyName, phone_number: user.phone })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user.userId)
    .setIssuer(SANDBOX_WEBVIEW_JWT.issuer)
    .setAudience(SANDBOX_WEBVIEW_JWT.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + 300)
    .setJti(randomUUID())
    .sign(new TextEncoder().encode(SANDBOX_WEBVIEW_JWT.secret));
  return `${bridgeUrl}/webview?token=${token}`;
}
