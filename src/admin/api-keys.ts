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

/** `create` with a name an active key already has: names pick keys for `revoke`, so they are unique among active keys. */
export class DuplicateKeyNameError extends Error {
  override name = 'DuplicateKeyNameError';
  constructor(readonly keyName: string) {
    super(`an active key is already named ${keyName}: revoke it first, or choose another name`);
  }
}

export async function createApiKey(
  db: Kysely<Database>,
  name: string,
  scopes: Scope[],
  now = Date.now(),
): Promise<{ id: string; key: string }> {
  const taken = await db.selectFrom('api_keys').select('id').where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst();
  if (taken) throw new DuplicateKeyNameError(name);
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

/** What `apikey list` shows of a key: never its secret or hash. */
export interface ApiKeyView {
  id: string;
  name: string;
  scopes: string[];
  createdAt: Date;
  revokedAt: Date | null;
}

/** Every key, revoked ones too, oldest first. */
export async function listApiKeys(db: Kysely<Database>): Promise<ApiKeyView[]> {
  const rows = await db.selectFrom('api_keys').select(['id', 'name', 'scopes', 'created_at', 'revoked_at']).orderBy('created_at').orderBy('id').execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    scopes: r.scopes.split(' ').filter(Boolean),
    createdAt: new Date(Number(r.created_at)),
    revokedAt: r.revoked_at === null ? null : new Date(Number(r.revoked_at)),
  }));
}

/**
 * Revokes the active key of this name, or else the active key of this id (what `revoke`
 * took before names did). Answers the id revoked, or undefined when no active key matched.
 */
export async function revokeApiKeyByName(db: Kysely<Database>, nameOrId: string, now = Date.now()): Promise<string | undefined> {
  const active = await db
    .selectFrom('api_keys')
    .select(['id', 'name'])
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('name', '=', nameOrId), eb('id', '=', nameOrId)]))
    .execute();
  const key = active.find((k) => k.name === nameOrId) ?? active.find((k) => k.id === nameOrId);
  if (!key) return undefined;
  return (await revokeApiKey(db, key.id, now)) ? key.id : undefined;
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
