import type { Kysely, Transaction } from 'kysely';
import type { z } from 'zod';
import type { Database, Job } from '../db/schema.js';
import { PermanentError } from '../lib/http-error.js';
import { enqueue } from './enqueue.js';

/**
 * Typed jobs, after graphile-worker's task payload map: one map from each job kind to the
 * zod schema of its payload. `enqueue` accepts only a payload of the kind's shape; the
 * worker parses every payload with the kind's schema before the handler sees it, so no
 * handler casts what it reads, and a payload that does not parse sends its job to the
 * dead letter with the reason.
 *
 * @example
 * const jobs = defineJobs({ 'order.sync': z.object({ orderId: z.string() }) });
 * await jobs.enqueue(trx, 'order.sync', { orderId: 'DM-1' }, { key: 'order:DM-1' });
 * jobs.handler('order.sync', { run: async (batch) => … batch[0].payload.orderId … });
 */

export type PayloadSchemas = Record<string, z.ZodType>;

/** A leased job with its payload parsed. */
export type PayloadJob<P> = Omit<Job, 'payload'> & { payload: P };

/** What became of one job of a batch. */
export type JobResult =
  | { type: 'done' }
  /** Not a failure: wait and try again without spending an attempt. */
  | { type: 'postpone'; delayMs: number; reason: string }
  | { type: 'failed'; error: unknown }
  /**
   * Failed, and not to be retried: something else takes over (a periodic job's next run,
   * see ./schedule.ts). It ends as `done` with its error kept, never in the dead letter.
   */
  | { type: 'abandoned'; error: unknown };

/**
 * Runs the jobs of one kind. It gets a whole batch (at most one job per key, thanks to
 * the lease's FIFO rule) so it can share amoCRM calls between them, and answers per job.
 */
export interface JobHandler<S extends z.ZodType = z.ZodType> {
  kind: string;
  /** The payload's schema; the worker parses with it (parsePayload) before `run`. */
  payload: S;
  /**
   * Batch gathering: when a job of this kind is taken, jobs of the same kind due within
   * this many ms join its batch now. Events enqueued a little in the future (see
   * enqueue's runAt) then share one batched amoCRM read instead of one read each.
   */
  gatherMs?: number;
  run(jobs: Array<PayloadJob<z.output<S>>>): Promise<Map<number, JobResult>>;
}

export interface EnqueueOptions {
  /** Serialization key: the order id (or deal id) the job works on. */
  key: string;
  runAt?: number;
  inboxId?: number | null;
  maxAttempts?: number;
}

export interface JobCatalog<M extends PayloadSchemas> {
  readonly kinds: ReadonlyArray<keyof M & string>;
  /** Adds a job of `kind` (or joins its waiting twin, see enqueue); true when one was added. */
  enqueue<K extends keyof M & string>(
    db: Kysely<Database> | Transaction<Database>,
    kind: K,
    payload: z.input<M[K]>,
    options: EnqueueOptions,
    now?: number,
  ): Promise<boolean>;
  /** The handler of `kind`, whose jobs arrive with their payloads parsed. */
  handler<K extends keyof M & string>(kind: K, spec: Omit<JobHandler<M[K]>, 'kind' | 'payload'>): JobHandler<M[K]>;
}

export function defineJobs<M extends PayloadSchemas>(schemas: M): JobCatalog<M> {
  return {
    kinds: Object.keys(schemas),
    enqueue: (db, kind, payload, options, now) => enqueue(db, { kind, payload, ...options }, now),
    handler: (kind, spec) => ({ ...spec, kind, payload: schemas[kind]! }),
  };
}

/**
 * A stored payload read with its kind's schema, or the permanent error that sends the job
 * to the dead letter: no retry makes a malformed payload readable.
 */
export function parsePayload<S extends z.ZodType>(
  handler: Pick<JobHandler<S>, 'kind' | 'payload'>,
  job: Job,
): { ok: true; job: PayloadJob<z.output<S>> } | { ok: false; error: PermanentError } {
  const bad = (reason: string) => ({ ok: false as const, error: new PermanentError(`${handler.kind} job has a bad payload: ${reason}`) });
  let json: unknown;
  try {
    json = JSON.parse(job.payload);
  } catch {
    return bad('not JSON');
  }
  const parsed = handler.payload.safeParse(json);
  if (!parsed.success) {
    return bad(parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`).join('; '));
  }
  return { ok: true, job: { ...job, payload: parsed.data } };
}
