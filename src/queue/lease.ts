import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import type { Job } from '../db/schema.js';

export interface LeaseOptions {
  workerId: string;
  limit: number;
  leaseMs: number;
  kinds?: string[];
  now?: number;
  /** Take waiting jobs due up to this time (default now): lets a batch gather early. */
  dueBy?: number;
}

/**
 * Takes up to `limit` runnable jobs and marks them running until `now + leaseMs`; each
 * lease counts as an attempt.
 *
 * Runnable: `queued` or `retrying`, due, and never lost with a worker (a job whose lease
 * ran out is a suspect: leaseSuspects takes those). Per-key strict FIFO, as
 * pg-boss's key_strict_fifo: a job runs only when no earlier job of its key is unfinished
 * (waiting, running, retrying or dead), so the work on one order happens one step at a
 * time and in order, while other orders flow.
 *
 * PostgreSQL: FOR UPDATE SKIP LOCKED lets several instances lease at once without
 * waiting on each other. SQLite has one writer, so the single UPDATE is atomic as it is.
 */
export async function leaseJobs(db: Db, options: LeaseOptions): Promise<Job[]> {
  const now = options.now ?? Date.now();
  const lock = db.dialect === 'postgres' ? sql`for update skip locked` : sql``;
  const result = await sql<Job>`
    update jobs set ${leaseTo(options, now)}
    where id in (
      select j.id from jobs j
      where j.status in ('queued', 'retrying') and j.run_at <= ${options.dueBy ?? now}
        and j.lease_expiries = 0
        ${kindFilter(options.kinds)}
        and ${firstOfItsKey}
      order by j.id
      limit ${options.limit}
      ${lock}
    )
    returning *`.execute(db.kysely);
  return result.rows.sort((a, b) => a.id - b.id);
}

/**
 * Takes jobs whose lease ran out before (their worker died or hung while running them, see
 * expireLeases): suspects, one of which may kill its process again. The worker runs them
 * apart from any other work. Jobs lost once are taken together, up to `limit`: a crash of
 * the process loses a whole batch at once, and most crashes are not the jobs' fault. A
 * job lost twice or more is taken alone, so one that keeps killing its process costs the
 * others of its first batch one more attempt, not all of theirs.
 */
export async function leaseSuspects(db: Db, options: Omit<LeaseOptions, 'dueBy'>): Promise<Job[]> {
  const now = options.now ?? Date.now();
  // A read first: there is rarely a suspect, and a read takes no write lock.
  const candidates = await sql<{ id: number; lease_expiries: number }>`
    select j.id, j.lease_expiries from jobs j
    where j.lease_expiries > 0 and j.status in ('queued', 'retrying') and j.run_at <= ${now}
      ${kindFilter(options.kinds)}
      and ${firstOfItsKey}
    order by j.lease_expiries, j.id
    limit ${options.limit}`.execute(db.kysely);
  const first = candidates.rows[0];
  if (!first) return [];
  const ids = first.lease_expiries === 1 ? candidates.rows.filter((c) => c.lease_expiries === 1).map((c) => c.id) : [first.id];
  // Another instance may have taken some meanwhile: the status check settles who did.
  const leased = await sql<Job>`
    update jobs set ${leaseTo(options, now)}
    where id in (${sql.join(ids)}) and status in ('queued', 'retrying')
    returning *`.execute(db.kysely);
  return leased.rows.sort((a, b) => a.id - b.id);
}

/** A lease: running for its worker until now + leaseMs, one more attempt spent. */
function leaseTo(options: { workerId: string; leaseMs: number }, now: number) {
  return sql`status = 'running', attempts = attempts + 1, locked_by = ${options.workerId}, locked_until = ${now + options.leaseMs}, updated_at = ${now}`;
}

function kindFilter(kinds: string[] | undefined) {
  return kinds && kinds.length > 0 ? sql`and j.kind in (${sql.join(kinds)})` : sql``;
}

/** No earlier job of the same key is unfinished (the per-key FIFO rule). */
const firstOfItsKey = sql`not exists (
  select 1 from jobs e
  where e.job_key = j.job_key and e.id < j.id and e.status <> 'done'
)`;
