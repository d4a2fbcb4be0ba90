import { createHash } from 'node:crypto';
import type { Db } from '../db/connect.js';
import type { Order as OrderRow } from '../db/schema.js';
import { recordOrder } from '../inbox/accept-partner-event.js';
import { DEAL_RECONCILE, ORDER_SYNC } from './jobs.js';
import { HttpError } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import type { MappingsFile } from '../mappings/schema.js';
import { type Customer, type Order, type OrderStatus, orderSchema } from '../partner/schema.js';
import { desiredAdditionalInfo } from './additional-info.js';
import type { PartnerPort } from './ports.js';
import { enqueue } from '../queue/enqueue.js';
import { saveSnapshot, writeSnapshot } from './reconcile.js';

/**
 * Stage 3, the domain side of the webview: a signed-in user's orders, read from Company 1
 * and merged with what the bridge knows; new orders created through Company 1's API and
 * recorded for intake; cancellation where the mappings allow it. No HTTP here: the
 * webview's routes call these and render the results.
 */

/** What the webview reads of the mappings file: nothing here needs amoCRM's ids. */
export type WebviewMappings = Pick<MappingsFile, 'integrationStage' | 'services' | 'partner'>;

export interface WebviewOrdersDeps {
  db: Db;
  partner: PartnerPort;
  mappings: WebviewMappings;
  logger: Logger;
  /** Called after an order.sync job was committed, so the worker starts at once. */
  onWorkEnqueued(): void;
}

/** One line of "my orders": Company 1's order with what the bridge adds to it. */
export interface OrderSummary {
  id: string;
  serviceId: string;
  serviceName: string;
  status: OrderStatus;
  cost: number | null;
  paid: boolean;
  subscriptionStatus: string | null;
  createdAt: string;
  /** A Company 2 manager has the order (the deal exists in amoCRM). */
  withManager: boolean;
}

/** One event of an order's life; the webview words it (src/webview/format.ts). */
export type TimelineEntry = { at: number } & (
  | { event: 'placed'; origin: 'webview' | 'partner' }
  | { event: 'received' }
  | { event: 'with_manager' }
  | { event: 'reported'; status: OrderStatus }
  | { event: 'manager_update' }
  | { event: 'now'; status: OrderStatus; changed: boolean }
);

export interface OrderDetails {
  summary: OrderSummary;
  order: Order;
  /** False when Company 1 did not answer and this is the bridge's last recorded picture. */
  live: boolean;
  comment: string | null;
  timeline: TimelineEntry[];
  cancellable: boolean;
}

// ---------------------------------------------------------------------------------------
// Pure decisions

/** Whether the mappings' transition table lets an order in this status be cancelled. */
export function canCancel(mappings: WebviewMappings, status: OrderStatus): boolean {
  return mappings.partner.transitions[status]?.includes('cancelled') ?? false;
}

/**
 * The Idempotency-Key of a webview create: the form's nonce (one per rendering of the
 * new-order form) with the user's id, so a double submit of one form sends one key and
 * Company 1 answers both with the same order, while two users can never share a key.
 */
export function webviewCreateKey(userId: string, nonce: string): string {
  return `webview-create:${createHash('sha256').update(`${userId}\n${nonce}`).digest('hex')}`;
}

export function serviceName(mappings: WebviewMappings, serviceId: string): string {
  return mappings.services.find((s) => s.id === serviceId)?.name ?? serviceId;
}

function summarize(mappings: WebviewMappings, order: Order, row: OrderRow | undefined): OrderSummary {
  return {
    id: order.id,
    serviceId: order.serviceId,
    serviceName: serviceName(mappings, order.serviceId),
    status: order.status,
    cost: order.cost,
    paid: order.paid,
    subscriptionStatus: order.subscriptionStatus,
    createdAt: order.createdAt,
    withManager: row?.deal_id != null,
  };
}

function snapshotOf(row: OrderRow): Order | undefined {
  const parsed = orderSchema.safeParse(JSON.parse(row.snapshot));
  return parsed.success ? parsed.data : undefined;
}

/**
 * "My orders": Company 1's list when it answered (the truth about status, cost, paid),
 * else the bridge's last recorded snapshots; in both cases joined with the bridge's rows
 * (whether a manager has it). Orders the bridge recorded that the live list lacks (a list
 * that trails a create) are kept. Newest first.
 */
