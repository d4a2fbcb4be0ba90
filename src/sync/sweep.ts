import type { Db } from '../db/connect.js';
import { DEAL_RECONCILE } from '../inbox/accept-amo-event.js';
import type { Job } from '../db/schema.js';
import type { Logger } from '../logger.js';
import type { Mappings } from '../mappings/resolve.js';
import { orderSchema } from '../partner/schema.js';
import { enqueue } from '../queue/enqueue.js';
import type { JobHandler, JobResult } from '../queue/worker.js';
import { dealStateOf, planOrderUpdate } from './plan-order-update.js';
import type { AmoPort } from './ports.js';

export const DEALS_SWEEP = 'deals.sweep';
const CURSOR_KEY = 'sweep.cursor';
/** amoCRM's updated_at has one-second resolution and writes land late: look back a little. */
const OVERLAP_SECONDS = 60;
/** A bound on one sweep, so a huge backlog is worked through over several. */
const MAX_PAGES = 40;

export interface SweepDeps {
  db: Db;
  amo: AmoPort;
  mappings: Mappings;
  logger: Logger;
  intervalMs: number;
}

/**
 * The backstop for webhooks that never arrive: every interval, read the pipeline's deals
 * updated since the last cursor (paged) and queue a reconcile for each deal whose order
 * is not where the table says it should be. The sweep is itself a job with one key, so
 * several instances never sweep at once; each run schedules the next.
 */
export function sweepHandler(deps: SweepDeps): JobHandler {
  return {
    kind: DEALS_SWEEP,
    async run(jobs: Job[]) {
      const results = new Map<number, JobResult>();
      try {
        await sweepOnce(deps);
        for (const job of jobs) results.set(job.id, { type: 'done' });
      } catch (error) {
        for (const job of jobs) results.set(job.id, { type: 'failed', error });
      }
      await scheduleSweep(deps.db, deps.intervalMs);
      return results;
    },
  };
}

export async function scheduleSweep(db: Db, intervalMs: number, now = Date.now()): Promise<void> {
  if (intervalMs <= 0) return;
  await enqueue(db.kysely, { kind: DEALS_SWEEP, key: 'sweep', runAt: now + intervalMs, maxAttempts: 3 }, now);
}

export async function sweepOnce(deps: SweepDeps, nowMs = Date.now()): Promise<{ read: number; queued: number }> {
  const { db, amo, mappings, logger } = deps;
  const saved = await db.kysely.selectFrom('kv').select('value').where('key', '=', CURSOR_KEY).executeTakeFirst();
  const cursor = saved ? Number(saved.value) : Math.floor((nowMs - 2 * deps.intervalMs) / 1000);
  let newest = cursor;
  let read = 0;
  let queued = 0;

  for (let page = 1; page <= MAX_PAGES; page++) {
    const { leads, hasMore } = await amo.listLeadsUpdatedSince({ pipelineId: mappings.pipeline.id, fromUnix: cursor - OVERLAP_SECONDS, page });
    read += leads.length;
    const ids = leads.map((l) => l.id);
    const rows = ids.length
      ? await db.kysely.selectFrom('orders').selectAll().where('deal_id', 'in', ids).where('closed_by_partner', '=', 0).execute()
      : [];
    const rowOf = new Map(rows.map((r) => [r.deal_id, r]));
    for (const lead of leads) {
      newest = Math.max(newest, lead.updated_at ?? 0);
      const row = rowOf.get(lead.id);
      if (!row) continue;
      const plan = planOrderUpdate(mappings, dealStateOf(lead, mappings), orderSchema.parse(JSON.parse(row.snapshot)));
      if (plan.type === 'update' || plan.type === 'unreachable') {
        await enqueue(db.kysely, { kind: DEAL_RECONCILE, key: `order:${row.order_id}`, payload: { dealId: lead.id } });
        queued++;
        logger.info('sweep.out_of_step', { dealId: lead.id, orderId: row.order_id });
      }
    }
    if (!hasMore) break;
  }

  await db.kysely
    .insertInto('kv')
    .values({ key: CURSOR_KEY, value: String(newest), updated_at: nowMs })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: String(newest), updated_at: nowMs }))
    .execute();
  logger.info('sweep.done', { read, queued, cursor: newest });
  return { read, queued };
}
