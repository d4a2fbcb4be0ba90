import { CompiledQuery, type KyselyPlugin, type QueryId, type RootOperationNode, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/connect.js';
import { retentionOnce } from '../src/db/retention.js';
import { completeJob } from '../src/queue/finish.js';
import { leaseJobs, leaseSuspects } from '../src/queue/lease.js';
import { DATABASES, dropDb, freshDb } from './support/databases.js';

const T0 = 1_700_000_000_000;
/** Finished jobs already in the table: the backlog a long-lived database keeps until retention. */
const DONE = 200_000;

/**
 * The lease with a large finished backlog and, on PostgreSQL, statistics taken while the
 * queue was idle (every index over unfinished jobs looks empty to the planner): it still
 * takes jobs in id order under per-key FIFO, and each of its statements reads through the
 * indexes meant for it. Speed is measured by the benchmark (bench/queue.ts), not here:
 * these tests pin the plans that make it flat.
 */
describe.each(DATABASES)('lease order with a large finished backlog on %s', (kind) => {
  let db: Db;
  beforeEach(async (ctx) => {
    db = await freshDb(kind, ctx.task.name);
    await fillDone(db, DONE);
    if (kind === 'postgres') {
      // No autovacuum during the test: the statistics stay those of the idle queue.
      await sql`alter table jobs set (autovacuum_enabled = false)`.execute(db.kysely);
      await sql`vacuum analyze jobs`.execute(db.kysely);
    }
  }, 120_000);
  afterEach(async () => dropDb(db));

  it('leases in id order past held-back jobs, keeps per-key FIFO, and reads only through its indexes', async () => {
    // Held back at the head of the queue: 30 keys whose first job is dead (each blocks its
    // key until a person acts), more than the lease's first window of candidates...
    const blocked: number[] = [];
    for (let i = 0; i < 30; i++) {
      await insertJob(db, { job_key: `blocked:${i}`, status: 'dead', kind: 'a' });
      blocked.push(await insertJob(db, { job_key: `blocked:${i}`, status: 'queued', kind: 'a' }));
    }
    // ...retries not due yet, and a kind no handler of this worker runs.
    for (let i = 0; i < 5; i++) await insertJob(db, { job_key: `later:${i}`, status: 'retrying', kind: 'a', run_at: T0 + 60_000 });
    await insertJob(db, { job_key: 'other-kind', status: 'queued', kind: 'z' });
    // Then pairs of jobs of one key (the second waits for the first), and many single ones.
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < 5; i++) {
      const first = await insertJob(db, { job_key: `pair:${i}`, status: 'queued', kind: 'a' });
      pairs.push([first, await insertJob(db, { job_key: `pair:${i}`, status: 'retrying', kind: 'b' })]);
    }
    // A key with finished jobs in the backlog: those hold nothing back.
    const reused = await insertJob(db, { job_key: 'old:7', status: 'queued', kind: 'a' });
    await fillWaiting(db, 2_000);

    const recorded: CompiledQuery[] = [];
    const first = await leaseJobs(recording(db, recorded), { workerId: 'w1', limit: 10, leaseMs: 30_000, kinds: ['a', 'b'], now: T0 });
    // The first runnable jobs by id: each pair's first job and the reused key, then waiting ones.
    expect(first.map((j) => j.id)).toEqual([...pairs.map(([a]) => a), reused, ...(await waitingIds(db, 4))]);
    expect(first.some((j) => blocked.includes(j.id))).toBe(false);
    expect(new Set(first.map((j) => j.job_key)).size).toBe(first.length);

    // The walk went past the first window (the blocked jobs fill it), in more than one round.
    expect(recorded.length).toBeGreaterThanOrEqual(3);
    for (const statement of recorded) assertPlan(kind, statement, await explain(db, statement));

    // A pair's second job runs once its first is done, not before.
    const seconds = new Set(pairs.map(([, b]) => b));
    const next = await leaseJobs(db, { workerId: 'w2', limit: 5000, leaseMs: 30_000, kinds: ['a', 'b'], now: T0 });
    expect(next.some((j) => seconds.has(j.id))).toBe(false);
    expect(next.some((j) => blocked.includes(j.id))).toBe(false);
    expect(next).toHaveLength(2_000 - 4);
    for (const job of first) await completeJob(db.kysely, job, T0 + 1);
    const after = await leaseJobs(db, { workerId: 'w3', limit: 50, leaseMs: 30_000, kinds: ['a', 'b'], now: T0 + 2 });
    expect(after.map((j) => j.id)).toEqual(pairs.map(([, b]) => b));
  }, 120_000);

  it('takes suspects through their own index and the per-key probe', async () => {
    const suspect = await insertJob(db, { job_key: 'lost:1', status: 'retrying', kind: 'a', lease_expiries: 1 });
    await insertJob(db, { job_key: 'lost:1', status: 'queued', kind: 'a' });
    await fillWaiting(db, 2_000);
    const recorded: CompiledQuery[] = [];
    const taken = await leaseSuspects(recording(db, recorded), { workerId: 'w', limit: 10, leaseMs: 30_000, kinds: ['a'], now: T0 });
    expect(taken.map((j) => j.id)).toEqual([suspect]);
    const [read] = recorded;
    const plan = await explain(db, read!);
    if (kind === 'postgres') {
      expect(plan).toMatch(/jobs_suspects/);
      expect(plan).toMatch(/jobs_key/);
      expect(plan).not.toMatch(/Seq Scan|jobs_depth|jobs_lease_order|Sort/);
    } else {
      expect(plan).toMatch(/jobs_suspects/);
      expect(plan).not.toMatch(/TEMP B-TREE|SCAN (jobs|j|e)\b(?! USING)/);
    }
  }, 120_000);

  it('retention deletes finished jobs in batches, found through jobs_done', async () => {
    const recorded: CompiledQuery[] = [];
    const counts = await retentionOnce(
      { db: recording(db, recorded), retentionMs: 500, keyWindowMs: 0, finalStatuses: [], batchSize: 500, maxBatches: 3 },
      T0,
    );
    expect(counts.jobsDeleted).toBe(1_500);
    const deletes = recorded.filter((q) => /^delete from "jobs"/.test(q.sql));
    expect(deletes).toHaveLength(3);
    const plan = await explain(db, deletes[0]!);
    if (kind === 'postgres') {
      expect(plan).toMatch(/jobs_done/);
      expect(plan).toMatch(/jobs_pkey/);
      expect(plan).not.toMatch(/Seq Scan/);
    } else {
      expect(plan).toMatch(/INDEX jobs_done/);
      expect(plan).not.toMatch(/SCAN (jobs|j|e)\b(?! USING)/);
    }
  }, 120_000);
});

