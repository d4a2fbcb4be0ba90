import type { Db } from '../db/connect.js';
import { readKv, writeKv } from '../db/kv.js';
import type { Logger } from '../logger.js';
import type { Mappings } from '../mappings/resolve.js';
import { orderSchema } from '../partner/schema.js';
import { periodicRun, type Schedule, startSchedule } from '../queue/schedule.js';
import { DEAL_RECONCILE, DEALS_SWEEP, type SyncJobHandler, syncJobs } from './jobs.js';
import { dealBelongsTo } from './deal-ownership.js';
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
  /** The first wait after a failed sweep (see Schedule). */
  retryBaseMs?: number;
}

/**
 * The backstop for webhooks that never arrive: every interval, read the pipeline's deals
 * updated since the last cursor (paged) and queue a reconcile for each deal whose order
 * is not where the table says it should be. A periodic job (src/queue/schedule.ts): one
 * key, so several instances never sweep at once, and an amoCRM outage of any length
 * only delays it.
 */
export function sweepHandler(deps: SweepDeps): SyncJobHandler<typeof DEALS_SWEEP> {
  return syncJobs.handler(
    DEALS_SWEEP,
    periodicRun(deps, sweepSchedule(deps.intervalMs, deps.retryBaseMs), async () => {
      await sweepOnce(deps);
    }),
  );
}

/** The sweep's schedule; an interval of 0 turns it off. */
export function sweepSchedule(intervalMs: number, retryBaseMs?: number): Schedule {
  return { kind: DEALS_SWEEP, key: 'sweep', intervalMs, retryBaseMs };
}

/** At start: the waiting sweep, created or re-timed (see startSchedule). */
export async function scheduleSweep(db: Db, intervalMs: number, now = Date.now(), logger?: Logger): Promise<void> {
  await startSchedule(db, sweepSchedule(intervalMs), logger, now);
}

/**
 * Queues the reconcile that reports a deal linked to an order it does not belong to,
 * unless a reconcile is already unfinished (waiting, running or dead) under the key: that
 * one re-reads the order's deal and reports it. The key is the one webhooks for the deal
 * use (the first linked order), so they coalesce with it too.
 */
async function reportMismatch(db: Db, key: string, dealId: number): Promise<boolean> {
  const open = await db.kysely
    .selectFrom('jobs')
    .select('id')
    .where('kind', '=', DEAL_RECONCILE)
    .where('job_key', '=', key)
    .where('status', '<>', 'done')
    .executeTakeFirst();
  if (open) return false;
  await syncJobs.enqueue(db.kysely, DEAL_RECONCILE, { dealId }, { key });
  return true;
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
      ? await db.kysely
          .selectFrom('orders')
          .selectAll()
          .where('deal_id', 'in', ids)
          .where('closed_by_partner', '=', 0)
          // Paused orders are left alone: resuming one reconciles its deal at once.
          .where('paused_at', 'is', null)
          .where('user_id', 'not in', (eb) => eb.selectFrom('paused_users').select('user_id'))
          .orderBy('order_id') // the first linked order keys the deal's jobs, as for its webhooks
          .execute()
      : [];
    for (const lead of leads) {
      newest = Math.max(newest, lead.updated_at ?? 0);
      const linked = rows.filter((r) => r.deal_id === lead.id);
      const row = linked[0];
      if (!row) continue;
      const stale = linked.find((r) => dealBelongsTo(lead, r.order_id, mappings).type === 'mismatch');
      if (stale) {
        // Nothing is planned on a deal that is not the order's: the reconcile re-reads it
        // and dies with the reason, once however many sweeps see the deal.
        if (await reportMismatch(db, `order:${row.order_id}`, lead.id)) {
          queued++;
          logger.warn('sweep.deal_mismatch', { dealId: lead.id, orderId: stale.order_id });
        }
        continue;
      }
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
