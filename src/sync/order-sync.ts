import type { Db } from '../db/connect.js';
import type { Order as OrderRow } from '../db/schema.js';
import { OUTSIDE_WEBVIEW_NOTE } from '../inbox/accept-partner-event.js';
import type { Logger } from '../logger.js';
import type { Mappings } from '../mappings/resolve.js';
import { type AdditionalInfo, type Order, orderSchema, orderStatusSchema } from '../partner/schema.js';
import type { JobResult } from '../queue/jobs.js';
import { onBehalfOf } from '../lib/call-context.js';
import { PermanentError } from '../lib/http-error.js';
import { desiredAdditionalInfo, sameAdditionalInfo } from './additional-info.js';
import { dealBelongsTo } from './deal-ownership.js';
import { type IntakeOutcome, intakeOrders, mapLimited } from './intake.js';
import { type DealUpdate, planDealUpdates } from './order-events.js';
import type { AmoLeadView, AmoPort, PartnerPort } from './ports.js';
import { webviewCommentOf } from './webview-orders.js';
import { ORDER_SYNC, type SyncJobHandler, syncJobs } from './jobs.js';
import { saveSnapshot } from './reconcile.js';
import { appendOrderLog, fieldChanges } from './order-log.js';
import { refreshSearchFields } from './order-search.js';
import { pausedAmong, skippedPaused } from './pause.js';

export interface OrderSyncDeps {
  db: Db;
  amo: AmoPort;
  partner: PartnerPort;
  mappings: Mappings;
  logger: Logger;
  settleMs: number;
}

/**
 * The job behind every partner order event: make sure the order has its contact and deal
 * (intake), that the partner order carries additionalInfo, and that the deal has heard of
 * what happened to the order (the reverse table, the user's comment). Each step reads
 * what is already recorded, so a repeated or coalesced event does nothing twice.
 */
export function orderSyncHandler(deps: OrderSyncDeps): SyncJobHandler<typeof ORDER_SYNC> {
  return syncJobs.handler(ORDER_SYNC, {
    async run(jobs) {
      const results = new Map<number, JobResult>();
      const orderIdOf = new Map(jobs.map((j) => [j.id, j.payload.orderId]));
      const rows = await deps.db.kysely
        .selectFrom('orders')
        .selectAll()
        .where('order_id', 'in', [...new Set(orderIdOf.values())])
        .execute();
      const rowOf = new Map(rows.map((r) => [r.order_id, r]));
      await refreshSearchFields(deps.db.kysely, rows);
      await markOutsideWebview(deps, rows);

      // A paused order is recorded but not written anywhere: its job ends here, in its log.
      const paused = await pausedAmong(deps.db.kysely, rows);
      const skipped = jobs.filter((j) => paused.has(orderIdOf.get(j.id)!));
      for (const job of skipped) results.set(job.id, { type: 'done' });
      await appendOrderLog(deps.db.kysely, skipped.map((job) => skippedPaused(orderIdOf.get(job.id)!, job)));
      if (skipped.length > 0) deps.logger.info('order.sync.skipped_paused', { orderIds: skipped.map((j) => orderIdOf.get(j.id)) });
      const active = jobs.filter((j) => !paused.has(orderIdOf.get(j.id)!));

      const jobOf = new Map(active.map((j) => [orderIdOf.get(j.id)!, j.id]));
      const intake = await intakeOrders(deps, rows.filter((r) => !paused.has(r.order_id)), jobOf);
      const plans = await mapLimited(active, 8, async (job): Promise<SyncPlan | undefined> => {
        const orderId = orderIdOf.get(job.id)!;
        const row = rowOf.get(orderId);
        if (!row) return void results.set(job.id, { type: 'failed', error: new Error(`order ${orderId} is not recorded`) });
        const outcome = intake.get(orderId)!;
        if (outcome.type !== 'ready') return void results.set(job.id, outcome);
        try {
          return { job, ...(await planSync(deps, row, outcome)) };
        } catch (error) {
          return void results.set(job.id, { type: 'failed', error });
        }
      });
      const ready = plans.filter((p) => p !== undefined);
      const refused = await checkDeals(deps, ready);
      await mapLimited(ready, 8, (plan) =>
        onBehalfOf([plan.row.order_id], async () => {
          try {
            const refusal = refused.get(plan.job.id);
            if (refusal) throw refusal;
            await pushAdditionalInfo(deps, plan);
            await updateDeal(deps, plan);
            results.set(plan.job.id, { type: 'done' });
          } catch (error) {
            results.set(plan.job.id, { type: 'failed', error });
          }
        }),
      );
      return results;
    },
  });
}