/** What each statement must read through (a full scan or a sort of waiting jobs is the regression). */
function assertPlan(kind: string, statement: CompiledQuery, plan: string): void {
  const isRead = /^\s*select/i.test(statement.sql);
  if (kind === 'postgres') {
    expect(plan).not.toMatch(/Seq Scan|jobs_depth|jobs_done|Hash (Semi |Anti |Right )?Join/);
    if (isRead) {
      // The window: leasable jobs in id order, no sort.
      expect(plan).toMatch(/Index Scan using jobs_lease_order/);
      expect(plan).not.toMatch(/Sort/);
    } else {
      // The lease: the window's rows by primary key, one jobs_key probe each.
      expect(plan).toMatch(/on jobs_pkey|using jobs_pkey/);
      expect(plan).toMatch(/using jobs_key/);
    }
  } else {
    expect(plan).not.toMatch(/SCAN (jobs|j|e)\b(?! USING)/);
    if (isRead) {
      expect(plan).toMatch(/USING (COVERING )?INDEX jobs_lease_order/);
      expect(plan).not.toMatch(/TEMP B-TREE/);
    } else {
      expect(plan).toMatch(/USING INTEGER PRIMARY KEY/);
      expect(plan).toMatch(/INDEX jobs_key/);
    }
  }
}

