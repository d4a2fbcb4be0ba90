import { type RetentionOptions, retentionOnce } from '../db/retention.js';
import type { Logger } from '../logger.js';
import { periodicRun, type Schedule, startSchedule } from '../queue/schedule.js';
import { RETENTION_JOB, type SyncJobHandler, syncJobs } from './jobs.js';

export interface RetentionJobOptions extends RetentionOptions {
  logger: Logger;
  /** RETENTION_INTERVAL, in ms; 0 schedules nothing. */
  intervalMs: number;
  /** The first wait after a failed run (see Schedule). */
  retryBaseMs?: number;
}

/**
 * Retention as a periodic job (src/queue/schedule.ts): one job key, so several instances
 * never run it at once; each run queues the next, and a failed one is logged and followed
 * by another after a backoff, never retried into the dead letter.
 */
export function retentionJob(options: RetentionJobOptions): { handler: SyncJobHandler<typeof RETENTION_JOB>; schedule(now?: number): Promise<void> } {
  const schedule: Schedule = { kind: RETENTION_JOB, key: RETENTION_JOB, intervalMs: options.intervalMs, retryBaseMs: options.retryBaseMs };
  const handler = syncJobs.handler(
    RETENTION_JOB,
    periodicRun(options, schedule, async () => {
      const started = Date.now();
      try {
        const counts = await retentionOnce(options, started);
        options.logger.info('retention.done', { ...counts, ms: Date.now() - started });
      } catch (error) {
        options.logger.error('retention.failed', { error: String(error) });
        throw error;
      }
    }),
  );
  return {
    handler,
    schedule: async (now = Date.now()) => {
      await startSchedule(options.db, schedule, options.logger, now);
    },
  };
}
