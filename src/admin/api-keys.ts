import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../db/schema.js';

/**
 * Admin API keys: `ak_<id>_<secret>`. The id finds the row, the secret is checked against
 * its stored hash in constant time, and each key carries the scopes it may use.
 */

export const SCOPES = ['orders:read', 'orders:write', 'jobs:read', 'jobs:replay', 'contacts:read', 'quota:read'] as const;
export const scopeSchema = z.enum(SCOPES);
export type Scope = z.infer<typeof scopeSchema>;

const KEY_FORMAT = /^ak_([a-f0-9]{12})_([A-Za-z0-9_-]{32,})$/;

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

export async function createApiKey(
  db: Kysely<Database>,
  name: string,
  scopes: Scope[],
  now = Date.now(),
): Promise<{ id: string; key: string }> {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(24).toString('base64url');
  await db
    .insertInto('api_keys')
    .values({ id, name, secret_hash: hash(secret), scopes: scopes.join(' '), created_at: now, revoked_at: null })
    .execute();
  return { id, key: `ak_${id}_${secret}` };
}

export async function revokeApiKey(db: Kysely<Database>, id: string, now = Date.now()): Promise<boolean> {
  const result = await db.updateTable('api_keys').set({ revoked_at: now }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** The key's id and scopes, or undefined for a malformed, unknown, wrong or revoked key. */
export async function verifyApiKey(db: Kysely<Database>, key: string): Promise<{ id: string; name: string; scopes: Set<string> } | undefined> {
  const match = KEY_FORMAT.exec(key);
  if (!match) return undefined;
  const [, id, secret] = match;
  const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id!).executeTakeFirst();
  if (!row || row.revoked_at !== null) return undefined;
  const given = Buffer.from(hash(secret!), 'hex');
  const stored = Buffer.from(row.secret_hash, 'hex');
  if (given.length !== stored.length || !timingSafeEqual(given, stored)) return undefined;
  return { id: row.id, name: row.name, scopes: new Set(row.scopes.split(' ')) };
}
