import { createHash } from 'node:crypto';
import { errors, jwtVerify } from 'jose';
import { z } from 'zod';
import type { Db } from '../db/connect.js';

/**
 * Seamless sign-in (docs/architecture.md, stage 3): Company 1 opens /webview?token=<JWT> inside its
 * app. The token is HS256-signed with WEBVIEW_JWT_SECRET; the algorithm is pinned (so
 * "alg: none" and any other algorithm are refused before the signature is even looked
 * at), issuer, audience and expiry are checked with a small clock skew, `iat` is required
 * and a token older than WEBVIEW_TOKEN_MAX_AGE is refused whatever its `exp`. A token
 * signs in once, whatever its spelling: only canonical base64url is read, and the replay
 * record is its jti or, without one, the digest of its decoded signature.
 */

export interface WebviewTokenSettings {
  secret: string;
  issuer: string;
  audience: string;
  /** WEBVIEW_TOKEN_MAX_AGE: seconds after `iat` past which a token is refused. */
  maxAgeSeconds: number;
}

/** Clocks of Company 1's servers and ours may differ a little; tokens live minutes. */
export const CLOCK_SKEW_SECONDS = 30;
/** Far above any real token; a longer "token" is not worth parsing. */
export const MAX_TOKEN_LENGTH = 4096;

const claimsSchema = z.object({
  sub: z.string().min(1).max(100),
  exp: z.number(),
  iat: z.number(),
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
  /** `jti:<jti>`, or `sig:<hex>`, the SHA-256 of the decoded signature, when it carries no jti. */
  tokenId: string;
  /** Epoch ms until which the token would be accepted (the earlier of exp and iat + max age, plus the skew). */
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
  const parts = canonicalParts(token);
  if (!parts) return { ok: false, reason: 'malformed', detail: 'not a compact JWS in canonical base64url' };
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, new TextEncoder().encode(settings.secret), {
      algorithms: ['HS256'],
      issuer: settings.issuer,
      audience: settings.audience,
      clockTolerance: CLOCK_SKEW_SECONDS,
      requiredClaims: ['exp', 'sub', 'iat'],
      maxTokenAge: settings.maxAgeSeconds,
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
      tokenId: c.jti !== undefined ? `jti:${c.jti}` : `sig:${createHash('sha256').update(parts.signature).digest('hex')}`,
      acceptableUntil: (Math.min(c.exp, c.iat + settings.maxAgeSeconds) + CLOCK_SKEW_SECONDS) * 1000,
    },
  };
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * The three parts of a compact JWS, or undefined unless each is canonical base64url: no
 * padding, no whitespace, and no stray bits in the last character. A lenient decoder
 * reads `sig=`, `sig\n` or a last character differing in its unused low bits as the same
 * signature, so each such spelling would otherwise be "another" token (RFC 7515 §2
 * defines base64url without padding; RFC 4648 §3.5 lets a decoder reject non-zero pad bits).
 */
export function canonicalParts(token: string): { header: Buffer; payload: Buffer; signature: Buffer } | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const decoded: Buffer[] = [];
  for (const part of parts) {
    if (!BASE64URL.test(part)) return undefined;
    const bytes = Buffer.from(part, 'base64url');
    if (bytes.toString('base64url') !== part) return undefined;
    decoded.push(bytes);
  }
  const [header, payload, signature] = decoded as [Buffer, Buffer, Buffer];
  return { header, payload, signature };
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
