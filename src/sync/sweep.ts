import type { Db } from '../db/connect.js';
import { readKv, writeKv } from '../db/kv.js';
import type { Logger } from '../logger.js';
import type { Mappings } from '../mappings/resolve.js';
import { orderSchema } from '../partner/schema.js';
import type { JobResult } from '../queue/jobs.js';
import { DEAL_RECONCILE, DEALS_SWEEP, type SyncJobHandler, syncJobs } from './jobs.js';
import { dealStateOf, planOrderUpdate } from './plan-order-update.js';
import type { AmoPort } from './ports.js';

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
export function sweepHandler(deps: SweepDeps): SyncJobHandler<typeof DEALS_SWEEP> {
  return syncJobs.handler(DEALS_SWEEP, {
    async run(jobs) {
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
  });
}

export async function scheduleSweep(db: Db, intervalMs: number, now = Date.now()): Promise<void> {
  if (intervalMs <= 0) return;
  await syncJobs.enqueue(db.kysely, DEALS_SWEEP, {}, { key: 'sweep', runAt: now + intervalMs, maxAttempts: 3 }, now);
}

export async function sweepOnce(deps: SweepDeps, nowMs = Date.now()): Promise<{ read: number; queued: number }> {
  const { db, amo, mappings, logger } = deps;
  const saved = await readKv(db.kysely, CURSOR_KEY);
  const cursor = saved ? Number(saved) : Math.floor((nowMs - 2 * deps.intervalMs) / 1000);
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
        await syncJobs.enqueue(db.kysely, DEAL_RECONCILE, { dealId: lead.id }, { key: `order:${row.order_id}` });
        queued++;
        logger.info('sweep.out_of_step', { dealId: lead.id, orderId: row.order_id });
      }
    }
    if (!hasMore) break;
  }

  await writeKv(db.kysely, CURSOR_KEY, String(newest), nowMs);
  logger.info('sweep.done', { read, queued, cursor: newest });
  return { read, queued };
}
