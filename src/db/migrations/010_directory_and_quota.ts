import { type Kysely, sql } from 'kysely';
import { directoryValuesOf } from '../../sync/contact-directory.js';
import type { DialectName } from '../connect.js';

/**
 * The contact directory gets a name, the phone's last four digits and when it was last
 * used (admin search, retention after six months of disuse); peer_calls records every
 * exchange with amoCRM and Company 1 for GET /admin/quota.
 *
 * Backfill: last_used_at from the user's newest order (or the entry's creation), name and
 * phone from that order's snapshot unless retention already took the customer out.
 */
export async function up(db: Kysely<unknown>, dialect: DialectName): Promise<void> {
  for (const [column, type] of [
    ['name', 'text'],
    ['name_key', 'text'],
    ['phone_last4', 'text'],
    ['last_used_at', 'bigint'],
  ] as const) {
    await db.schema.alterTable('contacts').addColumn(column, type).execute();
  }
  await sql`create index contacts_last_used on contacts (last_used_at)`.execute(db);
  await backfill(db);

  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
  await db.schema
    .createTable('peer_calls')
    .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('peer', 'text', (c) => c.notNull())
    .addColumn('endpoint', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('order_id', 'text')
    .addColumn('at', 'bigint', (c) => c.notNull())
    .addColumn('duration_ms', 'integer', (c) => c.notNull())
    .execute();
  await sql`create index peer_calls_at on peer_calls (at)`.execute(db);
  await sql`create index peer_calls_order on peer_calls (order_id, at) where order_id is not null`.execute(db);
}

interface BackfillRow {
  user_id: string;
  created_at: number | string;
  snapshot: string | null;
  used_at: number | string | null;
}

const customerOf = (snapshot: string | null) => {
  try {
    const customer: unknown = snapshot === null ? undefined : (JSON.parse(snapshot) as { customer?: unknown }).customer;
    if (typeof customer !== 'object' || customer === null) return undefined;
    const { firstName, lastName, phone } = customer as Record<string, unknown>;
    return typeof firstName === 'string' && typeof lastName === 'string' && typeof phone === 'string' ? { firstName, lastName, phone } : undefined;
  } catch {
    return undefined;
  }
};

/** Page by page in user_id order, so a large directory never sits in memory at once. */
async function backfill(db: Kysely<unknown>): Promise<void> {
  let after = '';
  for (;;) {
    const { rows } = await sql<BackfillRow>`
      select c.user_id, c.created_at, o.snapshot, o.created_at as used_at
      from contacts c
      left join orders o on o.order_id = (
        select o2.order_id from orders o2 where o2.user_id = c.user_id order by o2.created_at desc, o2.order_id desc limit 1)
      where c.user_id > ${after}
      order by c.user_id
      limit 500`.execute(db);
    if (rows.length === 0) return;
    for (const row of rows) {
      const customer = customerOf(row.snapshot);
      const values = customer ? directoryValuesOf(customer) : { name: null, name_key: null, phone_last4: null };
      const usedAt = Number(row.used_at ?? row.created_at);
      await sql`update contacts set name = ${values.name}, name_key = ${values.name_key}, phone_last4 = ${values.phone_last4},
        last_used_at = ${usedAt} where user_id = ${row.user_id}`.execute(db);
    }
    after = rows[rows.length - 1]!.user_id;
  }
}
