import { type Kysely, type SqlBool, sql } from 'kysely';
import type { Database, Job } from '../db/schema.js';
import { type BackoffPolicy, nextRunAt } from './backoff.js';
import { type Failure, lastErrorText } from './failure.js';

/**
 * The ways a leased job ends. Each update is guarded by `locked_by`, so a worker whose
 * lease expired and was taken over cannot overwrite the new owner's result.
 */

export async function completeJob(db: Kysely<Database>, job: Job, now = Date.now()): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ status: 'done', locked_by: null, locked_until: null, last_error: null, updated_at: now })
    .where('id', '=', job.id)
    .where('locked_by', '=', job.locked_by)
    .execute();
}

/** A failed attempt that is not retried (JobResult `abandoned`): done, with its error kept. */
export async function abandonJob(db: Kysely<Database>, job: Job, failure: Pick<Failure, 'message' | 'stack'>, now = Date.now()): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ status: 'done', locked_by: null, locked_until: null, last_error: lastErrorText(failure), updated_at: now })
    .where('id', '=', job.id)
    .where('locked_by', '=', job.locked_by)
    .execute();
}

export type FailOutcome = 'retry' | 'wait' | 'dead';

/** Refused credentials are retried at least this often, so work resumes soon after a person fixes them. */
export const REFUSAL_MAX_WAIT_MS = 60_000;
const waitPolicy = (policy: BackoffPolicy): BackoffPolicy => ({ baseMs: policy.baseMs, maxMs: Math.min(policy.maxMs, REFUSAL_MAX_WAIT_MS) });

/**
 * An attempt failed: the job waits as `retrying` for its next one (backoff, or later if
 * the server asked), or goes to the dead letter when it is spent or the failure is
 * permanent. last_error keeps the message and the stack.
 *
 * Refused credentials (`wait`) are not the job's fault and no attempt succeeds until a
 * person fixes them: the job waits as `retrying` with backoff, its attempt given back,
 * however long that takes.
 */
export async function failJob(
  db: Kysely<Database>,
  job: Job,
  failure: Pick<Failure, 'message' | 'stack' | 'retryable' | 'refused' | 'retryAfterMs'>,
  policy: BackoffPolicy,
  now = Date.now(),
): Promise<FailOutcome> {
  const spent = job.attempts >= job.max_attempts;
  const outcome: FailOutcome = failure.refused ? 'wait' : failure.retryable && !spent ? 'retry' : 'dead';
  await db
    .updateTable('jobs')
    .set({
      status: outcome === 'dead' ? 'dead' : 'retrying',
      run_at: outcome === 'dead' ? job.run_at : nextRunAt(now, job.attempts, outcome === 'wait' ? waitPolicy(policy) : policy, failure.retryAfterMs),
      max_attempts: outcome === 'wait' ? job.max_attempts + 1 : job.max_attempts,
      locked_by: null,
      locked_until: null,
      last_error: lastErrorText(failure),
      updated_at: now,
    })
    .where('id', '=', job.id)
    .where('locked_by', '=', job.locked_by)
    .execute();
  return outcome;
}

/**
 * Puts a job back without counting the attempt: for work that has to wait on something
 * that is not a failure (another step of the same user in flight, a search index that
 * trails a create). It waits as `queued`, not `retrying`: nothing failed.
 */
export async function postponeJob(
  db: Kysely<Database>,
  job: Job,
  delayMs: number,
  reason: string,
  now = Date.now(),
): Promise<void> {
  await db
    .updateTable('jobs')
    .set({
      status: 'queued',
      // The lease counted as an attempt; giving one back keeps the budget whole. (attempts
      // itself stays above 0 so the job never collides with a newer waiting job of its key
      // in the coalescing index jobs_waiting_once.)
      max_attempts: job.max_attempts + 1,
      run_at: now + delayMs,
      locked_by: null,
      locked_until: null,
      last_error: reason,
      updated_at: now,
    })
    .where('id', '=', job.id)
    .where('locked_by', '=', job.locked_by)
    .execute();
}

/** Gives back a lease untouched (graceful shutdown): the attempt does not count. */
export async function releaseJob(db: Kysely<Database>, job: Job, now = Date.now()): Promise<void> {
  await postponeJob(db, job, 0, 'released at shutdown', now);
}

export interface ExpiredLeases {
  /** Back in the queue as `retrying`, as suspects: they run apart from other work (see leaseSuspects). */
  retrying: Job[];
  /** Spent: in the dead letter with "lease expired N times". */
  dead: Job[];
}

/**
 * Ends the leases that ran out (their worker died or hung): each counts as a failed
 * attempt. A job with attempts left waits as `retrying`; a spent one goes to the dead
 * letter with the reason "lease expired N times", N being how many of its attempts ended
 * this way. Without this a job that kills its worker would be leased forever.
 *
 * `all` ends every lease, expired or not: only for a database no other instance works on
 * (the embedded SQLite file at start-up, see reclaimAllLeases).
 */
export async function expireLeases(db: Kysely<Database>, options: { now?: number; all?: boolean } = {}): Promise<ExpiredLeases> {
  const now = options.now ?? Date.now();
  // Literal 'running', as in the partial index jobs_leases.
  const lapsed = options.all ? sql<SqlBool>`status = 'running'` : sql<SqlBool>`status = 'running' and locked_until < ${now}`;
  // A read first: the common answer is "none", and it takes no write lock.
  const any = await db.selectFrom('jobs').select('id').where(lapsed).limit(1).executeTakeFirst();
  if (!any) return { retrying: [], dead: [] };
  const rows = await db
    .updateTable('jobs')
    .set({
      status: sql<'retrying' | 'dead'>`case when attempts >= max_attempts then 'dead' else 'retrying' end`,
      lease_expiries: sql<number>`lease_expiries + 1`,
      last_error: sql<string>`'lease expired ' || cast(lease_expiries + 1 as text) || case when lease_expiries = 0 then ' time' else ' times' end`,
      run_at: now,
      locked_by: null,
      locked_until: null,
      updated_at: now,
    })
    .where(lapsed)
    .returningAll()
    .execute();
  return { retrying: rows.filter((j) => j.status === 'retrying'), dead: rows.filter((j) => j.status === 'dead') };
}

/**
 * Ends every lease at once: the embedded SQLite file at start-up, which one process owns,
 * so whatever it held when it last died is free now. The attempts they were on count, so
 * a job that crashes the process at start ends dead instead of looping.
 */
export async function reclaimAllLeases(db: Kysely<Database>, now = Date.now()): Promise<number> {
  const { retrying, dead } = await expireLeases(db, { now, all: true });
  return retrying.length + dead.length;
}
