import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../db/schema.js';

export interface EnqueueInput {
  kind: string;
  /** Serialization key: the order id (or deal id) the job works on. */
  key: string;
  payload?: unknown;
  maxAttempts?: number;
  runAt?: number;
  inboxId?: number | null;
}

export const DEFAULT_MAX_ATTEMPTS = 12;

/**
 * Adds a job, or joins the waiting one of the same kind and key (coalescing): events for
 * the same order that arrive while its job still waits cost no extra work, because the
 * worker reads current state rather than replaying the event. Returns whether a new job
 * was created. Meant to run inside the transaction that stored the event.
 *
 * Only a job that has never run is joined. A `retrying` job may yet end dead, and a
 * running one has read its state already: a new event makes a new job behind them.
 *
 * The untyped primitive: domain code enqueues through its job catalog (defineJobs in
 * ./jobs.ts), which checks the payload against the kind.
 */
export async function enqueue(
  db: Kysely<Database> | Transaction<Database>,
  input: EnqueueInput,
  now = Date.now(),
): Promise<boolean> {
  const result = await db
    .insertInto('jobs')
    .values({
      kind: input.kind,
      job_key: input.key,
      payload: JSON.stringify(input.payload ?? {}),
      status: 'queued',
      attempts: 0,
      max_attempts: input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      run_at: input.runAt ?? now,
      inbox_id: input.inboxId ?? null,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) =>
      // The predicate must repeat the partial index's own, literally (SQLite matches it by text).
      oc.columns(['kind', 'job_key']).where(sql<boolean>`status = 'queued' and attempts = 0`).doNothing(),
    )
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}