async function explain(db: Db, statement: CompiledQuery): Promise<string> {
  const prefix = db.dialect === 'postgres' ? 'explain ' : 'explain query plan ';
  const result = await db.kysely.executeQuery<Record<string, unknown>>(CompiledQuery.raw(prefix + statement.sql, [...statement.parameters]));
  return result.rows.map((r) => String(db.dialect === 'postgres' ? Object.values(r)[0] : r.detail)).join('\n');
}

class Recorder implements KyselyPlugin {
  constructor(
    private readonly db: Db,
    private readonly into: CompiledQuery[],
  ) {}
  transformQuery(input: { node: RootOperationNode; queryId: QueryId }): RootOperationNode {
    this.into.push(this.db.kysely.getExecutor().compileQuery(input.node, input.queryId));
    return input.node;
  }
  async transformResult<T>(input: { result: T }): Promise<T> {
    return input.result;
  }
}

/** The same database, recording each statement sent through it. */
function recording(db: Db, into: CompiledQuery[]): Db {
  return { ...db, kysely: db.kysely.withPlugin(new Recorder(db, into)) };
}

async function insertJob(
  db: Db,
  job: { job_key: string; status: 'queued' | 'retrying' | 'dead'; kind: string; run_at?: number; lease_expiries?: number },
): Promise<number> {
  const row = await db.kysely
    .insertInto('jobs')
    .values({
      kind: job.kind,
      job_key: job.job_key,
      payload: '{}',
      status: job.status,
      attempts: job.status === 'queued' ? 0 : 1,
      max_attempts: 12,
      run_at: job.run_at ?? T0,
      lease_expiries: job.lease_expiries ?? 0,
      inbox_id: null,
      created_at: T0,
      updated_at: T0,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

/** `count` finished jobs of distinct keys in one statement (a series on PostgreSQL, a recursive CTE on SQLite). */
async function fillDone(db: Db, count: number): Promise<void> {
  const columns = sql`(kind, job_key, payload, status, attempts, max_attempts, run_at, created_at, updated_at)`;
  const row = (n: string) => sql.raw(`'a', 'old:' || ${n}, '{}', 'done', 1, 12, ${T0 - 1000}, ${T0 - 1000}, ${T0 - 1000}`);
  if (db.dialect === 'postgres') {
    await sql`insert into jobs ${columns} select ${row('g')} from generate_series(1, ${sql.lit(count)}) g`.execute(db.kysely);
  } else {
    await sql`insert into jobs ${columns}
      with recursive s(n) as (select 1 union all select n + 1 from s where n < ${sql.lit(count)})
      select ${row('n')} from s`.execute(db.kysely);
  }
}

/** `count` waiting jobs of distinct keys, after everything else. */
async function fillWaiting(db: Db, count: number): Promise<void> {
  for (let i = 0; i < count; i += 500) {
    const rows = Array.from({ length: Math.min(500, count - i) }, (_, j) => ({
      kind: 'a',
      job_key: `wait:${i + j}`,
      payload: '{}',
      status: 'queued' as const,
      attempts: 0,
      max_attempts: 12,
      run_at: T0,
      inbox_id: null,
      created_at: T0,
      updated_at: T0,
    }));
    await db.kysely.insertInto('jobs').values(rows).execute();
  }
}

/** The ids of the first `count` single waiting jobs (keys wait:N). */
async function waitingIds(db: Db, count: number): Promise<number[]> {
  const rows = await db.kysely.selectFrom('jobs').select('id').where('job_key', 'like', 'wait:%').orderBy('id').limit(count).execute();
  return rows.map((r) => Number(r.id));
}
