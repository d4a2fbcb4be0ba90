import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { CookieOptions, Request } from 'express';
import type { Db } from '../db/connect.js';
import type { VerifiedToken } from './seamless-auth.js';

/**
 * Webview sessions, kept on the server: the cookie carries only a random id, signed
 * (cookie-parser, a key derived from SESSION_SECRET), and the database only that id's
 * SHA-256. Signing out deletes the row, so a copied cookie stops working at once; the
 * user's name and phone never travel in a cookie.
 *
 * The cookie: httpOnly (no script reads it); SameSite=Lax, because Company 1's app opens
 * the page as a top-level document in its webview, where Lax cookies are first-party
 * and survive the sign-in redirect, while a cross-site POST (CSRF) does not carry them;
 * Secure whenever the request came over HTTPS (Express's req.secure, which trusts
 * X-Forwarded-Proto from a proxy on loopback, per the app's `trust proxy`); Path=/webview,
 * so nothing else on the host ever sees it. None would be needed only if the page were
 * framed inside another site's page, which the Content-Security-Policy forbids anyway.
 */

export const SESSION_COOKIE = 'amobridge_session';
/** A working session in the app; Company 1 signs the user in afresh whenever it reopens the page. */
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/** Who a session is for: what a verified token (or a confirmed pending sign-in) says. */
export type SessionUser = Pick<VerifiedToken, 'userId' | 'givenName' | 'familyName' | 'phone'>;

/** How long "Continue as …?" waits for its confirmation. */
export const PENDING_SIGNIN_TTL_MS = 5 * 60 * 1000;

export interface WebviewSession {
  /** SHA-256 of the session id: also what CSRF tokens are bound to. */
  idHash: string;
  userId: string;
  givenName: string;
  familyName: string;
  phone: string;
  expiresAt: number;
}

/** One key per purpose, all derived from SESSION_SECRET. */
export function deriveKey(secret: string, purpose: 'cookie' | 'csrf'): string {
  return createHmac('sha256', secret).update(`amobridge/webview/${purpose}`).digest('base64url');
}

const hashId = (id: string) => createHash('sha256').update(id).digest('hex');

export function sessionCookieOptions(secure: boolean): CookieOptions {
  return { httpOnly: true, sameSite: 'lax', secure, path: '/webview', signed: true, maxAge: SESSION_TTL_MS };
}

/** The session id from the signed cookie; undefined when absent or its signature fails. */
export function sessionIdOf(req: Request): string | undefined {
  const signed: Record<string, unknown> = req.signedCookies ?? {};
  const value = signed[SESSION_COOKIE];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

export async function startSession(db: Db, user: SessionUser, now = Date.now()): Promise<string> {
  const id = randomBytes(32).toString('base64url');
  // Opportunistic cleanup, as for used tokens.
  await db.kysely.deleteFrom('webview_sessions').where('expires_at', '<', now).execute();
  await db.kysely
    .insertInto('webview_sessions')
    .values({
      id_hash: hashId(id),
      user_id: user.userId,
      given_name: user.givenName,
      family_name: user.familyName,
      phone: user.phone,
      created_at: now,
      expires_at: now + SESSION_TTL_MS,
    })
    .execute();
  return id;
}

export async function loadSession(db: Db, id: string, now = Date.now()): Promise<WebviewSession | undefined> {
  const row = await db.kysely
    .selectFrom('webview_sessions')
    .selectAll()
    .where('id_hash', '=', hashId(id))
    .where('expires_at', '>', now)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    idHash: row.id_hash,
    userId: row.user_id,
    givenName: row.given_name,
    familyName: row.family_name,
    phone: row.phone,
    expiresAt: row.expires_at,
  };
}

export async function endSession(db: Db, id: string): Promise<void> {
  await db.kysely.deleteFrom('webview_sessions').where('id_hash', '=', hashId(id)).execute();
}

/**
 * A sign-in link for another user was opened in this session: its token is spent, and the
 * user it vouched for waits, bound to this session, until the user confirms ("Continue as
 * …?") or PENDING_SIGNIN_TTL_MS passes. A newer link replaces an older one.
 */
export async function rememberPendingSignIn(db: Db, session: WebviewSession, user: SessionUser, now = Date.now()): Promise<void> {
  await db.kysely.deleteFrom('webview_pending_signins').where('expires_at', '<', now).execute();
  const row = {
    user_id: user.userId,
    given_name: user.givenName,
    family_name: user.familyName,
    phone: user.phone,
    created_at: now,
    expires_at: now + PENDING_SIGNIN_TTL_MS,
  };
  await db.kysely
    .insertInto('webview_pending_signins')
    .values({ session_hash: session.idHash, ...row })
    .onConflict((oc) => oc.column('session_hash').doUpdateSet(row))
    .execute();
}

/**
 * Takes (once) the pending sign-in of this session for `userId`, the user the confirmed
 * form named: a link opened in between for someone else is not what the user confirmed.
 */
export async function takePendingSignIn(db: Db, session: WebviewSession, userId: string, now = Date.now()): Promise<SessionUser | undefined> {
  const row = await db.kysely
    .deleteFrom('webview_pending_signins')
    .where('session_hash', '=', session.idHash)
    .where('user_id', '=', userId)
    .where('expires_at', '>', now)
    .returning(['user_id', 'given_name', 'family_name', 'phone'])
    .executeTakeFirst();
  return row && { userId: row.user_id, givenName: row.given_name, familyName: row.family_name, phone: row.phone };
}
