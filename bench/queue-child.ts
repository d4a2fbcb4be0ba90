import { CompiledQuery, type KyselyPlugin, sql } from 'kysely';
import { z } from 'zod';
import { connect, type Db } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import type { Insertable } from 'kysely';
import type { JobsTable } from '../src/db/schema.js';
import { createLogger } from '../src/logger.js';
import { leaseJobs } from '../src/queue/lease.js';
import { defineJobs, type JobResult } from '../src/queue/jobs.js';
import { Worker } from '../src/queue/worker.js';
import { childArgs, emitResult } from './lib/child.js';

/**
 * One queue measurement in a process of its own (`node --import tsx bench/queue-child.ts
 * <json>`): fill the jobs table with `backlog` waiting no-op jobs (a bulk insert, for
 * speed), then let the real Worker (leaseJobs → handler → completeJob) process `process`
 * of them, and time it. Also times one lease alone and keeps the plans of its statements.
 * With `finished`, the table first gets that many finished jobs.
 */

export interface QueueArgs {
  url: string;
  schema?: string;
  backlog: number;
  rounds: number;
  /** Jobs to process per round; undefined: all of them. */
  process?: number;
  timeLimitMs: number;
  /** PostgreSQL: ANALYZE jobs after each fill, as autovacuum does within a minute. */
  analyze?: boolean;
  /**
   * Finished jobs in the table before anything waits (a long-lived database before
   * retention); on PostgreSQL followed by VACUUM ANALYZE, as autovacuum does after such
   * an insert, so the planner sees a table of finished jobs and nothing waiting.
   */
  finished?: number;
}

export interface QueueRunResult {
  dialect: string;
  backlog: number;
  rounds: number;
  insertMs: number;
  processed: number;
  seconds: number;
  rate: number;
  /** Whether a round hit the time limit before its count. */
  bounded: boolean;
  /** Mean time of one lease (leaseJobs, limit 50) with the full backlog waiting, ms. */
  leaseMs: number;
  /** The statements one leaseJobs call sends, and their plans with the full backlog. */
  leaseSql: string[];
  plans: string[];
  /** Time to insert the finished jobs (and VACUUM ANALYZE them on PostgreSQL), ms. */
  finishedMs: number;
  /** Epoch ms: the first processing round's start and the last one's end, and this process's end. */
  processStartedAt: number;
  processFinishedAt: number;
  exitAt: number;
}

const KIND = 'bench.noop';
const benchJobs = defineJobs({ [KIND]: z.object({}) });
const args = childArgs<QueueArgs>();
const db = connect(args.url, { schema: args.schema });
// Kysely's migrator lists the tables of every schema; a schema dropped meanwhile by
// another process (parallel test runs) fails it with "schema … does not exist".
for (let attempt = 1; ; attempt++) {
  try {
    await migrate(db);
    break;
  } catch (error) {
    if (attempt >= 3 || !String(error).includes('does not exist')) throw error;
  }
}
const logger = createLogger('error', true);

async function fill(round: number, count: number): Promise<void> {
  const now = Date.now();
  await db.kysely.transaction().execute(async (trx) => {
    for (let i = 0; i < count; i += 1000) {
      const rows: Insertable<JobsTable>[] = [];
      for (let j = i; j < Math.min(count, i + 1000); j++) {
        rows.push({
          kind: KIND,
          job_key: `bench:${round}:${j}`,
          payload: '{}',
          status: 'queued',
          attempts: 0,
          max_attempts: 12,
          run_at: now,
          inbox_id: null,
          created_at: now,
          updated_at: now,
        });
      }
      await trx.insertInto('jobs').values(rows).execute();
    }
  });
}

/** `count` finished jobs of distinct keys, in one statement. */
async function fillFinished(count: number): Promise<void> {
  const old = Date.now() - 86_400_000;
  const columns = sql`(kind, job_key, payload, status, attempts, max_attempts, run_at, created_at, updated_at)`;
  const row = (n: string) => sql.raw(`'${KIND}', 'done:' || ${n}, '{}', 'done', 1, 12, ${old}, ${old}, ${old}`);
  if (db.dialect === 'postgres') {
    await sql`insert into jobs ${columns} select ${row('g')} from generate_series(1, ${sql.lit(count)}) g`.execute(db.kysely);
    await sql`vacuum analyze jobs`.execute(db.kysely);
  } else {
    await sql`insert into jobs ${columns}
      with recursive s(n) as (select 1 union all select n + 1 from s where n < ${sql.lit(count)})
      select ${row('n')} from s`.execute(db.kysely);
  }
  // Finished jobs of a real database were written long ago: their pages are in the table
  // files, not still waiting in the WAL to be copied back during the measurement (SQLite's
  // first commit would checkpoint the whole insert; PostgreSQL's checkpointer would flush it).
  // PostgreSQL's CHECKPOINT needs the right to run it; without, the run goes on as it is.
  if (db.dialect === 'postgres') await sql`checkpoint`.execute(db.kysely).catch(() => undefined);
  else await sql`pragma wal_checkpoint(truncate)`.execute(db.kysely);
}

