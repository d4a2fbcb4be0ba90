import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../connect.js';

/**
 * Explicit `retrying` state, lease expiries counted, and the indexes the lease, the
 * poison-job check and the queue-depth metrics read through.
 *
 * Rows that already wait for a retry keep `queued` until their next run ends: the two
 * states lease the same way, only the label differs.
 */
export async function up(db: Kysely<unknown>, _dialect: DialectName): Promise<void> {
  await db.schema.alterTable('jobs').addColumn('lease_expiries', 'integer', (c) => c.notNull().defaultTo(0)).execute();

  // Each query repeats its index's predicate word for word: SQLite uses a partial index
  // only for a query whose WHERE contains the index's own terms.
  await sql`drop index jobs_unfinished`.execute(db);
  // The lease: due jobs in id order.
  await sql`create index jobs_due on jobs (run_at, id) where status in ('queued', 'retrying')`.execute(db);
  // Leases that ran out.
  await sql`create index jobs_leases on jobs (locked_until) where status = 'running'`.execute(db);
  // Jobs whose lease ran out before: they run one at a time, each alone (src/queue/lease.ts).
  await sql`create index jobs_suspects on jobs (lease_expiries, id) where lease_expiries > 0 and status in ('queued', 'retrying')`.execute(db);
  // Queue depth by state and kind, read at every scrape of /metrics.
  await sql`create index jobs_depth on jobs (status, kind, run_at) where status <> 'done'`.execute(db);
}
