import type { Kysely } from 'kysely';
import type { Database, Job } from '../db/schema.js';
import { DEFAULT_MAX_ATTEMPTS } from './enqueue.js';

/** Jobs that exhausted their attempts or failed permanently, newest first. */
export async function listDeadJobs(db: Kysely<Database>, limit = 100): Promise<Job[]> {
  return db.selectFrom('jobs').selectAll().where('status', '=', 'dead').orderBy('updated_at', 'desc').limit(limit).execute();
}

/**
 * Sends a dead job back to the queue with a fresh budget. Its key was blocked while it
 * lay dead, so the jobs behind it run after it, in order.
 */
export async function replayDeadJob(db: Kysely<Database>, id: number, now = Date.now()): Promise<boolean> {
  const job = await db.selectFrom('jobs').select(['attempts']).where('id', '=', id).where('status', '=', 'dead').executeTakeFirst();
  if (!job) return false;
  const result = await db
    .updateTable('jobs')
    .set({ status: 'queued', run_at: now, max_attempts: job.attempts + DEFAULT_MAX_ATTEMPTS, updated_at: now })
    .where('id', '=', id)
    .where('status', '=', 'dead')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
