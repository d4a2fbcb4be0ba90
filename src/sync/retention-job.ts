import { type RetentionOptions, retentionOnce } from '../db/retention.js';
import type { Logger } from '../logger.js';
import type { JobResult } from '../queue/jobs.js';
import { RETENTION_JOB, type SyncJobHandler, syncJobs } from './jobs.js';

export interface RetentionJobOptions extends RetentionOptions {
  logger: Logger;
  /** RETENTION_INTERVAL, in ms; 0 schedules nothing. */
  intervalMs: number;
}

/**
 * Retention as a periodic job, scheduled as the deals sweep is: one job key, so several
 * instances never run it at once, and each run enqueues the next (a waiting one absorbs
 * the enqueue at every start, so restarts do not postpone it). A failed run is logged and
 * left to the next: retried into the dead letter it would block its key, and with it
 * every later run.
 */
export function retentionJob(options: RetentionJobOptions): { handler: SyncJobHandler<typeof RETENTION_JOB>; schedule(now?: number): Promise<void> } {
  const schedule = async (now = Date.now()) => {
    if (options.intervalMs <= 0) return;
    await syncJobs.enqueue(options.db.kysely, RETENTION_JOB, {}, { key: RETENTION_JOB, runAt: now + options.intervalMs }, now);
  };
  const handler = syncJobs.handler(RETENTION_JOB, {
    async run(jobs) {
      const started = Date.now();
      try {
        const counts = await retentionOnce(options, started);
        options.logger.info('retention.done', { ...counts, ms: Date.now() - started });
      } catch (error) {
        options.logger.error('retention.failed', { error: String(error) });
      }
      await schedule();
      return new Map<number, JobResult>(jobs.map((job) => [job.id, { type: 'done' }]));
    },
  });
  return { handler, schedule };
}