async function doneCount(): Promise<number> {
  const row = await db.kysely
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('kind', '=', KIND)
    .where('status', '=', 'done')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

class Rollback extends Error {}

/** Runs `fn` in a transaction that is always rolled back. */
async function rolledBack(fn: (trxDb: Db) => Promise<void>): Promise<void> {
  await db.kysely
    .transaction()
    .execute(async (trx) => {
      await fn({ ...db, kysely: trx });
      throw new Rollback();
    })
    .catch((error: unknown) => {
      if (!(error instanceof Rollback)) throw error;
    });
}

const leaseOptions = { workerId: 'bench-probe', limit: 50, leaseMs: 30_000, kinds: [KIND] };

async function timeLease(samples: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < samples; i++) {
    await rolledBack(async (trxDb) => {
      const t = performance.now();
      await leaseJobs(trxDb, leaseOptions);
      total += performance.now() - t;
    });
  }
  return total / samples;
}

/** The statements one leaseJobs call sends, run in a transaction rolled back. */
async function leaseStatements(): Promise<CompiledQuery[]> {
  const recorded: CompiledQuery[] = [];
  const recorder: KyselyPlugin = {
    transformQuery(input) {
      recorded.push(db.kysely.getExecutor().compileQuery(input.node, input.queryId));
      return input.node;
    },
    async transformResult(input) {
      return input.result;
    },
  };
  await rolledBack(async (trxDb) => {
    await leaseJobs({ ...trxDb, kysely: trxDb.kysely.withPlugin(recorder) }, leaseOptions);
  });
  if (recorded.length === 0) throw new Error('leaseJobs sent no statement');
  return recorded;
}

async function explain(statement: CompiledQuery): Promise<string> {
  if (db.dialect === 'sqlite') {
    const result = await db.kysely.executeQuery<{ id: number; parent: number; detail: string }>(
      CompiledQuery.raw(`explain query plan ${statement.sql}`, [...statement.parameters]),
    );
    const depth = new Map<number, number>([[0, 0]]);
    return result.rows
      .map((r) => {
        const d = (depth.get(r.parent) ?? 0) + 1;
        depth.set(r.id, d);
        return `${'  '.repeat(d - 1)}${r.detail}`;
      })
      .join('\n');
  }
  let plan = '';
  await rolledBack(async (trxDb) => {
    const result = await trxDb.kysely.executeQuery<Record<string, string>>(
      CompiledQuery.raw(`explain (analyze, buffers) ${statement.sql}`, [...statement.parameters]),
    );
    plan = result.rows.map((r) => Object.values(r)[0]).join('\n');
  });
  return plan;
}

async function processRound(target: number): Promise<{ processed: number; seconds: number; bounded: boolean }> {
  let handled = 0;
  let reached: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (reached = resolve));
  const handler = benchJobs.handler(KIND, {
    async run(jobs) {
      handled += jobs.length;
      if (handled >= target) reached();
      return new Map<number, JobResult>(jobs.map((j) => [j.id, { type: 'done' }]));
    },
  });
  const worker = new Worker({ db, handlers: [handler], logger });
  const before = await doneCount();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), args.timeLimitMs)));
  const t0 = performance.now();
  worker.start();
  const bounded = await Promise.race([done.then(() => false), timedOut]);
  await worker.stop();
  const seconds = (performance.now() - t0) / 1000;
  clearTimeout(timer);
  return { processed: (await doneCount()) - before, seconds, bounded };
}

let insertMs = 0;
let processed = 0;
let seconds = 0;
let bounded = false;
let leaseMs = 0;
let plans: string[] = [];
let leaseSql: string[] = [];
let finishedMs = 0;
if (args.finished) {
  const t = performance.now();
  await fillFinished(args.finished);
  finishedMs = performance.now() - t;
}
let processStartedAt = 0;
let processFinishedAt = 0;
for (let round = 0; round < args.rounds; round++) {
  const t = performance.now();
  await fill(round, args.backlog);
  insertMs += performance.now() - t;
  if (args.analyze && db.dialect === 'postgres') await sql`analyze jobs`.execute(db.kysely);
  if (round === 0) {
    const statements = await leaseStatements();
    leaseSql = statements.map((st) => st.sql.replace(/\s+/g, ' ').trim());
    plans = [];
    for (const st of statements) plans.push(await explain(st));
    leaseMs = await timeLease(10);
  }
  if (round === 0) processStartedAt = Date.now();
  const r = await processRound(args.process ?? args.backlog);
  processFinishedAt = Date.now();
  processed += r.processed;
  seconds += r.seconds;
  bounded ||= r.bounded;
}
await db.close();

const result: QueueRunResult = {
  dialect: db.dialect,
  backlog: args.backlog,
  rounds: args.rounds,
  insertMs,
  processed,
  seconds,
  rate: processed / seconds,
  bounded,
  leaseMs,
  leaseSql,
  plans,
  finishedMs,
  processStartedAt,
  processFinishedAt,
  exitAt: Date.now(),
};
emitResult(result);
