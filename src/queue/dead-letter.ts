import { type Kysely, sql } from 'kysely';
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

/** The dead jobs that went dead at or after `since` (and before `until`), of one kind or all: their ids, oldest first. */
export async function deadJobIdsSince(
  db: Kysely<Database>,
  filter: { since: number; until: number; kind?: string },
): Promise<number[]> {
  let query = db
    .selectFrom('jobs')
    .select('id')
    .where('status', '=', 'dead')
    .where('updated_at', '>=', filter.since)
    .where('updated_at', '<', filter.until);
  if (filter.kind !== undefined) query = query.where('kind', '=', filter.kind);
  return (await query.orderBy('id').execute()).map((r) => r.id);
}

/**
 * Replays dead jobs by id as replayDeadJob does, a batch per statement so a large dead
 * letter never holds the table for long; a job no longer dead is skipped. Answers how
 * many went back to the queue.
 */
export async function replayDeadJobs(db: Kysely<Database>, ids: number[], options: { batchSize?: number; now?: () => number } = {}): Promise<number> {
  const size = options.batchSize ?? 100;
  const clock = options.now ?? Date.now;
  let replayed = 0;
  for (let i = 0; i < ids.length; i += size) {
    const now = clock();
    const result = await db
      .updateTable('jobs')
      .set({ status: 'queued', run_at: now, max_attempts: sql<number>`attempts + ${DEFAULT_MAX_ATTEMPTS}`, updated_at: now })
      .where('id', 'in', ids.slice(i, i + size))
      .where('status', '=', 'dead')
      .executeTakeFirst();
    replayed += Number(result.numUpdatedRows);
  }
  return replayed;
}
