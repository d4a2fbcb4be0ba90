import type { Kysely } from 'kysely';
import type { Db } from '../db/connect.js';
import { RECONCILE_GATHER_MS } from '../inbox/accept-amo-event.js';
import type { Database, Order as OrderRow } from '../db/schema.js';
import { HttpError, PermanentError } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import type { Mappings } from '../mappings/resolve.js';
import { type Order, orderSchema } from '../partner/schema.js';
import type { JobResult } from '../queue/jobs.js';
import { desiredAdditionalInfo } from './additional-info.js';
import { dealBelongsTo } from './deal-ownership.js';
import { mapLimited } from './intake.js';
import { DEAL_RECONCILE, type SyncJobHandler, syncJobs } from './jobs.js';
import { type DealState, dealStateOf, planOrderUpdate, stageSyncOff } from './plan-order-update.js';
import { type AmoLeadView, type AmoPort, customFieldText, type PartnerPort } from './ports.js';
import { recordOrderHistory } from './order-history.js';
import { appendOrderLog, fieldChanges } from './order-log.js';
import { searchFieldsOf } from './order-search.js';
import { pausedAmong, skippedPaused } from './pause.js';

/** The fields of an order a reconcile may change, as its log shows them before → after. */
const ORDER_FIELDS = ['status', 'cost', 'paid', 'subscriptionStatus', 'additionalInfo'] as const;

export interface ReconcileDeps {
  db: Db;
  amo: AmoPort;
  partner: PartnerPort;
  mappings: Mappings;
  logger: Logger;
  /** Must match the wait the webhook route gives stage events (default RECONCILE_GATHER_MS). */
  gatherMs?: number;
}

/** Re-reading after a 409 is cheap; a loop that keeps conflicting is handed to the retry schedule. */
const MAX_CONFLICT_ROUNDS = 3;

/**
 * Reconcile, don't replay: an amoCRM event only says "deal N changed". The batch re-reads
 * all its deals in one GET /api/v4/leads?filter[id][]=…, then drives each order from
 * its deal's *current* stage to the state the table asks for (planOrderUpdate).
 */
export function reconcileHandler(deps: ReconcileDeps): SyncJobHandler<typeof DEAL_RECONCILE> {
  return syncJobs.handler(DEAL_RECONCILE, {
    gatherMs: deps.gatherMs ?? RECONCILE_GATHER_MS,
    async run(jobs) {
      const results = new Map<number, JobResult>();
      const dealOf = new Map(jobs.map((j) => [j.id, j.payload.dealId]));
      const leads = new Map((await deps.amo.getLeadsByIds([...new Set(dealOf.values())])).map((l) => [l.id, l]));

      await mapLimited(jobs, 8, async (job) => {
        const dealId = dealOf.get(job.id)!;
        try {
          await reconcileDeal(deps, dealId, leads.get(dealId), job);
          results.set(job.id, { type: 'done' });
        } catch (error) {
          results.set(job.id, { type: 'failed', error });
        }
      });
      return results;
    },
  });
}

