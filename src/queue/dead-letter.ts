import type { Kysely } from 'kysely';
import type { Database, Job } from '../db/schema.js';
import { DEFAULT_MAX_ATTEMPTS } from './enqueue.js';

/** Jobs that exhausted their attempts or failed permanently, newest first. */
export async function listDeadJobs(db: Kysely<Database>, limit = 100): Promise<Job[]> {
  return db.selectFrom('jobs').selectAll().where('status', '=', 'dead').orderBy('updated_at', 'desc').limit(limit).execute();
}

/** One job of the dead letter, with its whole last error. */
export async function findDeadJob(db: Kysely<Database>, id: number): Promise<Job | undefined> {
  return db.selectFrom('jobs').selectAll().where('id', '=', id).where('status', '=', 'dead').executeTakeFirst();
}

/**
 * Sends a dead job back to the queue with a fresh budget. Its key was blocked while it
 * lay dead, so the jobs behind it run after it, in order. It waits as `queued` (nothing
 * has failed since a person looked); one that lost its worker before still runs alone.
 */
export async function replayDeadJob(db: Kysely<Database>, id: number, now = Date.now()): Promise<boolean> {
  const job = await findDeadJob(db, id);
  if (!job) return false;
  const result = await db
    .updateTable('jobs')
    .set({ status: 'queued', run_at: now, max_attempts: job.attempts + DEFAULT_MAX_ATTEMPTS, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'dead')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
