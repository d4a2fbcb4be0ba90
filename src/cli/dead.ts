import { listDeadJobs, replayDeadJob } from '../queue/dead-letter.js';
import { withDatabase } from './database.js';
import { UsageError } from './usage-error.js';

/** `amobridge dead list`: the dead letter, newest first, with each job's last error. */
export function listDead(config: { DATABASE_URL: string }): Promise<number> {
  return withDatabase(config, async (db) => {
    const jobs = await listDeadJobs(db.kysely);
    if (jobs.length === 0) process.stdout.write('no dead jobs\n');
    for (const job of jobs) {
      process.stdout.write(`${job.id}\t${job.kind}\t${job.job_key}\tattempts ${job.attempts}\t${job.last_error ?? ''}\n`);
    }
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