type Ready = Extract<IntakeOutcome, { type: 'ready' }>;

/** What one order's job will write: additionalInfo to Company 1, notes and a move to the deal. */
interface SyncPlan {
  job: { id: number };
  row: OrderRow;
  order: Order;
  ids: Ready;
  /** additionalInfo to write, when Company 1's differs from it. */
  info: AdditionalInfo | null;
  /** The notes and moves the deal still needs (planDealUpdates). */
  updates: DealUpdate[];
}

async function planSync(deps: OrderSyncDeps, row: OrderRow, ids: Ready): Promise<Omit<SyncPlan, 'job'>> {
  const { db } = deps;
  const order = orderSchema.parse(JSON.parse(row.snapshot));
  const info = desiredAdditionalInfo(order, ids);
  const [done, comment] = await Promise.all([
    db.kysely.selectFrom('deal_updates').selectAll().where('order_id', '=', row.order_id).execute(),
    row.origin === 'webview' ? webviewCommentOf(db, row.order_id) : null,
  ]);
  const updates = planDealUpdates(deps.mappings.orderEvents, {
    order,
    statusSetByBridge: orderStatusSchema.safeParse(row.status_by_bridge).data ?? null,
    comment,
    applied: new Map(done.map((d) => [d.kind, { noted: d.noted_at !== null, moved: d.moved_at !== null }])),
  });
  return { row, order, ids, info: sameAdditionalInfo(order.additionalInfo, info) ? null : info, updates };
}

/**
 * A deal the bridge did not create or find in this run is read before anything is
 * written for its order, all in one batched GET, and must carry the order's id
 * (dealBelongsTo). Orders with nothing to write, and new orders whose deal was just made,
 * cost no read. Answers the error each refused job fails with.
 */
async function checkDeals(deps: OrderSyncDeps, plans: SyncPlan[]): Promise<Map<number, unknown>> {
  const refused = new Map<number, unknown>();
  const unseen = plans.filter((p) => !p.ids.dealSeen && (p.info !== null || p.updates.length > 0));
  if (unseen.length === 0) return refused;
  let leads: Map<number, AmoLeadView>;
  try {
    leads = new Map((await deps.amo.getLeadsByIds([...new Set(unseen.map((p) => p.ids.dealId))])).map((l) => [l.id, l]));
  } catch (error) {
    for (const p of unseen) refused.set(p.job.id, error);
    return refused;
  }
  for (const { job, row, ids } of unseen) {
    const lead = leads.get(ids.dealId);
    const fields = { orderId: row.order_id, dealId: ids.dealId };
    if (!lead) {
      deps.logger.warn('deal.check.missing', fields);
      refused.set(
        job.id,
        new PermanentError(
          `deal ${ids.dealId} of order ${row.order_id} is not in amoCRM (deleted, or an account restored from a backup?), ` +
            `so nothing was written to Company 1 or amoCRM. Restore the deal, or link the order to its own deal ` +
            `(amobridge orders relink ${row.order_id} <deal-id>), then replay this job.`,
        ),
      );
      continue;
    }
    const owned = dealBelongsTo(lead, row.order_id, deps.mappings);
    if (owned.type === 'mismatch') {
      deps.logger.warn('deal.check.mismatch', { ...fields, carries: owned.carries });
      refused.set(job.id, new PermanentError(owned.reason));
    }
  }
  return refused;
}

async function pushAdditionalInfo(deps: OrderSyncDeps, plan: SyncPlan) {
  const { row, ids, info } = plan;
  const fields = { orderId: row.order_id, dealId: ids.dealId, contactId: ids.contactId };
  if (info === null) {
    deps.logger.debug('order.additional_info.unchanged', fields);
    return;
  }
  const key = `additionalInfo:${row.order_id}:${info.contactId}:${info.externalId}:${info.closedByDetmir}`;
  const updated = await deps.partner.patchOrder(row.order_id, { additionalInfo: info }, key);
  await appendOrderLog(deps.db.kysely, [
    {
      orderId: row.order_id,
      source: 'partner',
      event: 'order.patched',
      detail: { call: `PATCH /orders/${row.order_id}`, changes: fieldChanges(plan.order, updated, ['additionalInfo']) },
    },
  ]);
  await saveSnapshot(deps.db, updated);
  await deps.db.kysely.updateTable('orders').set({ info_pushed: 1 }).where('order_id', '=', row.order_id).execute();
  deps.logger.info('order.additional_info.written', { ...fields, closedByDetmir: info.closedByDetmir });
}

