import type { Kysely } from 'kysely';
import type { DialectName } from '../connect.js';

/**
 * Sessions of the admin page (/admin/ui): the cookie holds a random id, this table only
 * its SHA-256, the API key it was opened with, the CSRF token of its forms and a one-time
 * notice for the page after a POST. Kept in the database, so every instance serves every
 * session; expired rows go with retention.
 */
export async function up(db: Kysely<unknown>, _dialect: DialectName): Promise<void> {
  await db.schema
    .createTable('admin_sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('flash', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('admin_sessions_expires').on('admin_sessions').column('expires_at').execute();
}
