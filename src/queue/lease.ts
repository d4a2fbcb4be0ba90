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
 * Takes up to `limit` runnable jobs and marks them running until `now + leaseMs`.
 *
 * Runnable: waiting and due, or running with an expired lease (its worker died).
 * Per-key strict FIFO, as pg-boss's key_strict_fifo: a job runs only when no earlier job
 * of its key is unfinished (waiting, running, retrying or dead), so the work on one order
 * happens one step at a time and in order, while other orders flow.
 *
 * PostgreSQL: FOR UPDATE SKIP LOCKED lets several instances lease at once without
 * waiting on each other. SQLite has one writer, so the single UPDATE is atomic as it is.
 */
export async function leaseJobs(db: Db, options: LeaseOptions): Promise<Job[]> {
  const now = options.now ?? Date.now();
  const kinds = options.kinds ?? [];
  const kindFilter = kinds.length > 0 ? sql`and j.kind in (${sql.join(kinds)})` : sql``;
  const lock = db.dialect === 'postgres' ? sql`for update skip locked` : sql``;
  const result = await sql<Job>`
    update jobs set
      status = 'running',
      attempts = attempts + 1,
      locked_by = ${options.workerId},
      locked_until = ${now + options.leaseMs},
      updated_at = ${now}
    where id in (
      select j.id from jobs j
      where ((j.status = 'queued' and j.run_at <= ${options.dueBy ?? now})
          or (j.status = 'running' and j.locked_until < ${now}))
        ${kindFilter}
        and not exists (
          select 1 from jobs e
          where e.job_key = j.job_key and e.id < j.id and e.status <> 'done'
        )
      order by j.id
      limit ${options.limit}
      ${lock}
    )
    returning *`.execute(db.kysely);
  return result.rows.sort((a, b) => a.id - b.id);
}
