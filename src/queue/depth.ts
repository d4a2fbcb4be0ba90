import { type Kysely, sql } from 'kysely';
import type { Database, JobStatus } from '../db/schema.js';

/** The states a person watches, by the names the metrics use. */
export const QUEUE_STATES = ['waiting', 'running', 'retrying', 'dead'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

const STATE_OF: Partial<Record<JobStatus, QueueState>> = { queued: 'waiting', running: 'running', retrying: 'retrying', dead: 'dead' };

export interface QueueDepth {
  /** Jobs by kind and state; every known kind has every state, 0 included. */
  depth: Array<{ kind: string; state: QueueState; jobs: number }>;
  /** Per kind, how long the oldest due waiting job has been due (0 when none is). */
  oldestWaitingSeconds: Array<{ kind: string; seconds: number }>;
}

export interface DepthRow {
  kind: string;
  status: JobStatus;
  jobs: number;
  /** The earliest run_at among the group's due waiting jobs, if any. */
  oldest_due: number | null;
}

/**
 * The queue as it stands, in one grouped read over unfinished and dead jobs (the index
 * jobs_depth answers it without touching finished ones). For /metrics at scrape time and
 * the admin console.
 */
export async function readQueueDepth(db: Kysely<Database>, kinds: readonly string[], now = Date.now()): Promise<QueueDepth> {
  const rows = await db
    .selectFrom('jobs')
    .select((eb) => [
      'status',
      'kind',
      eb.fn.countAll<number>().as('jobs'),
      eb.fn.min<number | null>(sql<number | null>`case when status = 'queued' and run_at <= ${now} then run_at end`).as('oldest_due'),
    ])
    // Literally the predicate of jobs_depth (SQLite matches a partial index by its terms).
    .where(sql<boolean>`status in ('queued', 'running', 'retrying', 'dead')`)
    .groupBy(['status', 'kind'])
    .execute();
  return queueDepthOf(rows, kinds, now);
}

/**
 * The grouped rows as metric samples. Known kinds get a sample for every state, 0 included,
 * so a graph shows an empty queue rather than no data. Waiting age counts from when a job
 * became due (run_at), not from when it was queued: a job scheduled for later is not late.
 */
export function queueDepthOf(rows: readonly DepthRow[], kinds: readonly string[], now: number): QueueDepth {
  const allKinds = [...new Set([...kinds, ...rows.map((r) => r.kind)])].sort();
  const count = new Map<string, number>();
  const oldest = new Map<string, number>();
  for (const row of rows) {
    const state = STATE_OF[row.status];
    if (!state) continue;
    count.set(`${row.kind}\u0000${state}`, Number(row.jobs));
    if (row.oldest_due !== null) oldest.set(row.kind, Math.min(oldest.get(row.kind) ?? Infinity, Number(row.oldest_due)));
  }
  return {
    depth: allKinds.flatMap((kind) => QUEUE_STATES.map((state) => ({ kind, state, jobs: count.get(`${kind}\u0000${state}`) ?? 0 }))),
    oldestWaitingSeconds: allKinds.map((kind) => {
      const due = oldest.get(kind);
      return { kind, seconds: due === undefined ? 0 : Math.max(0, now - due) / 1000 };
    }),
  };
}
