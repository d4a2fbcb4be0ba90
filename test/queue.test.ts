import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { connect, type Db } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { PermanentError } from '../src/lib/http-error.js';
import { createTestLogger } from '../src/logger.js';
import { backoffDelay } from '../src/queue/backoff.js';
import { listDeadJobs, replayDeadJob } from '../src/queue/dead-letter.js';
import { enqueue } from '../src/queue/enqueue.js';
import { describeFailure, lastErrorText } from '../src/queue/failure.js';
import { completeJob, expireLeases, failJob, reclaimAllLeases } from '../src/queue/finish.js';
import { defineJobs, type JobResult } from '../src/queue/jobs.js';
import { leaseJobs, leaseSuspects } from '../src/queue/lease.js';
import { Worker } from '../src/queue/worker.js';
import { DATABASES, dropDb, freshDatabaseUrl, freshDb } from './support/databases.js';
import { captureLogs } from './support/logs.js';

const T0 = 1_700_000_000_000;
const policy = { baseMs: 1000, maxMs: 60_000 };

/** The kinds the worker tests run, each with its payload's schema. */
const testJobs = defineJobs({
  k: z.object({}),
  slow: z.object({}),
  count: z.object({ n: z.number().int() }),
});
const done = (jobs: Array<{ id: number }>) => new Map<number, JobResult>(jobs.map((job) => [job.id, { type: 'done' }]));

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
    const takeOver = async (now: number) => {
      await expireLeases(db.kysely, { now });
      return (await leaseSuspects(db, { workerId: 'w2', limit: 10, leaseMs: 30_000, now }))[0] ?? (await lease('w2', now))[0];
    };
    expect(await takeOver(T0 + 10_000)).toBeUndefined();
    expect(await takeOver(T0 + 31_000)).toMatchObject({ id: job!.id, locked_by: 'w2', attempts: 2, lease_expiries: 1 });
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

  it('a failed job waits as retrying; a new event for its key is not absorbed by it, and runs after it', async () => {
    await enqueue(db.kysely, { kind: 'sync', key: 'order-1' }, T0);
    const [job] = await lease('w1');
    expect(await failJob(db.kysely, job!, { message: 'partner answered 503', retryable: true }, policy, T0)).toBe('retry');
    const row = await db.kysely.selectFrom('jobs').selectAll().where('id', '=', job!.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'retrying', attempts: 1, last_error: 'partner answered 503', locked_by: null });
    // The retry may yet end dead: the new event gets a job of its own, and later ones join that.
    expect(await enqueue(db.kysely, { kind: 'sync', key: 'order-1' }, T0 + 1)).toBe(true);
    expect(await enqueue(db.kysely, { kind: 'sync', key: 'order-1' }, T0 + 2)).toBe(false);
    expect(await lease('w1', T0 + 400)).toEqual([]);
    const [retry] = await lease('w1', T0 + 1001);
    expect(retry).toMatchObject({ id: job!.id, status: 'running', attempts: 2 });
    expect(await lease('w1', T0 + 1001)).toEqual([]);
    await completeJob(db.kysely, retry!, T0 + 1001);
    const [next] = await lease('w1', T0 + 1002);
    expect(next).toMatchObject({ job_key: 'order-1', attempts: 1 });
    expect(next!.id).toBeGreaterThan(job!.id);
    expect(await db.kysely.selectFrom('jobs').select('id').execute()).toHaveLength(2);
  });

  it('an expired lease counts as an attempt: the job runs again apart, and once spent ends dead with the reason', async () => {
    await enqueue(db.kysely, { kind: 'a', key: 'poison', maxAttempts: 3 }, T0);
    await enqueue(db.kysely, { kind: 'a', key: 'bystander', maxAttempts: 3 }, T0);
    const [poison, bystander] = await lease('w1', T0);
    // w1 dies with both. Nothing happens while the leases still run.
    expect(await expireLeases(db.kysely, { now: T0 + 29_000 })).toEqual({ retrying: [], dead: [] });
    const lost = await expireLeases(db.kysely, { now: T0 + 31_000 });
    expect(lost.dead).toEqual([]);
    expect(lost.retrying.map((j) => [j.id, j.status, j.attempts, j.lease_expiries, j.last_error, j.locked_by])).toEqual([
      [poison!.id, 'retrying', 1, 1, 'lease expired 1 time', null],
      [bystander!.id, 'retrying', 1, 1, 'lease expired 1 time', null],
    ]);
    // Suspects never share a batch with other jobs.
    await enqueue(db.kysely, { kind: 'a', key: 'fresh' }, T0 + 31_000);
    const [fresh, ...none] = await lease('w2', T0 + 31_000);
    expect([fresh!.job_key, none]).toEqual(['fresh', []]);
    await completeJob(db.kysely, fresh!, T0 + 31_000);
    const suspects = (workerId: string, now: number) => leaseSuspects(db, { workerId, limit: 10, leaseMs: 30_000, now });
    // Lost once, they are retried together (most crashes are not the jobs' fault)…
    expect((await suspects('w2', T0 + 31_000)).map((j) => [j.id, j.attempts])).toEqual([
      [poison!.id, 2],
      [bystander!.id, 2],
    ]);
    // …lost twice, one at a time.
    await expireLeases(db.kysely, { now: T0 + 62_000 });
    expect((await suspects('w3', T0 + 62_000)).map((j) => [j.id, j.attempts, j.lease_expiries])).toEqual([[poison!.id, 3, 2]]);
    // w3 dies too: the poison job's attempts are spent.
    const spent = await expireLeases(db.kysely, { now: T0 + 93_000 });
    expect(spent.retrying).toEqual([]);
    expect(spent.dead).toMatchObject([{ id: poison!.id, status: 'dead', attempts: 3, lease_expiries: 3, last_error: 'lease expired 3 times' }]);
    // The rest of the queue flows: the bystander runs, alone, and completes.
    const again = await suspects('w4', T0 + 93_000);
    expect(again).toMatchObject([{ id: bystander!.id, attempts: 3 }]);
    await completeJob(db.kysely, again[0]!, T0 + 93_000);
    expect(await suspects('w4', T0 + 93_000)).toEqual([]);
    expect((await listDeadJobs(db.kysely)).map((j) => j.id)).toEqual([poison!.id]);
  });

  it('reclaiming leases at start-up counts the attempt, and a job whose attempts are spent ends dead', async () => {
    await enqueue(db.kysely, { kind: 'a', key: 'k1', maxAttempts: 1 }, T0);
    await enqueue(db.kysely, { kind: 'a', key: 'k2', maxAttempts: 2 }, T0);
    await lease('w1', T0);
    // The process died; at start its SQLite file's leases are all freed, expired or not.
    expect(await reclaimAllLeases(db.kysely, T0 + 1)).toBe(2);
    const rows = await db.kysely.selectFrom('jobs').selectAll().orderBy('id').execute();
    expect(rows.map((r) => [r.job_key, r.status, r.attempts, r.last_error, r.locked_by])).toEqual([
      ['k1', 'dead', 1, 'lease expired 1 time', null],
      ['k2', 'retrying', 1, 'lease expired 1 time', null],
    ]);
    expect(await reclaimAllLeases(db.kysely, T0 + 2)).toBe(0);
  });

  it('replays a dead job as waiting, with a fresh budget', async () => {
    await enqueue(db.kysely, { kind: 'a', key: 'k1', maxAttempts: 1 }, T0);
    const [job] = await lease('w1');
    expect(await failJob(db.kysely, job!, { message: 'boom', retryable: true }, policy, T0)).toBe('dead');
    expect(await replayDeadJob(db.kysely, job!.id, T0 + 5)).toBe(true);
    expect(await replayDeadJob(db.kysely, job!.id, T0 + 5)).toBe(false);
    const row = await db.kysely.selectFrom('jobs').selectAll().where('id', '=', job!.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'queued', attempts: 1, max_attempts: 13, run_at: T0 + 5 });
    expect((await lease('w1', T0 + 5)).map((j) => j.id)).toEqual([job!.id]);
  });

  it('worker settles each job of a batch by its result and dead-letters permanent errors at once', async () => {
    for (const key of ['ok', 'later', 'bad', 'flaky']) await enqueue(db.kysely, { kind: 'k', key });
    const seen: string[] = [];
    const worker = new Worker({
      db,
      logger: createTestLogger(),
      backoff: { baseMs: 60_000, maxMs: 60_000 },
      handlers: [
        testJobs.handler('k', {
          async run(jobs) {
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
        }),
      ],
    });
    expect(await worker.runOnce()).toBe(4);
    expect(await worker.runOnce()).toBe(0);
    const rows = await db.kysely.selectFrom('jobs').selectAll().orderBy('id').execute();
    const byKey = Object.fromEntries(rows.map((r) => [r.job_key, r]));
    expect(byKey.ok!.status).toBe('done');
    // Postponed: waiting, not failing, and the attempt given back.
    expect(byKey.later).toMatchObject({ status: 'queued', last_error: 'index trails', max_attempts: 13 });
    expect(byKey.bad!.status).toBe('dead');
    expect(byKey.bad!.last_error).toMatch(/^field 932790 missing\n/);
    expect(byKey.flaky!.status).toBe('retrying');
    expect(byKey.flaky!.last_error).toMatch(/^socket hang up\n/);
    expect(seen.sort()).toEqual(['bad', 'flaky', 'later', 'ok']);
  });
});

