import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CookieOptions, Request } from 'express';
import { z } from 'zod';
import { type Scope, scopeSchema } from '../admin/api-keys.js';
import type { Db } from '../db/connect.js';

/**
 * Sessions of the admin page, kept in the database so that any instance serves any of
 * them (no per-process secret): the cookie carries a random id of 256 bits, which needs
 * no signature, and the table only that id's SHA-256. A session names the API key it was
 * opened with; the key's scopes and its revocation are read with every request, so
 * revoking a key (`amobridge apikey revoke`) ends its sessions at once.
 *
 * The cookie: httpOnly; SameSite=Strict (the page is never reached from another site
 * with a session, so no cross-site request carries it); Secure whenever the request came
 * over HTTPS (Express's req.secure behind the app's `trust proxy`), as the webview's;
 * Path=/admin/ui, so no other page of the host sees it.
 */

export const ADMIN_UI_PATH = '/admin/ui';
export const ADMIN_SESSION_COOKIE = 'amobridge_admin';
/** A working day; then the key is asked for again. */
export const ADMIN_SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/** A one-time notice for the page after a POST (post/redirect/get). */
export const flashSchema = z.object({
  kind: z.enum(['replayed', 'notDead', 'paused', 'resumed', 'userPaused', 'userResumed']),
  id: z.string(),
});
export type Flash = z.infer<typeof flashSchema>;

export interface AdminSession {
  idHash: string;
  keyId: string;
  keyName: string;
  scopes: ReadonlySet<Scope>;
  /** The synchronizer token of this session's forms. */
  csrfToken: string;
  expiresAt: number;
}

const hashId = (id: string) => createHash('sha256').update(id).digest('hex');

/** A fresh random token: a session id, a CSRF token. */
export const newToken = () => randomBytes(32).toString('base64url');

/** Whether two tokens are the same, in constant time; false when either is missing. */
export function sameToken(given: unknown, expected: string | undefined): boolean {
  if (typeof given !== 'string' || !expected) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function adminCookieOptions(secure: boolean, maxAge = ADMIN_SESSION_TTL_MS): CookieOptions {
  return { httpOnly: true, sameSite: 'strict', secure, path: ADMIN_UI_PATH, maxAge };
}

/** A cookie's value, unsigned (cookie-parser without a secret); undefined when absent or empty. */
export function cookieOf(req: Request, name: string): string | undefined {
  const cookies: Record<string, unknown> = req.cookies ?? {};
  const value = cookies[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** Opens a session for a verified key; answers the id for the cookie. */
export async function startAdminSession(db: Db, keyId: string, now = Date.now()): Promise<string> {
  const id = newToken();
  await db.kysely
    .insertInto('admin_sessions')
    .values({ id_hash: hashId(id), key_id: keyId, csrf_token: newToken(), flash: null, created_at: now, expires_at: now + ADMIN_SESSION_TTL_MS })
    .execute();
  return id;
}

/** The live session of this id whose key is not revoked, with the key's scopes; undefined otherwise. */
export async function loadAdminSession(db: Db, id: string, now = Date.now()): Promise<AdminSession | undefined> {
  const row = await db.kysely
    .selectFrom('admin_sessions')
    .innerJoin('api_keys', 'api_keys.id', 'admin_sessions.key_id')
    .select(['admin_sessions.id_hash', 'admin_sessions.key_id', 'admin_sessions.csrf_token', 'admin_sessions.expires_at', 'api_keys.name', 'api_keys.scopes'])
    .where('admin_sessions.id_hash', '=', hashId(id))
    .where('admin_sessions.expires_at', '>', now)
    .where('api_keys.revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row) return undefined;
  const scopes = new Set(row.scopes.split(' ').flatMap((s) => {
    const scope = scopeSchema.safeParse(s);
    return scope.success ? [scope.data] : [];
  }));
  return { idHash: row.id_hash, keyId: row.key_id, keyName: row.name, scopes, csrfToken: row.csrf_token, expiresAt: Number(row.expires_at) };
}

export async function endAdminSession(db: Db, id: string): Promise<void> {
  await db.kysely.deleteFrom('admin_sessions').where('id_hash', '=', hashId(id)).execute();
}

export async function setAdminFlash(db: Db, session: AdminSession, flash: Flash): Promise<void> {
  await db.kysely.updateTable('admin_sessions').set({ flash: JSON.stringify(flash) }).where('id_hash', '=', session.idHash).execute();
}

/**
 * The notice waiting for this session, cleared as it is read (a reload does not repeat
 * it). Cleared only if still the same, so of two pages loading at once one shows it.
 */
export async function takeAdminFlash(db: Db, session: AdminSession): Promise<Flash | undefined> {
  const row = await db.kysely.selectFrom('admin_sessions').select('flash').where('id_hash', '=', session.idHash).executeTakeFirst();
  if (!row?.flash) return undefined;
  const cleared = await db.kysely
    .updateTable('admin_sessions')
    .set({ flash: null })
    .where('id_hash', '=', session.idHash)
    .where('flash', '=', row.flash)
    .executeTakeFirst();
  if (Number(cleared.numUpdatedRows) === 0) return undefined;
  try {
    const parsed = flashSchema.safeParse(JSON.parse(row.flash));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
