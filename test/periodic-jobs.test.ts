import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { connect, type Db } from '../src/db/connect.js';
import { readKv } from '../src/db/kv.js';
import { HttpError, PermanentError } from '../src/lib/http-error.js';
import { enqueue } from '../src/queue/enqueue.js';
import type { JobHandler } from '../src/queue/jobs.js';
import { leaseJobs } from '../src/queue/lease.js';
import { PERIODIC_MAX_ATTEMPTS, type PeriodicOutcome, periodicRun, retryDelay, type Schedule, startSchedule } from '../src/queue/schedule.js';
import { Worker } from '../src/queue/worker.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DEALS_SWEEP } from '../src/sync/jobs.js';
import { DATABASES, dropDb, freshDatabaseUrl, freshDb, refuseWrites } from './support/databases.js';
import { captureLogs } from './support/logs.js';
import { linkedOrder } from './support/orders.js';
import { restartBridge, testStack, waitFor } from './support/stack.js';

const SECOND = 1000;
const HOUR = 3600 * SECOND;
const KIND = 'test.periodic';

const sweepRuns = (db: Db) =>
  db.kysely.selectFrom('jobs').select(['id', 'status', 'run_at', 'created_at', 'last_error', 'attempts', 'max_attempts']).where('kind', '=', DEALS_SWEEP).orderBy('id').execute();
const runsOf = (db: Db, kind = KIND) =>
  db.kysely.selectFrom('jobs').select(['id', 'status', 'run_at', 'created_at', 'last_error', 'attempts', 'max_attempts']).where('kind', '=', kind).orderBy('id').execute();
const waiting = async (db: Db, kind = KIND) => (await runsOf(db, kind)).filter((r) => r.status === 'queued' && r.attempts === 0);

describe.each(DATABASES)('the amoCRM sweep through an outage on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('amoCRM down for longer than every retry budget, then back: a deal moved without a webhook is healed within one interval', async () => {
    stack = await testStack(kind, `periodic-outage-${kind}`, { env: { SWEEP_INTERVAL: '1' } });
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'outage');
    const { db } = stack.bridge;

    stack.amo.faults.outage = true;
    // Longer than every budget: the amoCRM client retries each read 6 times (7 requests),
    // and the sweep job once had 3 attempts (21 requests) before it died for good.
    const refused = () => stack!.amo.stats.requests.filter((r) => r.method === 'GET' && r.path === '/api/v4/leads' && r.status === 503).length;
    await waitFor('amoCRM to refuse five whole sweeps', () => refused() >= 5 * 7, 20_000);
    expect((await sweepRuns(db)).filter((r) => r.status === 'done' && r.last_error?.includes('503')).length).toBeGreaterThanOrEqual(4);
    await stack.amo.moveLead(dealId, { statusName: 'Confirmed VU' }, { fire: false });
    expect((await sweepRuns(db)).filter((r) => r.status === 'dead')).toEqual([]);

    stack.amo.faults.outage = false;
    const recoveredAt = Date.now();
    await waitFor('the sweep to heal the order', () => stack!.partner.orders.get(order.id)!.status === 'in_work', 10_000);
    expect(Date.now() - recoveredAt).toBeLessThan(SECOND + 2_000); // one interval, then the sweep, the reconcile and two writes to Company 1

    const runs = await sweepRuns(db);
    expect(runs.filter((r) => r.status === 'dead' || r.status === 'retrying')).toEqual([]);
    expect(runs.filter((r) => r.status === 'queued' && r.attempts === 0)).toHaveLength(1);
    await waitFor('the failure streak to be reset', async () => (await readKv(db.kysely, `schedule.${DEALS_SWEEP}.failures`)) === '0');
  }, 60_000);

  it('a shorter SWEEP_INTERVAL takes effect at the restart: the waiting sweep is re-timed, and dead sweeps of older versions block nothing', async () => {
    stack = await testStack(kind, `periodic-restart-${kind}`, { env: { SWEEP_INTERVAL: '3600' } });
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'restart');
    const [before] = await sweepRuns(stack.bridge.db);
    expect(before!.run_at).toBeGreaterThan(Date.now() + HOUR - 60 * SECOND);
    // What an older version left: a sweep spent into the dead letter, ahead of the waiting one.
    const at = Date.now() - HOUR;
    await stack.bridge.db.kysely
      .insertInto('jobs')
      .values({ id: 0, kind: DEALS_SWEEP, job_key: 'sweep', payload: '{}', status: 'dead', attempts: 3, max_attempts: 3, run_at: at, last_error: 'amocrm answered 503', created_at: at, updated_at: at })
      .execute();
    stack = await restartBridge(stack, { SWEEP_INTERVAL: 1 }, {
      tuning: { reconcileGatherMs: 100 },
      whileDown: () => stack!.amo.moveLead(dealId, { statusName: 'Confirmed VU' }, { fire: false }).then(() => undefined),
    });
    const bridge = stack.bridge;
    const restartedAt = Date.now();
    await waitFor('the re-timed sweep to heal the order', () => stack!.partner.orders.get(order.id)!.status === 'in_work', 10_000);
    expect(Date.now() - restartedAt).toBeLessThan(SECOND + 2_000); // one interval, then the sweep, the reconcile and two writes to Company 1
    const runs = await sweepRuns(bridge.db);
    expect(runs.find((r) => r.id === 0)).toMatchObject({ status: 'done', last_error: 'amocrm answered 503' });
    expect(runs.filter((r) => r.status === 'dead')).toEqual([]);
  });
});

