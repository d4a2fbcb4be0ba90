import { findDeadJob, listDeadJobs, replayDeadJob } from '../queue/dead-letter.js';
import { withDatabase } from './database.js';
import { UsageError } from './usage-error.js';

/** `amobridge dead list`: the dead letter, newest first, with each job's last error. */
export function listDead(config: { DATABASE_URL: string }): Promise<number> {
  return withDatabase(config, async (db) => {
    const jobs = await listDeadJobs(db.kysely);
    if (jobs.length === 0) process.stdout.write('no dead jobs\n');
    for (const job of jobs) {
      // One line per job: the error's message; `dead show` has the stack.
      process.stdout.write(`${job.id}\t${job.kind}\t${job.job_key}\tattempts ${job.attempts}\t${(job.last_error ?? '').split('\n')[0]}\n`);
    }
    return 0;
  });
}

/** `amobridge dead show <job-id>`: one dead job with its whole last error (the stack). */
export function showDead(config: { DATABASE_URL: string }, arg: string | undefined): Promise<number> {
  const id = Number(arg);
  if (!arg || !Number.isInteger(id)) throw new UsageError('dead show needs a job id');
  return withDatabase(config, async (db) => {
    const job = await findDeadJob(db.kysely, id);
    if (!job) {
      process.stdout.write(`job ${id} is not dead\n`);
      return 1;
    }
    process.stdout.write(
      `job ${job.id} ${job.kind} ${job.job_key}\nattempts ${job.attempts} of ${job.max_attempts} (${job.lease_expiries} ended by lease expiry)\n` +
        `dead since ${new Date(job.updated_at).toISOString()}\n\n${job.last_error ?? ''}\n`,
    );
    return 0;
  });
}

/** `amobridge dead replay <job-id>`: after the cause is fixed. */
export function replayDead(config: { DATABASE_URL: string }, arg: string | undefined): Promise<number> {
  const id = Number(arg);
  if (!arg || !Number.isInteger(id)) throw new UsageError('dead replay needs a job id');
  return withDatabase(config, async (db) => {
    const ok = await replayDeadJob(db.kysely, id);
    process.stdout.write(ok ? `job ${id} queued again\n` : `job ${id} is not dead\n`);
    return ok ? 0 : 1;
  });
}
