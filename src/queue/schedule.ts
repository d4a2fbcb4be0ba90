import { sql } from 'kysely';
import type { Db } from '../db/connect.js';
import { readKv, writeKv } from '../db/kv.js';
import type { Logger } from '../logger.js';
import { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import { describeFailure } from './failure.js';
import type { JobResult, PayloadJob } from './jobs.js';

/**
 * Periodic jobs that cannot die (the amoCRM sweep, the partner sweep, retention), after
 * graphile-worker's "known crontabs": each run is one job under the schedule's one key, so
 * runs never overlap, on one instance or several. A run always ends as `done`, its error
 * kept in last_error when it failed, after queueing its successor: one interval on, or
 * sooner after a failure (backoff doubling from `retryBaseMs`, capped at the interval).
 * Nothing of a schedule ever waits in the dead letter, where under per-key FIFO it would
 * block every later run.
 *
 * At most one run waits (the coalescing index jobs_waiting_once: `queued`, never run).
 * startSchedule, at every start, creates it or re-times it to the configured interval.
 */
export interface Schedule {
  kind: string;
  /** The one job key of every run. */
  key: string;
  /** Between the end of one run and the start of the next; 0 turns the schedule off. */
  intervalMs: number;
  /** The first wait after a failed run (default 2 s); it doubles per failure, up to the interval. */
  retryBaseMs?: number;
}

/** Runs of a schedule are never spent: only a lost worker (expireLeases) counts against this. */
export const PERIODIC_MAX_ATTEMPTS = 1_000_000;
/** A run whose worker died under it this often is given up, and the next one scheduled with backoff. */
export const PERIODIC_LOST_LIMIT = 2;

/** What one run did: `again` asks for the next run at once (a backlog is left). */
export type PeriodicOutcome = { again?: boolean } | void;

/** kv key of the number of runs that failed in a row, for the backoff. */
const failuresKey = (schedule: Schedule) => `schedule.${schedule.kind}.failures`;

/**
 * Prepares a schedule at start-up (any instance, any number at once):
 * - dead runs left by older versions are closed (`done`, their error kept), so they block
 *   nothing, and unfinished ones get the periodic attempt budget;
 * - the waiting run is created, or re-timed to one interval after it was queued if that is
 *   sooner (a shortened interval takes effect now; a restart never postpones a run; after
 *   a lengthened one, the waiting run keeps its time and the runs after it use the new one);
 * - an interval of 0 closes the waiting run instead.
 * Returns how many dead runs were closed.
 */
export async function startSchedule(db: Db, schedule: Schedule, logger?: Logger, now = Date.now()): Promise<number> {
  const ofSchedule = db.kysely.updateTable('jobs').where('kind', '=', schedule.kind).where('job_key', '=', schedule.key);
  const closed = await ofSchedule.set({ status: 'done', updated_at: now }).where('status', '=', 'dead').executeTakeFirst();
  const dead = Number(closed.numUpdatedRows);
  if (dead > 0) logger?.info('schedule.dead_runs_closed', { kind: schedule.kind, jobs: dead });
  await ofSchedule
    .set({ max_attempts: PERIODIC_MAX_ATTEMPTS })
    .where('status', 'in', ['queued', 'retrying', 'running'])
    .where('max_attempts', '<', PERIODIC_MAX_ATTEMPTS)
    .execute();
  if (schedule.intervalMs <= 0) {
    await ofSchedule.set({ status: 'done', last_error: 'schedule turned off', updated_at: now }).where('status', 'in', ['queued', 'retrying']).execute();
    return dead;
  }
  await queueRun(db, schedule, now + schedule.intervalMs, now);
  return dead;
}

/**
 * The waiting run at `runAt`, or the one already waiting moved to `runAt` if that is
 * sooner (and never later than one interval after it was queued). One statement, so
 * several instances at once still leave one waiting run.
 */
export async function queueRun(db: Db, schedule: Schedule, runAt: number, now = Date.now()): Promise<void> {
  // PostgreSQL's least() is SQLite's many-argument min().
  const least = db.dialect === 'postgres' ? sql.raw('least') : sql.raw('min');
  await db.kysely
    .insertInto('jobs')
    .values({
      kind: schedule.kind,
      job_key: schedule.key,
      payload: '{}',
      status: 'queued',
      attempts: 0,
      max_attempts: PERIODIC_MAX_ATTEMPTS,
      run_at: runAt,
      inbox_id: null,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) =>
      // The predicate repeats jobs_waiting_once's own, literally (SQLite matches it by text).
      oc
        .columns(['kind', 'job_key'])
        .where(sql<boolean>`status = 'queued' and attempts = 0`)
        .doUpdateSet({
          run_at: sql<number>`${least}(jobs.run_at, excluded.run_at, jobs.created_at + ${schedule.intervalMs})`,
          max_attempts: PERIODIC_MAX_ATTEMPTS,
          updated_at: now,
        }),
    )
    .execute();
}

/** The wait after the `failures`-th failed run in a row: backoff, or what the server asked, never more than the interval. */
export function retryDelay(failures: number, schedule: Schedule, retryAfterMs = 0, random = Math.random): number {
  const policy = { baseMs: Math.min(schedule.retryBaseMs ?? DEFAULT_BACKOFF.baseMs, schedule.intervalMs), maxMs: schedule.intervalMs };
  return Math.min(schedule.intervalMs, Math.max(backoffDelay(failures, policy, random), retryAfterMs));
}

/**
 * The `run` of a periodic job's handler: does the work once, queues the next run, and
 * ends this one. A failure ends it as `abandoned` (done, with its error), never as a
 * retry; if the next run cannot be queued (the database is away), this run is put back
 * to run again later, so a schedule is never left without a waiting run.
 */
export function periodicRun(
  deps: { db: Db; logger: Logger },
  schedule: Schedule,
  work: () => Promise<PeriodicOutcome>,
): { run(jobs: Array<PayloadJob<unknown>>): Promise<Map<number, JobResult>> } {
  const { db, logger } = deps;
  return {
    async run(jobs) {
      let error: unknown;
      let again = false;
      const lost = jobs.find((job) => job.lease_expiries >= PERIODIC_LOST_LIMIT);
      if (lost) error = new Error(`${schedule.kind} run given up: its worker was lost ${lost.lease_expiries} times`);
      else {
        try {
          again = (await work())?.again === true;
        } catch (thrown) {
          error = thrown;
        }
      }
      const failed = error !== undefined;
      try {
        const before = Number((await readKv(db.kysely, failuresKey(schedule))) ?? 0) || 0;
        const failures = failed ? before + 1 : 0;
        if (schedule.intervalMs > 0) {
          const delay = failed ? retryDelay(failures, schedule, describeFailure(error).retryAfterMs) : again ? 0 : schedule.intervalMs;
          const now = Date.now();
          await queueRun(db, schedule, now + delay, now);
          if (failed) logger.info('schedule.retry', { kind: schedule.kind, failures, inMs: delay });
        }
        if (failures !== before) await writeKv(db.kysely, failuresKey(schedule), String(failures));
        if (!failed && before > 0) logger.info('schedule.recovered', { kind: schedule.kind, failures: before });
      } catch (queueing) {
        const reason = `could not queue the next ${schedule.kind} run: ${describeFailure(queueing).message}`;
        const delayMs = retryDelay(1, schedule) || DEFAULT_BACKOFF.baseMs;
        return new Map(jobs.map((job) => [job.id, { type: 'postpone', delayMs, reason }]));
      }
      const result: JobResult = failed ? { type: 'abandoned', error } : { type: 'done' };
      return new Map(jobs.map((job) => [job.id, result]));
    },
  };
}
