import type { Kysely, Transaction } from 'kysely';
import type { Database } from './schema.js';

/** The `kv` table: small named values (sweep marks, cursors). */
type Executor = Kysely<Database> | Transaction<Database>;

export async function readKv(db: Executor, key: string): Promise<string | undefined> {
  const row = await db.selectFrom('kv').select('value').where('key', '=', key).executeTakeFirst();
  return row?.value;
}

/** Sets a value, inside the caller's transaction when given one. */
export async function writeKv(db: Executor, key: string, value: string, now = Date.now()): Promise<void> {
  await db
    .insertInto('kv')
    .values({ key, value, updated_at: now })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: now }))
    .execute();
}
