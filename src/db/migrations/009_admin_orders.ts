import { type Kysely, sql } from 'kysely';
import { searchFieldsOf } from '../../sync/order-search.js';
import type { DialectName } from '../connect.js';

/**
 * The admin console's orders (issue 12): search fields derived from each order's snapshot
 * (backfilled here), pauses of an order or of all of a user's orders, and the order log,
 * an append-only record of what the worker did and decided about each order (its
 * timeline's part that no other table keeps). No names or phones in the log.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  await db.schema.alterTable('orders').addColumn('search_name', 'text').execute();
  await db.schema.alterTable('orders').addColumn('phone_digits', 'text').execute();
  await db.schema.alterTable('orders').addColumn('paused_at', 'bigint').execute();
  // The search lists newest first and pages by (updated_at, order_id).
  await sql`create index orders_updated on orders (updated_at, order_id)`.execute(db);

  await db.schema
    .createTable('paused_users')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('paused_at', 'bigint', (c) => c.notNull())
    .execute();

  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
  await db.schema
    .createTable('order_log')
    .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .execute();
  await sql`create index order_log_order on order_log (order_id, id)`.execute(db);
  await sql`create index order_log_at on order_log (at)`.execute(db);

  // Backfill, a batch at a time by primary key. Purged orders keep no name or phone.
  let after = '';
  for (;;) {
    const { rows } = await sql<{ order_id: string; snapshot: string }>`
      select order_id, snapshot from orders
      where order_id > ${after} and (pii_purged_at is null or pii_purged_at < updated_at)
      order by order_id limit 500`.execute(db);
    for (const row of rows) {
      const fields = searchFieldsOf(row.snapshot);
      await sql`update orders set search_name = ${fields.search_name}, phone_digits = ${fields.phone_digits} where order_id = ${row.order_id}`.execute(db);
    }
    if (rows.length < 500) break;
    after = rows[rows.length - 1]!.order_id;
  }
}
