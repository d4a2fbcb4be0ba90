import { createHash } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import { z } from 'zod';
import type { Db } from '../db/connect.js';

/**
 * Seamless sign-in (docs/architecture.md, stage 3): Company 1 opens /webview?token=<JWT> inside its
 * app. The token is HS256-signed with WEBVIEW_JWT_SECRET; the algorithm is pinned (so
 * "alg: none" and any other algorithm are refused before the signature is even looked
 * at), issuer, audience and expiry are checked with a small clock skew, and a token
 * signs in once: its jti (or, when it has none, its digest) is kept until it expires.
 */

export interface WebviewTokenSettings {
  secret: string;
  issuer: string;
  audience: string;
}

/** Clocks of Company 1's servers and ours may differ a little; tokens live minutes. */
export const CLOCK_SKEW_SECONDS = 30;
/** Far above any real token; a longer "token" is not worth parsing. */
export const MAX_TOKEN_LENGTH = 4096;

const claimsSchema = z.object({
  sub: z.string().min(1).max(100),
  exp: z.number(),
  jti: z.string().min(1).max(200).optional(),
  given_name: z.string().max(200).optional(),
  family_name: z.string().max(200).optional(),
  phone_number: z.string().max(40).optional(),
});

/** The person Company 1 vouches for, as the webview needs them. */
export interface VerifiedToken {
  /** Company 1's user id (detmirUserId in amoCRM). */
  userId: string;
  givenName: string;
  familyName: string;
  phone: string;
  /** `jti:<jti>`, or `sha256:<hex>` of the token when it carries no jti. */
  tokenId: string;
  /** Epoch ms until which the token would be accepted (exp plus the skew). */
  acceptableUntil: number;
}

export type TokenRejection =
  | 'malformed'
  | 'algorithm'
  | 'signature'
  | 'expired'
  | 'issuer'
  | 'audience'
  | 'claims'
  | 'replayed';

export type TokenCheck = { ok: true; token: VerifiedToken } | { ok: false; reason: TokenRejection; detail: string };

export async function verifyWebviewToken(token: string, settings: WebviewTokenSettings, now = Date.now()): Promise<TokenCheck> {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
    return { ok: false, reason: 'malformed', detail: `token length ${token.length}` };
  }
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, new TextEncoder().encode(settings.secret), {
      algorithms: ['HS256'],
      issuer: settings.issuer,
      audience: settings.audience,
      clockTolerance: CLOCK_SKEW_SECONDS,
      requiredClaims: ['exp', 'sub'],
      currentDate: new Date(now),
    }));
  } catch (error) {
    return { ok: false, ...classify(error) };
  }
  const claims = claimsSchema.safeParse(payload);
  if (!claims.success) {
    const detail = claims.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    return { ok: false, reason: 'claims', detail };
  }
  const c = claims.data;
  return {
    ok: true,
    token: {
      userId: c.sub,
      givenName: c.given_name?.trim() ?? '',
      familyName: c.family_name?.trim() ?? '',
      phone: c.phone_number?.trim() ?? '',
      tokenId: c.jti !== undefined ? `jti:${c.jti}` : `sha256:${createHash('sha256').update(token).digest('hex')}`,
      acceptableUntil: (c.exp + CLOCK_SKEW_SECONDS) * 1000,
    },
  };
}

function classify(error: unknown): { reason: TokenRejection; detail: string } {
  const detail = error instanceof Error ? error.message : String(error);
  if (error instanceof errors.JWTExpired) return { reason: 'expired', detail };
  if (error instanceof errors.JOSEAlgNotAllowed) return { reason: 'algorithm', detail };
  if (error instanceof errors.JWSSignatureVerificationFailed) return { reason: 'signature', detail };
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return { reason: 'issuer', detail };
    if (error.claim === 'aud') return { reason: 'audience', detail };
    return { reason: 'claims', detail };
  }
  return { reason: 'malformed', detail };
}

/**
 * Records that a verified token has signed in; false when it already had (a replay).
 * The insert is the check, so two concurrent uses of one token cannot both win. Rows of
 * tokens that can no longer be accepted anyway are cleared on the way (opportunistic:
 * sign-ins are rare enough that this costs nothing, and nothing else needs to run).
 */
export async function useToken(db: Db, token: VerifiedToken, now = Date.now()): Promise<boolean> {
  await db.kysely.deleteFrom('webview_tokens').where('expires_at', '<', now).execute();
  const inserted = await db.kysely
    .insertInto('webview_tokens')
    .values({ token_id: token.tokenId, user_id: token.userId, used_at: now, expires_at: token.acceptableUntil })
    .onConflict((oc) => oc.column('token_id').doNothing())
    .returning('token_id')
    .executeTakeFirst();
  return inserted !== undefined;
}
