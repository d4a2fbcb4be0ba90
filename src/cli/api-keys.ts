import { createApiKey, revokeApiKey, SCOPES, scopeSchema } from '../admin/api-keys.js';
import { withDatabase } from './database.js';
import { UsageError } from './usage-error.js';

/** `amobridge apikey create <name> <scope>...`: the key is printed once and stored hashed. */
export function createKey(config: { DATABASE_URL: string }, [name, ...rawScopes]: string[]): Promise<number> {
  const scopes = rawScopes.map((s) => scopeSchema.safeParse(s));
  if (!name || scopes.length === 0 || scopes.some((s) => !s.success)) {
    throw new UsageError(`apikey create needs a name and scopes from: ${SCOPES.join(', ')}`);
  }
  return withDatabase(config, async (db) => {
    const created = await createApiKey(db.kysely, name, scopes.map((s) => s.data!));
    process.stdout.write(`${created.key}\n(id ${created.id}; the key is not shown again)\n`);
    return 0;
  });
}

/** `amobridge apikey revoke <id>`. */
export function revokeKey(config: { DATABASE_URL: string }, id: string | undefined): Promise<number> {
  if (!id) throw new UsageError('apikey revoke needs the key id');
  return withDatabase(config, async (db) => {
    const ok = await revokeApiKey(db.kysely, id);
    process.stdout.write(ok ? `key ${id} revoked\n` : `no active key ${id}\n`);
    return ok ? 0 : 1;
  });
}