describe.each(DATABASES)('schedules on %s', (kind) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  async function fresh(title: string): Promise<Db> {
    const db = await freshDb(kind, title);
    cleanups.push(() => dropDb(db));
    return db;
  }

  const schedule = (intervalMs: number): Schedule => ({ kind: KIND, key: 'periodic', intervalMs, retryBaseMs: 100 });

  function periodicWorker(db: Db, sched: Schedule, work: () => Promise<PeriodicOutcome>) {
    const logs = captureLogs();
    const handler: JobHandler = { kind: KIND, payload: z.object({}), ...periodicRun({ db, logger: logs.logger }, sched, work) };
    return { worker: new Worker({ db, logger: logs.logger, handlers: [handler], backoff: { baseMs: 10, maxMs: 10 } }), logs };
  }

  /** Makes the waiting run due now. */
  const due = (db: Db) => db.kysely.updateTable('jobs').set({ run_at: 0 }).where('kind', '=', KIND).where('status', '=', 'queued').execute();

  it('several instances starting at once leave one waiting run, also while a run is under way', async () => {
    const { url, schema } = await freshDatabaseUrl(kind, `periodic-many-${kind}`);
    const first = connect(url, { schema });
    cleanups.push(() => dropDb(first));
    const { migrate } = await import('../src/db/migrate.js');
    await migrate(first);
    // SQLite has one writer; PostgreSQL gets four connections racing.
    const dbs = [first, ...(kind === 'postgres' ? [1, 2, 3].map(() => connect(url, { schema })) : [first, first, first])];
    for (const db of dbs.slice(1)) if (db !== first) cleanups.push(() => dropDb(db));

    const now = Date.now();
    await Promise.all(dbs.map((db) => startSchedule(db, schedule(HOUR), undefined, now)));
    expect(await waiting(first)).toHaveLength(1);

    // One instance runs the waiting run while the others start again.
    const [run] = await leaseJobs(first, { workerId: 'w1', limit: 10, leaseMs: 60_000, kinds: [KIND], now: now + HOUR });
    expect(run).toBeDefined();
    await Promise.all(dbs.map((db) => startSchedule(db, schedule(HOUR), undefined, now + 1000)));
    await Promise.all(dbs.map((db) => startSchedule(db, schedule(HOUR), undefined, now + 2000)));
    const runs = await runsOf(first);
    expect(runs.map((r) => r.status).sort()).toEqual(['queued', 'running']);
    expect(runs.find((r) => r.status === 'queued')!.run_at).toBe(now + 1000 + HOUR);
  });

  it('a changed interval takes effect at the next start; a restart never postpones a run', async () => {
    const db = await fresh(`periodic-interval-${kind}`);
    const T = Date.now();
    await startSchedule(db, schedule(HOUR), undefined, T);
    expect((await waiting(db)).map((r) => r.run_at)).toEqual([T + HOUR]);
    // The same interval: a restart leaves the run where it was.
    await startSchedule(db, schedule(HOUR), undefined, T + 10 * SECOND);
    expect((await waiting(db)).map((r) => r.run_at)).toEqual([T + HOUR]);
    // Shortened: one new interval after the run was queued.
    await startSchedule(db, schedule(60 * SECOND), undefined, T + 20 * SECOND);
    expect((await waiting(db)).map((r) => r.run_at)).toEqual([T + 60 * SECOND]);
    // Lengthened: the waiting run keeps its time; the runs after it use the new interval.
    await startSchedule(db, schedule(2 * HOUR), undefined, T + 30 * SECOND);
    expect((await waiting(db)).map((r) => r.run_at)).toEqual([T + 60 * SECOND]);
    const { worker } = periodicWorker(db, schedule(2 * HOUR), async () => undefined);
    await due(db);
    const ran = Date.now();
    expect(await worker.runOnce()).toBe(1);
    const [next] = await waiting(db);
    expect(next!.run_at).toBeGreaterThanOrEqual(ran + 2 * HOUR);
    // Turned off: the waiting run is closed.
    await startSchedule(db, schedule(0), undefined, T + 40 * SECOND);
    expect(await waiting(db)).toEqual([]);
    expect((await runsOf(db)).map((r) => r.status)).toEqual(['done', 'done']);
  });

  it('a failing run is never retried into the dead letter: it ends, and the next one follows with backoff capped at the interval', async () => {
    const db = await fresh(`periodic-failing-${kind}`);
    const sched = schedule(1_000);
    let failWith: unknown = new PermanentError('no retry can fix this');
    let runs = 0;
    const { worker, logs } = periodicWorker(db, sched, async () => {
      runs++;
      if (failWith) throw failWith;
    });
    await startSchedule(db, sched);

    for (let failures = 1; failures <= 5; failures++) {
      await due(db);
      const ranAt = Date.now();
      expect(await worker.runOnce()).toBe(1);
      const all = await runsOf(db);
      expect(all.filter((r) => r.status === 'done')).toHaveLength(failures);
      expect(all.at(-2)!.last_error).toMatch(/^no retry can fix this/);
      const [next] = await waiting(db);
      // Backoff from 100 ms, doubling, never beyond the 1 s interval.
      expect(next!.run_at - ranAt).toBeLessThanOrEqual(1_000 + 300);
      expect(next!.run_at - ranAt).toBeGreaterThanOrEqual(Math.min(1_000, 100 * 2 ** (failures - 1)) / 2 - 50);
      expect(await readKv(db.kysely, `schedule.${KIND}.failures`)).toBe(String(failures));
    }
    expect(logs.events().filter((e) => e.message === 'job.abandoned')).toHaveLength(5);

    // A server's Retry-After beyond the interval is capped at the interval too.
    failWith = new HttpError('amocrm', 'GET', '/api/v4/leads', 429, '', 10 * HOUR);
    await due(db);
    let ranAt = Date.now();
    await worker.runOnce();
    expect((await waiting(db))[0]!.run_at - ranAt).toBeLessThanOrEqual(1_300);

    failWith = undefined;
    await due(db);
    ranAt = Date.now();
    await worker.runOnce();
    expect((await waiting(db))[0]!.run_at).toBeGreaterThanOrEqual(ranAt + 1_000);
    expect(await readKv(db.kysely, `schedule.${KIND}.failures`)).toBe('0');
    expect(logs.events().find((e) => e.message === 'schedule.recovered')).toMatchObject({ kind: KIND, failures: 6 });
    expect(runs).toBe(7);
    const all = await runsOf(db);
    expect(all.filter((r) => r.status === 'dead')).toEqual([]);
    expect(all.at(-2)).toMatchObject({ status: 'done', last_error: null });
  });

  it('a run asking for more runs again at once', async () => {
    const db = await fresh(`periodic-again-${kind}`);
    const sched = schedule(HOUR);
    const { worker } = periodicWorker(db, sched, async () => ({ again: true }));
    await startSchedule(db, sched);
    await due(db);
    const ranAt = Date.now();
    await worker.runOnce();
    const [next] = await waiting(db);
    expect(next!.run_at).toBeGreaterThanOrEqual(ranAt);
    expect(next!.run_at).toBeLessThanOrEqual(Date.now());
  });

  it('a run whose worker was lost twice is given up, and the next one scheduled', async () => {
    const db = await fresh(`periodic-lost-${kind}`);
    const sched = schedule(HOUR);
    let runs = 0;
    const { worker } = periodicWorker(db, sched, async () => {
      runs++;
    });
    await startSchedule(db, sched);
    await db.kysely.updateTable('jobs').set({ status: 'retrying', attempts: 2, lease_expiries: 2, run_at: 0 }).where('kind', '=', KIND).execute();
    expect(await worker.runOnce()).toBe(1);
    expect(runs).toBe(0);
    const [lost, next] = await runsOf(db);
    expect(lost).toMatchObject({ status: 'done' });
    expect(lost!.last_error).toMatch(/worker was lost 2 times/);
    expect(next).toMatchObject({ status: 'queued', attempts: 0 });
    expect(next!.run_at).toBeLessThanOrEqual(Date.now() + 100);
  });

  it('when the next run cannot be queued, this one is put back to run again', async () => {
    const db = await fresh(`periodic-unqueued-${kind}`);
    const sched = schedule(HOUR);
    let runs = 0;
    const { worker } = periodicWorker(db, sched, async () => {
      runs++;
    });
    await startSchedule(db, sched);
    await due(db);
    await refuseWrites(db, 'jobs', ['insert']);
    expect(await worker.runOnce()).toBe(1);
    expect(runs).toBe(1);
    const [run] = await runsOf(db);
    expect(run).toMatchObject({ status: 'queued', attempts: 1 });
    expect(run!.last_error).toMatch(/^could not queue the next test\.periodic run/);
    expect(run!.max_attempts).toBe(PERIODIC_MAX_ATTEMPTS + 1);
  });

  it('start-up closes dead runs of older versions and gives the waiting one the periodic budget', async () => {
    const db = await fresh(`periodic-legacy-${kind}`);
    await enqueue(db.kysely, { kind: KIND, key: 'periodic', maxAttempts: 3 });
    await db.kysely.updateTable('jobs').set({ status: 'dead', attempts: 3, last_error: 'spent' }).execute();
    await enqueue(db.kysely, { kind: KIND, key: 'periodic', maxAttempts: 3, runAt: 0 });
    expect(await leaseJobs(db, { workerId: 'w', limit: 10, leaseMs: 1000, kinds: [KIND] })).toEqual([]);

    const logs = captureLogs();
    expect(await startSchedule(db, schedule(HOUR), logs.logger)).toBe(1);
    expect(logs.events().find((e) => e.message === 'schedule.dead_runs_closed')).toMatchObject({ kind: KIND, jobs: 1 });
    const [dead, pending] = await runsOf(db);
    expect(dead).toMatchObject({ status: 'done', last_error: 'spent' });
    expect(pending).toMatchObject({ status: 'queued', max_attempts: PERIODIC_MAX_ATTEMPTS, run_at: 0 });
    expect(await leaseJobs(db, { workerId: 'w', limit: 10, leaseMs: 1000, kinds: [KIND] })).toHaveLength(1);
  });
});

describe('retryDelay', () => {
  const sched: Schedule = { kind: KIND, key: 'k', intervalMs: 60_000, retryBaseMs: 1_000 };
  it.each([
    [1, 0, 1_000],
    [3, 0, 4_000],
    [10, 0, 60_000],
    [1, 30_000, 30_000],
    [1, 10 * HOUR, 60_000],
  ])('failure %i with Retry-After %i waits at most %i ms', (failures, retryAfter, most) => {
    expect(retryDelay(failures, sched, retryAfter, () => 1)).toBe(most);
    expect(retryDelay(failures, sched, retryAfter, () => 0)).toBeGreaterThanOrEqual(Math.min(most, Math.max(retryAfter, most / 2)));
  });
});