describe.each(DATABASES)('worker on %s', (kind) => {
  let db: Db;
  let url: { url: string; schema?: string };
  beforeEach(async (ctx) => {
    url = await freshDatabaseUrl(kind, ctx.task.name);
    db = connect(url.url, { schema: url.schema });
    await migrate(db);
  });
  afterEach(async () => {
    await dropDb(db);
  });

  it('keeps the stack of an error, in the dead letter and in the log', async () => {
    await enqueue(db.kysely, { kind: 'k', key: 'bad' });
    await enqueue(db.kysely, { kind: 'k', key: 'flaky' });
    const logs = captureLogs('debug');
    const { logger } = logs;
    const worker = new Worker({
      db,
      logger,
      backoff: { baseMs: 60_000, maxMs: 60_000 },
      handlers: [
        testJobs.handler('k', {
          async run(jobs) {
            return new Map<number, JobResult>(
              jobs.map((job) => [
                job.id,
                { type: 'failed', error: job.job_key === 'bad' ? new PermanentError('field 932790 missing') : new Error('socket hang up') },
              ]),
            );
          },
        }),
      ],
    });
    expect(await worker.runOnce()).toBe(2);
    const rows = await db.kysely.selectFrom('jobs').selectAll().orderBy('id').execute();
    const [bad, flaky] = rows;
    // The message first (what a person reads in a list), then where it was thrown.
    expect(bad!.last_error).toMatch(/^field 932790 missing\n\s+at .*queue\.test\.ts/);
    expect(flaky!.last_error).toMatch(/^socket hang up\n\s+at .*queue\.test\.ts/);
    const dead = logs.events().find((e) => e.message === 'job.dead');
    const retry = logs.events().find((e) => e.message === 'job.retry');
    expect(dead).toMatchObject({ jobId: bad!.id, error: 'field 932790 missing' });
    expect(dead!.stack).toMatch(/^\s+at .*queue\.test\.ts/);
    expect(retry).toMatchObject({ jobId: flaky!.id, error: 'socket hang up' });
    expect(retry!.stack).toMatch(/^\s+at .*queue\.test\.ts/);
  });

  it('parses payloads with the kind\'s schema; one that does not parse ends dead with the reason', async () => {
    await enqueue(db.kysely, { kind: 'count', key: 'good', payload: { n: 1 } });
    await enqueue(db.kysely, { kind: 'count', key: 'bad', payload: { n: 'one' } });
    const seen: unknown[] = [];
    const worker = new Worker({
      db,
      logger: createTestLogger(),
      handlers: [
        testJobs.handler('count', {
          async run(jobs) {
            for (const job of jobs) seen.push(job.payload.n);
            return done(jobs);
          },
        }),
      ],
    });
    expect(await worker.runOnce()).toBe(2);
    expect(seen).toEqual([1]);
    const rows = await db.kysely.selectFrom('jobs').selectAll().orderBy('id').execute();
    expect(rows.map((r) => [r.job_key, r.status, r.attempts])).toEqual([
      ['good', 'done', 1],
      ['bad', 'dead', 1],
    ]);
    expect(rows[1]!.last_error).toMatch(/^count job has a bad payload: n: Invalid input: expected number, received string\n/);
  });

  it('runs jobs whose lease ran out before apart from other work, once the batches under way are over', async () => {
    const events: string[] = [];
    let startedFirst!: () => void;
    const firstStarted = new Promise<void>((r) => (startedFirst = r));
    const worker = new Worker({
      db,
      logger: createTestLogger(),
      handlers: [
        testJobs.handler('slow', {
          async run(jobs) {
            const keys = jobs.map((j) => j.job_key).join(',');
            events.push(`start ${keys}`);
            startedFirst();
            await new Promise((r) => setTimeout(r, 300));
            events.push(`end ${keys}`);
            return done(jobs);
          },
        }),
      ],
    });
    await enqueue(db.kysely, { kind: 'slow', key: 'n1' });
    const first = worker.runOnce();
    await firstStarted;
    // Meanwhile a job is lost with a worker that died (its lease ran out at once).
    await enqueue(db.kysely, { kind: 'slow', key: 's1' });
    await enqueue(db.kysely, { kind: 'slow', key: 'n2' });
    await leaseJobs(db, { workerId: 'gone', limit: 1, leaseMs: -1, kinds: ['slow'] });
    const second = worker.runOnce();
    expect(await Promise.all([first, second])).toEqual([1, 1]);
    expect(await worker.runOnce()).toBe(1);
    expect(events).toEqual(['start n1', 'end n1', 'start s1', 'end s1', 'start n2', 'end n2']);
  });

  it('logs a failing heartbeat once per streak, and its recovery', async () => {
    await enqueue(db.kysely, { kind: 'slow', key: 'k1' });
    const logs = captureLogs('debug');
    const { logger } = logs;
    // A second connection takes the table away under the worker, as a failover or a
    // lost connection would make every heartbeat fail for a while.
    const other = connect(url.url, { schema: url.schema });
    const worker = new Worker({
      db,
      logger,
      leaseMs: 600,
      handlers: [
        testJobs.handler('slow', {
          async run(jobs) {
            await sql`alter table jobs rename to jobs_away`.execute(other.kysely);
            await new Promise((r) => setTimeout(r, 1100));
            await sql`alter table jobs_away rename to jobs`.execute(other.kysely);
            await new Promise((r) => setTimeout(r, 700));
            return done(jobs);
          },
        }),
      ],
    });
    try {
      expect(await worker.runOnce()).toBe(1);
    } finally {
      await other.close();
    }
    const failed = logs.events().filter((e) => e.message === 'job.heartbeat_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ workerId: worker.id, jobs: 1 });
    expect(String(failed[0]!.error)).toMatch(/jobs/);
    expect(logs.events().filter((e) => e.message === 'job.heartbeat_recovered')).toHaveLength(1);
    const row = await db.kysely.selectFrom('jobs').select('status').executeTakeFirstOrThrow();
    expect(row.status).toBe('done');
  });
});

describe('failure text', () => {
  it('keeps the message first, then the frames and causes, within a bound', () => {
    const cause = new Error('ECONNRESET');
    const error = new Error('partner GET /orders/1 failed', { cause });
    const failure = describeFailure(error);
    expect(failure).toMatchObject({ message: 'partner GET /orders/1 failed', retryable: true });
    expect(failure.stack).toMatch(/^\s+at .*queue\.test\.ts[\s\S]*\ncaused by: ECONNRESET\n\s+at /);
    const text = lastErrorText(failure);
    expect(text.split('\n')[0]).toBe('partner GET /orders/1 failed');
    expect(lastErrorText({ message: 'x'.repeat(5000), stack: failure.stack }).length).toBeLessThanOrEqual(4000);
    expect(lastErrorText({ message: 'short', stack: '    at f (a.ts:1:1)\n'.repeat(500) }, 100)).toHaveLength(100);
    expect(lastErrorText(describeFailure('a string was thrown'))).toBe('a string was thrown');
    expect(describeFailure(new PermanentError('field missing')).retryable).toBe(false);
    expect(describeFailure(Object.assign(new Error('slow down'), { retryAfterMs: 5000 })).retryAfterMs).toBe(5000);
  });
});