/**
 * The other direction: the notes and the move the order's state asks of its deal
 * (planDealUpdates), each recorded the moment it is made. A crash between a note and its
 * record repeats the note (a harmless duplicate); a repeated move finds the deal where it
 * should be and changes nothing.
 *
 * Stage 1: Company 1 closes its orders itself after 4 hours (executed, closedByDetmir).
 * The deal gets the reverse table's note, and from then on the bridge never pushes to
 * that order again (closed_by_partner).
 */
async function updateDeal(deps: OrderSyncDeps, { row, order, ids: { dealId }, updates }: SyncPlan): Promise<void> {
  const fields = { orderId: row.order_id, dealId };
  const noted = updates.filter((u) => u.note !== undefined);
  if (noted.length > 0) {
    await deps.amo.addLeadNotes(noted.map((u) => ({ leadId: dealId, text: u.note! })));
    await recordDealUpdates(deps, row.order_id, dealId, noted, 'noted_at');
    deps.logger.info('deal.note_added', { ...fields, kinds: noted.map((u) => u.kind) });
  }
  for (const update of updates.filter((u) => u.move !== undefined)) {
    await deps.amo.moveLeads([{ leadId: dealId, ...update.move! }]);
    await recordDealUpdates(deps, row.order_id, dealId, [update], 'moved_at');
    deps.logger.info('deal.moved', { ...fields, kind: update.kind, statusId: update.move!.statusId });
  }

  if (!row.closed_by_partner && order.status === 'executed' && order.additionalInfo?.closedByDetmir === true) {
    await deps.db.kysely.updateTable('orders').set({ closed_by_partner: 1, updated_at: Date.now() }).where('order_id', '=', row.order_id).execute();
    deps.logger.info('order.closed_by_partner', fields);
    await appendOrderLog(deps.db.kysely, [
      { orderId: row.order_id, source: 'bridge', event: 'decision', detail: { dealId, decision: 'closed by Company 1: the bridge no longer pushes to this order' } },
    ]);
  }
}

async function recordDealUpdates(
  deps: OrderSyncDeps,
  orderId: string,
  dealId: number,
  updates: DealUpdate[],
  column: 'noted_at' | 'moved_at',
): Promise<void> {
  const now = Date.now();
  for (const { kind } of updates) {
    await deps.db.kysely
      .insertInto('deal_updates')
      .values({ order_id: orderId, kind, deal_id: dealId, noted_at: null, moved_at: null, [column]: now })
      .onConflict((oc) => oc.columns(['order_id', 'kind']).doUpdateSet({ [column]: now }))
      .execute();
  }
}

/**
 * Stage 3: the webview is the only way to order, so an order that arrives by webhook
 * without the webview having created it was made on Company 1's side. It is taken in all
 * the same (nothing is lost); its record and the log say where it came from, for a person
 * to take up with Company 1.
 *
 * Company 1 may echo a webview create as order.created before the webview has recorded
 * the answer to its POST. So an order is not marked while the webview has a create of the
 * same user and service under way (started, no order id yet, within the window); the
 * webview's record then sets origin 'webview'. Should that record never come (a crash
 * between the POST and the commit), a later event for the order marks it.
 */
export const WEBVIEW_CREATE_WINDOW_MS = 10 * 60 * 1000;

async function markOutsideWebview(deps: OrderSyncDeps, rows: OrderRow[], now = Date.now()): Promise<void> {
  if (deps.mappings.integrationStage !== 3) return;
  for (const row of rows) {
    if (row.origin !== 'webhook' || row.note !== null) continue;
    const webviewCreate = await deps.db.kysely
      .selectFrom('webview_orders')
      .select('idempotency_key')
      .where((eb) =>
        eb.or([
          eb('order_id', '=', row.order_id),
          eb.and([
            eb('order_id', 'is', null),
            eb('user_id', '=', row.user_id),
            eb('service_id', '=', row.service_id),
            eb('started_at', '>', now - WEBVIEW_CREATE_WINDOW_MS),
          ]),
        ]),
      )
      .executeTakeFirst();
    if (webviewCreate) {
      deps.logger.debug('order.intake.webview_create_pending', { orderId: row.order_id });
      continue;
    }
    const marked = await deps.db.kysely
      .updateTable('orders')
      .set({ note: OUTSIDE_WEBVIEW_NOTE })
      .where('order_id', '=', row.order_id)
      .where('origin', '=', 'webhook')
      .where('note', 'is', null)
      .executeTakeFirst();
    if (Number(marked.numUpdatedRows) === 0) continue;
    row.note = OUTSIDE_WEBVIEW_NOTE;
    deps.logger.warn('order.intake.outside_webview', { orderId: row.order_id, userId: row.user_id, serviceId: row.service_id });
  }
}
