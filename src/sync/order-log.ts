import type { Kysely } from 'kysely';
import type { Database, Job, OrderLogSource } from '../db/schema.js';
import { redact, redactText } from '../lib/redact.js';
import type { SettledOutcome } from '../queue/worker.js';

/**
 * The order log: what the worker did and decided about an order, append-only, for the
 * order's admin timeline (src/admin/order-timeline.ts). Only what no other table keeps:
 * each job attempt's outcome, each call and what it changed, each decision. `detail`
 * holds ids, statuses, costs and field names; it still goes through redact(), so a
 * careless caller cannot leave a token or a phone in it.
 */
export interface OrderLogEntry {
  orderId: string;
  source: OrderLogSource;
  event: string;
  detail?: Record<string, unknown>;
}

/** Rows per insert: far below either database's limit on a statement's parameters. */
const INSERT_CHUNK = 500;

export async function appendOrderLog(db: Kysely<Database>, entries: OrderLogEntry[], now = Date.now()): Promise<void> {
  for (let i = 0; i < entries.length; i += INSERT_CHUNK) {
    await db
      .insertInto('order_log')
      .values(
        entries
          .slice(i, i + INSERT_CHUNK)
          .map((e) => ({ order_id: e.orderId, at: now, source: e.source, event: e.event, detail: JSON.stringify(redact(e.detail ?? {})) })),
      )
      .execute();
  }
}

/** A field that changed: its value before and after. */
export type FieldChange = { before: unknown; after: unknown };

/** The fields of `after` whose values differ from `before`'s, as before → after. Pure. */
export function fieldChanges<T extends Record<string, unknown>>(before: T, after: T, fields: ReadonlyArray<keyof T & string>): Record<string, FieldChange> {
  const changes: Record<string, FieldChange> = {};
  for (const field of fields) {
    if (JSON.stringify(before[field]) !== JSON.stringify(after[field])) changes[field] = { before: before[field] ?? null, after: after[field] ?? null };
  }
  return changes;
}

/** The order a job key is about: `order:<id>`, or `deal:<id>` through the order linked to that deal. */
export async function orderOfJobKey(db: Kysely<Database>, key: string): Promise<string | undefined> {
  if (key.startsWith('order:')) return key.slice('order:'.length);
  if (!key.startsWith('deal:')) return undefined;
  const dealId = Number(key.slice('deal:'.length));
  if (!Number.isInteger(dealId)) return undefined;
  const row = await db.selectFrom('orders').select('order_id').where('deal_id', '=', dealId).orderBy('order_id').executeTakeFirst();
  return row?.order_id;
}

/**
 * The worker's hook (WorkerOptions.onSettled): each attempt of a job about an order goes
 * into that order's log with its outcome; a dead one with the reason a person reads.
 */
export function recordJobOutcome(db: Kysely<Database>) {
  return async (job: Job, outcome: SettledOutcome): Promise<void> => {
    const orderId = await orderOfJobKey(db, job.job_key);
    if (!orderId) return;
    const detail: Record<string, unknown> = { jobId: job.id, kind: job.kind, attempt: job.attempts, outcome: outcome.type };
    if (outcome.type === 'postponed') detail.reason = outcome.reason;
    if ('error' in outcome) detail.error = redactText(outcome.error.split('\n')[0] ?? '');
    await appendOrderLog(db, [{ orderId, source: 'bridge', event: outcome.type === 'dead' ? 'job.dead_letter' : 'job.attempt', detail }]);
  };
}
