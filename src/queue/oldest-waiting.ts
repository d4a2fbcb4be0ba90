import type { Kysely } from 'kysely';
import type { Database, Job } from '../db/schema.js';

/**
 * The job that has been due the longest and still waits for a worker, if any: what the
 * admin page shows beside the queue depth. Scheduled jobs not yet due are not late.
 */
export async function oldestWaitingJob(db: Kysely<Database>, now = Date.now()): Promise<Job | undefined> {
  return db
    .selectFrom('jobs')
    .selectAll()
    .where('status', '=', 'queued')
    .where('run_at', '<=', now)
    .orderBy('run_at')
    .orderBy('id')
    .limit(1)
    .executeTakeFirst();
}