export function mergeOrders(
  mappings: WebviewMappings,
  live: Order[] | undefined,
  rows: OrderRow[],
): OrderSummary[] {
  const rowOf = new Map(rows.map((r) => [r.order_id, r]));
  const byId = new Map<string, OrderSummary>();
  for (const order of live ?? []) byId.set(order.id, summarize(mappings, order, rowOf.get(order.id)));
  for (const row of rows) {
    if (byId.has(row.order_id)) continue;
    const snapshot = snapshotOf(row);
    if (snapshot) byId.set(row.order_id, summarize(mappings, snapshot, row));
  }
  return [...byId.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
}

/** What the bridge's own records say happened to an order, for its timeline. */
export interface TimelineFacts {
  order: Order;
  row: OrderRow | undefined;
  /** Done jobs of the order's key (`order:<id>`): intake and stage reconciles. */
  jobs: Array<{ kind: string; updatedAt: number }>;
  /** Company 1's webhooks about the order: what it said, when. */
  reports: Array<{ receivedAt: number; type: string; status: OrderStatus }>;
}

/**
 * The order's timeline, from Company 1's createdAt/updatedAt and the bridge's records:
 * the row (when Company 2 received the order), the first finished intake job after the
 * deal was linked (when a manager got it), Company 1's status reports, the updates the
 * bridge made from the manager's pipeline, and the order as it stands. Oldest first.
 */
export function buildTimeline(facts: TimelineFacts): TimelineEntry[] {
  const { order, row } = facts;
  const entries: TimelineEntry[] = [];
  const createdAt = Date.parse(order.createdAt);
  const updatedAt = Date.parse(order.updatedAt);
  const webview = row?.origin === 'webview';

  if (Number.isFinite(createdAt)) {
    entries.push({ at: createdAt, event: 'placed', origin: webview ? 'webview' : 'partner' });
  }
  if (row) entries.push({ at: row.created_at, event: 'received' });

  const intake = facts.jobs.filter((j) => j.kind === ORDER_SYNC).sort((a, b) => a.updatedAt - b.updatedAt)[0];
  if (row?.deal_id != null && intake) {
    entries.push({ at: intake.updatedAt, event: 'with_manager' });
  }

  let lastReported: OrderStatus | undefined;
  for (const report of [...facts.reports].sort((a, b) => a.receivedAt - b.receivedAt)) {
    // order.created repeats "placed"; a report of an unchanged status says nothing new.
    if (report.type === 'order.created' || report.status === lastReported) {
      lastReported = report.status;
      continue;
    }
    lastReported = report.status;
    entries.push({ at: report.receivedAt, event: 'reported', status: report.status });
  }

  for (const job of facts.jobs.filter((j) => j.kind === DEAL_RECONCILE)) {
    entries.push({ at: job.updatedAt, event: 'manager_update' });
  }

  // A stable sort keeps the logical order of entries made in the same millisecond.
  entries.sort((a, b) => a.at - b.at);
  // The order as it stands closes the timeline, at its own time, whatever the clocks of
  // the two systems say (the bridge's record of a change can trail Company 1's updatedAt).
  const changed = Number.isFinite(updatedAt) && updatedAt > createdAt;
  entries.push({ at: changed ? updatedAt : createdAt, event: 'now', status: order.status, changed });
  return entries;
}

// ---------------------------------------------------------------------------------------
// I/O shells

export interface CreateWebviewOrderInput {
  userId: string;
  serviceId: string;
  customer: Customer;
  comment?: string;
  /** The new-order form's nonce (see webviewCreateKey). */
  nonce: string;
}

/**
 * Creates an order through Company 1's API, then records it (origin 'webview') with its
 * `order.sync` job in one transaction: the job does the intake (contact, deal) and writes
 * additionalInfo back, exactly as for a webhook order. The same nonce again (a double
 * submit, a retry after an error) sends the same Idempotency-Key, so Company 1 answers
 * with the same order and the record and job coalesce: one order, one deal.
 *
 * Throws what the partner client throws (HttpError, TransportError…): the caller tells
 * the user, and a retry with the same nonce is always safe.
 */
export async function createWebviewOrder(deps: WebviewOrdersDeps, input: CreateWebviewOrderInput, now = Date.now()): Promise<Order> {
  if (deps.mappings.integrationStage !== 3) throw new Error('orders are created in the webview only at integration stage 3');
  if (!deps.mappings.services.some((s) => s.id === input.serviceId)) throw new Error(`unknown service ${input.serviceId}`);
  const key = webviewCreateKey(input.userId, input.nonce);
  const fields = { userId: input.userId, serviceId: input.serviceId, idempotencyKey: key };

  // Before the create is sent: Company 1 may echo it as order.created before the answer is
  // recorded, and the worker must know that order is the webview's (see markOutsideWebview).
  await deps.db.kysely
    .insertInto('webview_orders')
    .values({
      idempotency_key: key,
      user_id: input.userId,
      service_id: input.serviceId,
      comment: input.comment ?? null,
      started_at: now,
      order_id: null,
      recorded_at: null,
    })
    .onConflict((oc) => oc.column('idempotency_key').doNothing())
    .execute();

  let order: Order;
  try {
    order = await deps.partner.createOrder(
      {
        userId: input.userId,
        serviceId: input.serviceId,
        customer: input.customer,
        ...(input.comment ? { comment: input.comment } : {}),
      },
      key,
    );
  } catch (error) {
    deps.logger.warn('webview.order.create_failed', { ...fields, error: String(error) });
    throw error;
  }
  if (order.userId !== input.userId) {
    // Never record (and show) someone else's order under this user.
    throw new Error(`Company 1 answered POST /orders for user ${input.userId} with order ${order.id} of another user`);
  }

  const recordedAt = Date.now();
  await deps.db.kysely.transaction().execute(async (trx) => {
    await recordOrder(trx, order, { origin: 'webview' }, recordedAt);
    await trx
      .updateTable('webview_orders')
      .set({ order_id: order.id, recorded_at: recordedAt })
      .where('idempotency_key', '=', key)
      .execute();
  });
  deps.logger.info('webview.order.created', { ...fields, orderId: order.id, status: order.status });
  deps.onWorkEnqueued();
  return order;
}

/** The user's orders; `live` is false when Company 1 did not answer. */
export async function listUserOrders(deps: WebviewOrdersDeps, userId: string): Promise<{ orders: OrderSummary[]; live: boolean }> {
  const rows = await deps.db.kysely.selectFrom('orders').selectAll().where('user_id', '=', userId).execute();
  try {
    const live = await deps.partner.listOrders(userId);
    // Company 1 answers by userId; anything else in the answer is not this user's.
    return { orders: mergeOrders(deps.mappings, live.filter((o) => o.userId === userId), rows), live: true };
  } catch (error) {
    deps.logger.warn('webview.partner_unavailable', { userId, operation: 'list', error: String(error) });
    return { orders: mergeOrders(deps.mappings, undefined, rows), live: false };
  }
}

/**
 * One order of the user with its timeline, or undefined when it does not exist or is
 * another user's (the two are not told apart). Company 1's current state when it answers,
 * else the bridge's last snapshot.
 */
export async function getUserOrder(deps: WebviewOrdersDeps, userId: string, orderId: string): Promise<OrderDetails | undefined> {
  const { db } = deps;
  const row = await db.kysely.selectFrom('orders').selectAll().where('order_id', '=', orderId).executeTakeFirst();
  let order: Order | undefined;
  let live = true;
  try {
    order = await deps.partner.getOrder(orderId);
  } catch (error) {
    if (error instanceof HttpError && error.status === 404) return undefined;
    deps.logger.warn('webview.partner_unavailable', { userId, orderId, operation: 'get', error: String(error) });
    live = false;
    order = row ? snapshotOf(row) : undefined;
    if (!order) throw error;
  }
  if (order.userId !== userId) return undefined;

  const [comment, jobs, reports] = await Promise.all([
    webviewCommentOf(db, orderId),
    db.kysely
      .selectFrom('jobs')
      .select(['kind', 'updated_at', 'inbox_id'])
      .where('job_key', '=', `order:${orderId}`)
      .where('status', '=', 'done')
      .orderBy('id')
      .execute(),
    reportsOf(db, orderId),
  ]);

  return {
    summary: summarize(deps.mappings, order, row),
    order,
    live,
    comment,
    timeline: buildTimeline({
      order,
      row,
      jobs: jobs.map((j) => ({ kind: j.kind, updatedAt: j.updated_at })),
      reports,
    }),
    cancellable: live && canCancel(deps.mappings, order.status),
  };
}

/** The comment the user typed when creating the order in the webview, if any. */
export async function webviewCommentOf(db: Db, orderId: string): Promise<string | null> {
  const created = await db.kysely.selectFrom('webview_orders').select('comment').where('order_id', '=', orderId).orderBy('started_at').executeTakeFirst();
  return created?.comment ?? null;
}

/** Company 1's webhooks about the order, from the inbox rows its jobs were enqueued with. */
async function reportsOf(db: Db, orderId: string): Promise<TimelineFacts['reports']> {
  const rows = await db.kysely
    .selectFrom('jobs')
    .innerJoin('inbox', 'inbox.id', 'jobs.inbox_id')
    .select(['inbox.received_at', 'inbox.body'])
    .where('jobs.job_key', '=', `order:${orderId}`)
    .where('jobs.kind', '=', ORDER_SYNC)
    .where('inbox.source', '=', 'partner')
    .execute();
  const reports: TimelineFacts['reports'] = [];
  for (const row of rows) {
    try {
      const body = JSON.parse(row.body) as { type?: unknown; data?: unknown };
      const order = orderSchema.safeParse(body.data);
      if (order.success && order.data.id === orderId && typeof body.type === 'string') {
        reports.push({ receivedAt: row.received_at, type: body.type, status: order.data.status });
      }
    } catch {
      // A stored body is verified JSON; an unreadable one just adds nothing to the timeline.
    }
  }
  return reports;
}

export type CancelOutcome =
  | { type: 'cancelled'; order: Order }
  | { type: 'not_found' }
  | { type: 'not_allowed'; status: OrderStatus };

/**
 * Cancels the user's order through Company 1's API where the mappings' transitions allow
 * `cancelled` from its current status (read live: the decision rests on Company 1's state,
 * not a snapshot). The key is derived from (order, the status it is cancelled from, the
 * additionalInfo sent), so a double submit is one cancellation.
 */
export async function cancelWebviewOrder(deps: WebviewOrdersDeps, userId: string, orderId: string): Promise<CancelOutcome> {
  let order: Order;
  try {
    order = await deps.partner.getOrder(orderId);
  } catch (error) {
    if (error instanceof HttpError && error.status === 404) return { type: 'not_found' };
    throw error;
  }
  if (order.userId !== userId) return { type: 'not_found' };
  // Already cancelled (a double click whose first request won): the wish is fulfilled.
  if (order.status === 'cancelled') return { type: 'cancelled', order };
  if (!canCancel(deps.mappings, order.status)) return { type: 'not_allowed', status: order.status };

  const row = await deps.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', orderId).executeTakeFirst();
  // additionalInfo in the one format every stage sends, once the bridge knows the ids.
  const info =
    row?.contact_id != null && row.deal_id != null
      ? desiredAdditionalInfo(order, { contactId: row.contact_id, dealId: row.deal_id })
      : undefined;
  const key = `webview-cancel:${orderId}:${order.status}:${info ? `${info.contactId}:${info.externalId}:${info.closedByDetmir}` : '-'}`;
  let updated: Order;
  try {
    updated = await deps.partner.patchOrder(orderId, { status: 'cancelled', ...(info ? { additionalInfo: info } : {}) }, key);
  } catch (error) {
    if (error instanceof HttpError && error.status === 409) {
      // It moved on meanwhile (a manager approved it into work, say): tell the user what it is now.
      const current = await deps.partner.getOrder(orderId);
      if (row) await saveSnapshot(deps.db, current);
      return { type: 'not_allowed', status: current.status };
    }
    throw error;
  }
  if (row) {
    // The order.sync job tells the deal (the reverse table's note and move), as an
    // order.updated webhook from Company 1 would.
    await deps.db.kysely.transaction().execute(async (trx) => {
      await writeSnapshot(trx, updated);
      await enqueue(trx, { kind: ORDER_SYNC, key: `order:${orderId}`, payload: { orderId } });
    });
    deps.onWorkEnqueued();
  }
  deps.logger.info('webview.order.cancelled', { userId, orderId, from: order.status, dealId: row?.deal_id ?? null });
  return { type: 'cancelled', order: updated };
}
