import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../connect.js';

/**
 * The lease walks an index in its own order (src/queue/lease.ts), so its cost depends
 * neither on how many jobs wait or are finished nor on the planner's statistics.
 *
 * PostgreSQL plans with the statistics of the last VACUUM/ANALYZE; one taken while the
 * queue was idle leaves every partial index over unfinished jobs with reltuples 0, and the
 * planner then believes it empty until the next one, whatever has been inserted since. A
 * full scan of such an index looks free, so each index whose predicate a lease statement
 * implies is a plan that statement may take. Hence:
 */
export async function up(db: Kysely<unknown>, _dialect: DialectName): Promise<void> {
  // Leasable jobs (waiting, never lost with a worker) in id order: the lease's candidates.
  await sql`create index jobs_lease_order on jobs (id) where status in ('queued', 'retrying') and lease_expiries = 0`.execute(db);
  // The lease's old index (due jobs by run_at): a cheaper-looking scan that sorts every due job.
  await sql`drop index jobs_due`.execute(db);
  // The per-key FIFO test reads jobs_key (`status <> 'done'`); jobs_depth had the same
  // predicate, so a full scan of it competed with that probe. Its new predicate names the
  // unfinished states instead, which `status <> 'done'` does not imply.
  await sql`drop index jobs_depth`.execute(db);
  await sql`create index jobs_depth on jobs (status, kind, run_at) where status in ('queued', 'running', 'retrying', 'dead')`.execute(db);
}