async function reconcileDeal(deps: ReconcileDeps, dealId: number, lead: AmoLeadView | undefined, job: { id: number; kind: string }): Promise<void> {
  const { logger, mappings } = deps;
  if (!lead) return void logger.info('deal.reconcile.ignored', { dealId, reason: 'deal not found (deleted?)' });
  const row = await orderOfDeal(deps, lead);
  if (!row) return void logger.info('deal.reconcile.ignored', { dealId, reason: 'no order known to the bridge' });
  const fields = { dealId, orderId: row.order_id };
  const note = (decision: string, more: Record<string, unknown> = {}) =>
    appendOrderLog(deps.db.kysely, [{ orderId: row.order_id, source: 'bridge', event: 'decision', detail: { dealId, statusId: lead.status_id, decision, ...more } }]);
  if ((await pausedAmong(deps.db.kysely, [row])).has(row.order_id)) {
    logger.info('deal.reconcile.skipped_paused', fields);
    return void (await appendOrderLog(deps.db.kysely, [skippedPaused(row.order_id, job)]));
  }
  const off = stageSyncOff(mappings, row.closed_by_partner === 1);
  if (off) {
    logger.info('deal.reconcile.ignored', { ...fields, reason: off });
    return void (await note(`ignored: ${off}`));
  }

  const deal: DealState = dealStateOf(lead, mappings);
  let order: Order = orderSchema.parse(JSON.parse(row.snapshot));

  for (let round = 1; round <= MAX_CONFLICT_ROUNDS; round++) {
    const plan = planOrderUpdate(mappings, deal, order);
    if (plan.type === 'ignore') {
      logger.info('deal.reconcile.ignored', { ...fields, reason: plan.reason });
      return void (await note(`ignored: ${plan.reason}`));
    }
    if (plan.type === 'nothing') {
      logger.debug('deal.reconcile.in_step', fields);
      return void (await note('in step: nothing to change'));
    }
    if (plan.type === 'unreachable') throw new PermanentError(plan.reason);
    await note('update', { steps: plan.steps.length });

    const info = desiredAdditionalInfo(order, { contactId: row.contact_id ?? 0, dealId });
    try {
      for (const [i, step] of plan.steps.entries()) {
        // Derived from (the order's version, step): a retry of the same step is recognised by
        // Company 1 as a replay, a later change is not. Not the deal's updated_at: it is
        // whole seconds, and a price that goes 100 → 200 → 100 in one second would reuse
        // the first key and get the first answer back instead of a change.
        const key = `reconcile:${row.order_id}:${deal.id}:${order.updatedAt}:${order.status}:${i}:${JSON.stringify(step)}`;
        // Before the PATCH: the status it brings is the bridge's doing, not news from
        // Company 1 to tell the deal about (src/sync/order-events.ts), even after a crash.
        if (step.status) {
          await deps.db.kysely.updateTable('orders').set({ status_by_bridge: step.status }).where('order_id', '=', row.order_id).execute();
        }
        const before = order;
        order = await deps.partner.patchOrder(row.order_id, { ...step, additionalInfo: info }, key);
        await appendOrderLog(deps.db.kysely, [
          {
            orderId: row.order_id,
            source: 'partner',
            event: 'order.patched',
            detail: { call: `PATCH /orders/${row.order_id}`, dealId, changes: fieldChanges(before, order, ORDER_FIELDS) },
          },
        ]);
        await saveSnapshot(deps.db, order);
        logger.info('order.updated', { ...fields, ...step, status: order.status });
      }
      return;
    } catch (error) {
      if (!(error instanceof HttpError && error.status === 409)) throw error;
      // Someone else moved the order: read it again and recompute from what it is now.
      order = await deps.partner.getOrder(row.order_id);
      await saveSnapshot(deps.db, order);
      logger.info('order.conflict_reread', { ...fields, status: order.status, round });
      await note('conflict: Company 1 changed the order meanwhile; read again', { call: `GET /orders/${row.order_id}`, status: order.status, round });
    }
  }
  throw new Error(`order ${row.order_id} kept changing under reconcile (${MAX_CONFLICT_ROUNDS} conflicts)`);
}

/**
 * The order behind a deal: by the recorded deal id, else by the deal's detmirOrderId. A
 * deal the bridge linked to an order must carry that order's id (dealBelongsTo), or the
 * job is dead and no order is touched, not even the one the deal now names.
 */
export async function orderOfDeal(
  deps: { db: Db; mappings: Pick<Mappings, 'fields'>; logger?: Logger },
  lead: AmoLeadView,
): Promise<OrderRow | undefined> {
  const linked = await deps.db.kysely.selectFrom('orders').selectAll().where('deal_id', '=', lead.id).orderBy('order_id').execute();
  const linkedIds = linked.map((r) => r.order_id);
  for (const row of linked) {
    const owned = dealBelongsTo(lead, row.order_id, deps.mappings, linkedIds);
    if (owned.type === 'mismatch') {
      deps.logger?.warn('deal.check.mismatch', { dealId: lead.id, orderId: row.order_id, carries: owned.carries });
      throw new PermanentError(owned.reason);
    }
  }
  // Order ids are unique, so at most one linked order passes: it is the only one.
  if (linked[0]) return linked[0];
  const orderId = customFieldText(lead, deps.mappings.fields.detmirOrderId);
  if (!orderId) return undefined;
  const row = await deps.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', orderId).executeTakeFirst();
  // Only an order whose deal is this one, or not yet recorded, is driven by it.
  return row && (row.deal_id === null || row.deal_id === lead.id) ? row : undefined;
}

export async function saveSnapshot(db: Db, order: Order): Promise<void> {
  await writeSnapshot(db.kysely, order);
}

/** saveSnapshot inside the caller's transaction: only a newer picture replaces the recorded one. */
export async function writeSnapshot(executor: Kysely<Database>, order: Order): Promise<void> {
  const at = Date.parse(order.updatedAt) || Date.now();
  await recordOrderHistory(executor, order, 'bridge');
  await executor
    .updateTable('orders')
    .set({ snapshot: JSON.stringify(order), ...searchFieldsOf(JSON.stringify(order)), partner_status: order.status, partner_updated_at: at, updated_at: Date.now() })
    .where('order_id', '=', order.id)
    .where('partner_updated_at', '<=', at)
    .execute();
}
