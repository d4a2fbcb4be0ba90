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

/** The first window of candidates holds the batch and as many again (jobs a FIFO test may hold back). */
const FIRST_WINDOW_FACTOR = 2;
/** Later windows grow fourfold up to this many rows, so a long run of held-back jobs costs few round trips. */
const MAX_WINDOW = 2000;

interface Candidate {
  id: number;
  kind: string;
  run_at: number;
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
 * Two statements per window, so no plan can read more than the window whatever the
 * planner believes (src/db/migrations/011_lease_order.ts): the window of leasable jobs
 * after the last one seen, walked in id order through jobs_lease_order and cut by a LIMIT;
 * then the lease of those that are due, of a wanted kind and first of their key. When the
 * window yields less than the batch (jobs not due yet, of another kind, or behind an
 * unfinished one of their key, e.g. a dead job), the walk goes on from its end.
 *
 * PostgreSQL: FOR UPDATE SKIP LOCKED lets several instances lease at once without
 * waiting on each other, and the lease re-checks each row as it takes it. SQLite has one
 * writer, so the single UPDATE is atomic as it is.
 */
export async function leaseJobs(db: Db, options: LeaseOptions): Promise<Job[]> {
  const now = options.now ?? Date.now();
  const dueBy = options.dueBy ?? now;
  const kinds = options.kinds && options.kinds.length > 0 ? new Set(options.kinds) : undefined;
  const leased: Job[] = [];
  let after = 0;
  let window = Math.max(1, options.limit * FIRST_WINDOW_FACTOR);
  while (leased.length < options.limit) {
    const page = await leasableAfter(db, after, window);
    const ids = page.filter((c) => Number(c.run_at) <= dueBy && (!kinds || kinds.has(c.kind))).map((c) => Number(c.id));
    if (ids.length > 0) leased.push(...(await leaseAmong(db, ids, options.limit - leased.length, options, now, dueBy)));
    const last = page[page.length - 1];
    if (page.length < window || !last) break;
    after = Number(last.id);
    window = Math.min(window * 4, MAX_WINDOW);
  }
  return leased.sort((a, b) => a.id - b.id);
}

/**
 * The next `window` leasable jobs after id `after`, in id order. The WHERE is
 * jobs_lease_order's predicate word for word (SQLite matches a partial index by its terms)
 * and nothing else: any other term would let an index that answers it, and then a sort,
 * look cheaper than this walk under stale statistics.
 */
async function leasableAfter(db: Db, after: number, window: number): Promise<Candidate[]> {
  const indexed = db.dialect === 'sqlite' ? sql`indexed by jobs_lease_order` : sql``;
  const result = await sql<Candidate>`
    select id, kind, run_at from jobs ${indexed}
    where status in ('queued', 'retrying') and lease_expiries = 0 and id > ${after}
    order by id
    limit ${window}`.execute(db.kysely);
  return result.rows;
}

/**
 * Leases up to `limit` of the given jobs, in id order, re-checking each as it takes it
 * (another instance may have leased or finished it since it was read). Only the ids are
 * written so an index can answer them: `|| ''` and `+ 0` keep the re-checks out of any
 * partial index's reach, so the primary key is the one way in.
 */
async function leaseAmong(db: Db, ids: number[], limit: number, options: LeaseOptions, now: number, dueBy: number): Promise<Job[]> {
  const lock = db.dialect === 'postgres' ? sql`for update skip locked` : sql``;
  const result = await sql<Job>`
    update jobs set ${leaseTo(options, now)}
    where id in (
      select j.id from jobs j
      where j.id in (${sql.join(ids)})
        and j.status || '' in ('queued', 'retrying') and j.run_at + 0 <= ${dueBy} and j.lease_expiries + 0 = 0
        and ${firstOfItsKey}
      order by j.id
      limit ${limit}
      ${lock}
    )
    returning *`.execute(db.kysely);
  return result.rows;
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
  // A read first: there is rarely a suspect, and a read takes no write lock. jobs_suspects
  // holds them in this order; the other terms are kept out of any index's reach (see leaseAmong).
  const indexed = db.dialect === 'sqlite' ? sql`indexed by jobs_suspects` : sql``;
  const candidates = await sql<{ id: number; lease_expiries: number }>`
    select j.id, j.lease_expiries from jobs j ${indexed}
    where j.lease_expiries > 0 and j.status in ('queued', 'retrying') and j.run_at + 0 <= ${now}
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
    where id in (${sql.join(ids)}) and status || '' in ('queued', 'retrying')
    returning *`.execute(db.kysely);
  return leased.rows.sort((a, b) => a.id - b.id);
}

/** A lease: running for its worker until now + leaseMs, one more attempt spent. */
function leaseTo(options: { workerId: string; leaseMs: number }, now: number) {
  return sql`status = 'running', attempts = attempts + 1, locked_by = ${options.workerId}, locked_until = ${now + options.leaseMs}, updated_at = ${now}`;
}

function kindFilter(kinds: string[] | undefined) {
  return kinds && kinds.length > 0 ? sql`and j.kind || '' in (${sql.join(kinds)})` : sql``;
}

/**
 * No earlier job of the same key is unfinished (the per-key FIFO rule): the job is the
 * first unfinished one of its key. A scalar subquery, not NOT EXISTS: PostgreSQL runs it
 * as one probe of jobs_key per candidate and cannot turn it into a join that reads every
 * unfinished job.
 */
const firstOfItsKey = sql`(
  select min(e.id) from jobs e
  where e.job_key = j.job_key and e.status <> 'done'
) = j.id`;
