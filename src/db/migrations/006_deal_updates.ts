import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../connect.js';

/**
 * The other direction (order events → deal): what each deal was already given, so a note
 * or a move is made once across retries and restarts; and the last status the bridge
 * itself asked Company 1 for, so its own doing is not mistaken for Company 1's.
 */
export async function up(db: Kysely<unknown>, _dialect: DialectName): Promise<void> {
  // One row per (order, kind): kind is an order event (cancelled, executedByPartner,
  // rejectedByPartner) or 'comment'. Written after the note, then after the move.
  await db.schema
    .createTable('deal_updates')
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('deal_id', 'bigint', (c) => c.notNull())
    .addColumn('noted_at', 'bigint')
    .addColumn('moved_at', 'bigint')
    .addPrimaryKeyConstraint('deal_updates_pkey', ['order_id', 'kind'])
    .execute();
  // Orders Company 1 closed before this table existed were noted then (closed_by_partner).
  await sql`
    insert into deal_updates (order_id, kind, deal_id, noted_at, moved_at)
    select order_id, 'executedByPartner', deal_id, updated_at, null from orders
    where closed_by_partner = 1 and deal_id is not null`.execute(db);

  // Written before the reconcile's status PATCH is sent (an intent): a crash between the
  // PATCH and its record still leaves the order's new status known as the bridge's.
  await db.schema.alterTable('orders').addColumn('status_by_bridge', 'text').execute();
}
