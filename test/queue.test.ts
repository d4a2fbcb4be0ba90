import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/connect.js';
import type { Job } from '../src/db/schema.js';
import { PermanentError } from '../src/lib/http-error.js';
import { createTestLogger } from '../src/logger.js';
import { backoffDelay } from '../src/queue/backoff.js';
import { listDeadJobs, replayDeadJob } from '../src/queue/dead-letter.js';
import { enqueue } from '../src/queue/enqueue.js';
import { completeJob, failJob } from '../src/queue/finish.js';
import { leaseJobs } from '../src/queue/lease.js';
import { type JobResult, Worker } from '../src/queue/worker.js';
import { DATABASES, dropDb, freshDb } from './support/databases.js';

const T0 = 1_700_000_000_000;
const policy = { baseMs: 1000, maxMs: 60_000 };

describe('backoff', () => {
  it('doubles per attempt with equal jitter, capped', () => {
    expect(backoffDelay(1, policy, () => 0)).toBe(500);
    expect(backoffDelay(1, policy, () => 1)).toBe(1000);
    expect(backoffDelay(3, policy, () => 1)).toBe(4000);
    expect(backoffDelay(30, policy, () => 1)).toBe(60_000);
  });
});

describe.each(DATABASES)('queue on %s', (kind) => {
  let db: Db;
  beforeEach(async (ctx) => {
    db = await freshDb(kind, ctx.task.name);
  });
  afterEach(async () => {
    await dropDb(db);
  });

  const lease = (workerId: string, now = T0, limit = 10) => leaseJobs(db, { workerId, limit, leaseMs: 30_000, now });

  it('coalesces events for the same key while the job waits', async () => {
    expect(await enqueue(db.kysely, { kind: 'sync', key: 'order-1' }, T0)).toBe(true);
    expect(await enqueue(db.kysely, { kind: 'sync', key: 'order-1' }, T0)).toBe(false);
    expect(await enqueue(db.kysely, { kind: 'sync', key: 'order-2' }, T0)).toBe(true);
    const jobs = await lease('w1');
    expect(jobs.map((j) => j.job_key)).toEqual(['order-1', 'order-2']);
    // While order-1 runs, a new event makes a new job that waits behind it.
    expect(await enqueue(db.kysely, { kind: 'sync', key: 'order-1' }, T0)).toBe(true);
    expect(await lease('w2')).toEqual([]);
  });

  it('runs one job per key at a time, in order, and other keys flow', async () => {
    await enqueue(db.kysely, { kind: 'a', key: 'k1', payload: { n: 1 } }, T0);
    await enqueue(db.kysely, { kind: 'b', key: 'k1', payload: { n: 2 } }, T0);
    await enqueue(db.kysely, { kind: 'a', key: 'k2', payload: { n: 3 } }, T0);
    const first = await lease('w1');
    expect(first.map((j) => JSON.parse(j.payload).n)).toEqual([1, 3]);
    expect(first.every((j) => j.status === 'running' && j.attempts === 1)).toBe(true);
    await completeJob(db.kysely, first[0]!, T0);
    const second = await lease('w1');
    expect(second.map((j) => JSON.parse(j.payload).n)).toEqual([2]);
  });

  it('gives a crashed worker’s job to another after the lease expires', async () => {
    await enqueue(db.kysely, { kind: 'a', key: 'k1' }, T0);
    const [job] = await lease('w1');
    expect(await lease('w2', T0 + 10_000)).toEqual([]);
    const again = await lease('w2', T0 + 31_000);
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ id: job!.id, locked_by: 'w2', attempts: 2 });
    // The old owner can no longer complete it.
    await completeJob(db.kysely, job!, T0 + 32_000);
    const row = await db.kysely.selectFrom('jobs').selectAll().where('id', '=', job!.id).executeTakeFirstOrThrow();
    expect(row.status).toBe('running');
  });

  it('retries with backoff, then dead-letters with the last error, blocking only its key', async () => {
    await enqueue(db.kysely, { kind: 'a', key: 'k1', maxAttempts: 2 }, T0);
    await enqueue(db.kysely, { kind: 'a', key: 'k1' }, T0 + 1);
    let [job] = await lease('w1');
    expect(await failJob(db.kysely, job!, { message: 'boom 1', retryable: true }, policy, T0)).toBe('retry');
    expect(await lease('w1', T0 + 400)).toEqual([]);
    [job] = await lease('w1', T0 + 1001);
    expect(job!.attempts).toBe(2);
    expect(await failJob(db.kysely, job!, { message: 'boom 2', retryable: true }, policy, T0 + 1001)).toBe('dead');
    const dead = await listDeadJobs(db.kysely);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ id: job!.id, last_error: 'boom 2' });
    // The later job of the same key waits behind the dead one; other keys are free.
    await enqueue(db.kysely, { kind: 'a', key: 'k2' }, T0);
    expect((await lease('w1', T0 + 10 ** 7)).map((j) => j.job_key)).toEqual(['k2']);
    expect(await replayDeadJob(db.kysely, job!.id, T0 + 10 ** 7)).toBe(true);
    const replayed = await lease('w1', T0 + 10 ** 7);
    expect(replayed.map((j) => j.id)).toEqual([job!.id]);
  });

  it('never hands the same job to two workers leasing at once', async () => {
    for (let i = 0; i < 40; i++) await enqueue(db.kysely, { kind: 'a', key: `k${i}` }, T0);
    const batches = await Promise.all(['w1', 'w2', 'w3', 'w4'].map((w) => lease(w, T0, 15)));
    const ids = batches.flat().map((j) => j.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(40);
  });

  it('worker settles each job of a batch by its result and dead-letters permanent errors at once', async () => {
    for (const key of ['ok', 'later', 'bad', 'flaky']) await enqueue(db.kysely, { kind: 'k', key });
    const seen: string[] = [];
    const worker = new Worker({
      db,
      logger: createTestLogger(),
      backoff: { baseMs: 60_000, maxMs: 60_000 },
      handlers: [
        {
          kind: 'k',
          async run(jobs: Job[]) {
            const out = new Map<number, JobResult>();
            for (const job of jobs) {
              seen.push(job.job_key);
              if (job.job_key === 'ok') out.set(job.id, { type: 'done' });
              if (job.job_key === 'later') out.set(job.id, { type: 'postpone', delayMs: 60_000, reason: 'index trails' });
              if (job.job_key === 'bad') out.set(job.id, { type: 'failed', error: new PermanentError('field 932790 missing') });
              if (job.job_key === 'flaky') out.set(job.id, { type: 'failed', error: new Error('socket hang up') });
            }
            return out;
          },
        },
      ],
    });
    expect(await worker.runOnce()).toBe(4);
    expect(await worker.runOnce()).toBe(0);
    const rows = await db.kysely.selectFrom('jobs').selectAll().orderBy('id').execute();
    const byKey = Object.fromEntries(rows.map((r) => [r.job_key, r]));
    expect(byKey.ok!.status).toBe('done');
    expect(byKey.later).toMatchObject({ status: 'queued', last_error: 'index trails', max_attempts: 13 });
    expect(byKey.bad).toMatchObject({ status: 'dead', last_error: 'field 932790 missing' });
    expect(byKey.flaky).toMatchObject({ status: 'queued', last_error: 'socket hang up' });
    expect(seen.sort()).toEqual(['bad', 'flaky', 'later', 'ok']);
  });
});
