import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../connect.js';

/**
 * Retention (src/db/retention.ts): when a final order's personal data was removed, and
 * the indexes that let each rule find its next batch without scanning a whole table. The
 * partial indexes' predicates are repeated literally by the queries (SQLite matches them
 * by text).
 */
export async function up(db: Kysely<unknown>, _dialect: DialectName): Promise<void> {
  // Set when the snapshot lost its customer; a later write (updated_at) makes it due again.
  await db.schema.alterTable('orders').addColumn('pii_purged_at', 'bigint').execute();
  await sql`create index orders_pii_kept on orders (updated_at) where pii_purged_at is null or pii_purged_at < updated_at`.execute(db);
  // Bodies to empty, and rows (emptied or not) to delete once their key is no longer needed.
  await sql`create index inbox_body_kept on inbox (received_at) where body <> ''`.execute(db);
  await sql`create index inbox_received on inbox (received_at)`.execute(db);
  await sql`create index jobs_done on jobs (updated_at) where status = 'done'`.execute(db);
}
