import { createApiKey, listApiKeys, revokeApiKeyByName, SCOPES, scopeSchema } from '../admin/api-keys.js';
import { withDatabase } from './database.js';
import { UsageError } from './usage-error.js';

/** `amobridge apikey create <name> <scope>...`: the key is printed once and stored hashed. */
export function createKey(config: { DATABASE_URL: string }, [name, ...rawScopes]: string[]): Promise<number> {
  const scopes = rawScopes.map((s) => scopeSchema.safeParse(s));
  if (!name || scopes.length === 0 || scopes.some((s) => !s.success)) {
    throw new UsageError(`apikey create needs a name and scopes from: ${SCOPES.join(', ')}`);
  }
  return withDatabase(config, async (db) => {
    // A name an active key has is refused (DuplicateKeyNameError): one line on stderr, exit 2.
    const created = await createApiKey(db.kysely, name, scopes.map((s) => s.data!));
    process.stdout.write(`${created.key}\n(id ${created.id}; the key is not shown again)\n`);
    return 0;
  });
}

/** `amobridge apikey list`: every key with its scopes and dates; never a secret or a hash. */
export function listKeys(config: { DATABASE_URL: string }): Promise<number> {
  return withDatabase(config, async (db) => {
    const keys = await listApiKeys(db.kysely);
    if (keys.length === 0) {
      process.stdout.write('no API keys\n');
      return 0;
    }
    const rows = [
      ['NAME', 'ID', 'SCOPES', 'CREATED', 'REVOKED'],
      ...keys.map((k) => [k.name, k.id, k.scopes.join(','), k.createdAt.toISOString(), k.revokedAt?.toISOString() ?? '-']),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const row of rows) process.stdout.write(`${row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i]!) : cell)).join('  ')}\n`);
    return 0;
  });
}

/** `amobridge apikey revoke <name>` (or the key's id). */
export function revokeKey(config: { DATABASE_URL: string }, nameOrId: string | undefined): Promise<number> {
  if (!nameOrId) throw new UsageError('apikey revoke needs the key\'s name (or its id)');
  return withDatabase(config, async (db) => {
    const id = await revokeApiKeyByName(db.kysely, nameOrId);
    process.stdout.write(id ? `key ${nameOrId === id ? id : `${nameOrId} (id ${id})`} revoked\n` : `no active key ${nameOrId}\n`);
    return id ? 0 : 1;
  });
}
