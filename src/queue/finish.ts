import type { Kysely } from 'kysely';
import type { Database, Job } from '../db/schema.js';
import { type BackoffPolicy, nextRunAt } from './backoff.js';

/**
 * The three ways a leased job ends. Each update is guarded by `locked_by`, so a worker
 * whose lease expired and was taken over cannot overwrite the new owner's result.
 */

export async function completeJob(db: Kysely<Database>, job: Job, now = Date.now()): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ status: 'done', locked_by: null, locked_until: null, last_error: null, updated_at: now })
    .where('id', '=', job.id)
    .where('locked_by', '=', job.locked_by)
    .execute();
}

export type FailOutcome = 'retry' | 'dead';

/** Schedules a retry with backoff, or moves the job to the dead letter when it is spent. */
export async function failJob(
  db: Kysely<Database>,
  job: Job,
  error: { message: string; retryable: boolean; retryAfterMs?: number },
  policy: BackoffPolicy,
  now = Date.now(),
): Promise<FailOutcome> {
  const spent = job.attempts >= job.max_attempts;
  const outcome: FailOutcome = error.retryable && !spent ? 'retry' : 'dead';
  await db
    .updateTable('jobs')
    .set({
      status: outcome === 'retry' ? 'queued' : 'dead',
      run_at: outcome === 'retry' ? nextRunAt(now, job.attempts, policy, error.retryAfterMs) : job.run_at,
      locked_by: null,
      locked_until: null,
      last_error: error.message.slice(0, 4000),
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
 * trails a create).
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
      // itself stays above 0 so the job never collides with a newer waiting job of its key.)
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

/**
 * Frees every leased job at once. Only for a database no other instance works on (the
 * embedded SQLite file at start-up): the attempts they were on still count.
 */
export async function reclaimAllLeases(db: Kysely<Database>, now = Date.now()): Promise<number> {
  const result = await db
    .updateTable('jobs')
    .set({ status: 'queued', run_at: now, locked_by: null, locked_until: null, updated_at: now })
    .where('status', '=', 'running')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
