import { createHash } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { Db } from '../db/connect.js';
import type { Database, Order as OrderRow } from '../db/schema.js';
import { recordOrder } from '../inbox/accept-partner-event.js';
import { DEAL_RECONCILE, ORDER_SYNC, syncJobs } from './jobs.js';
import { HttpError } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import type { MappingsFile } from '../mappings/schema.js';
import { type Customer, type Order, type OrderStatus, orderSchema } from '../partner/schema.js';
import { desiredAdditionalInfo } from './additional-info.js';
import { changesBetween, type OrderChange, type OrderHistoryPoint, type OrderState, readOrderHistory, recordOrderHistory } from './order-history.js';
import { isUserPaused, pausedAmong } from './pause.js';
import type { PartnerPort } from './ports.js';
import { saveSnapshot, writeSnapshot } from './reconcile.js';

/**
 * Stage 3, the domain side of the webview: a signed-in user's orders, read from Company 1
 * and merged with what the bridge knows; new orders created through Company 1's API and
 * recorded for intake; cancellation where the mappings allow it. No HTTP here: the
 * webview's routes call these and render the results.
 */

/** What the webview reads of the mappings file: nothing here needs amoCRM's ids. */
export type WebviewMappings = Pick<MappingsFile, 'integrationStage' | 'services' | 'partner'>;

/** WEBVIEW_ORDER_LIMIT: at most `max` orders per user created in any `windowMs`. */
export interface OrderLimit {
  max: number;
  windowMs: number;
}

export interface WebviewOrdersDeps {
  db: Db;
  partner: PartnerPort;
  mappings: WebviewMappings;
  logger: Logger;
  orderLimit: OrderLimit;
  /** Called after an order.sync job was committed, so the worker starts at once. */
  onWorkEnqueued(): void;
}

/** One line of "my orders": Company 1's order with what the bridge adds to it. */
export interface OrderSummary {
  id: string;
  serviceId: string;
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
  | { event: 'with_manager' }
  | { event: 'changed'; change: OrderChange }
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

function summarize(order: Order, row: OrderRow | undefined): OrderSummary {
  return {
    id: order.id,
    serviceId: order.serviceId,
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
export function mergeOrders(live: Order[] | undefined, rows: OrderRow[]): OrderSummary[] {
  const rowOf = new Map(rows.map((r) => [r.order_id, r]));
  const byId = new Map<string, OrderSummary>();
  for (const order of live ?? []) byId.set(order.id, summarize(order, rowOf.get(order.id)));
  for (const row of rows) {
    if (byId.has(row.order_id)) continue;
    const snapshot = snapshotOf(row);
    if (snapshot) byId.set(row.order_id, summarize(snapshot, row));
  }
  return [...byId.values()].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
}

/** What the bridge's own records say happened to an order, for its timeline. */
export interface TimelineFacts {
  order: Order;
  row: OrderRow | undefined;
  /** The status orders are created in (the mappings' partner.initialStatus). */
  initialStatus: OrderStatus;
  /** Done jobs of the order's key (`order:<id>`): the first intake after the deal was linked. */
  jobs: Array<{ kind: string; updatedAt: number }>;
  /** The order's recorded pictures (order_history), oldest first. */
  history: OrderHistoryPoint[];
}

const stateOf = (order: Order): OrderState => ({
  status: order.status,
  cost: order.cost,
  paid: order.paid,
  subscriptionStatus: order.subscriptionStatus,
});

/**
 * The order's timeline: placed (Company 1's createdAt), passed to a manager (the first
 * finished intake once the deal exists), then each change a person would notice, at
 * Company 1's updatedAt of the picture that first showed it: from the order as created
 * through every recorded picture to the order as it is now. Oldest first.
 */
export function buildTimeline(facts: TimelineFacts): TimelineEntry[] {
  const { order, row } = facts;
  const entries: TimelineEntry[] = [];
  const createdAt = Date.parse(order.createdAt);
  if (Number.isFinite(createdAt)) {
    entries.push({ at: createdAt, event: 'placed', origin: row?.origin === 'webview' ? 'webview' : 'partner' });
  }
  const intake = facts.jobs.filter((j) => j.kind === ORDER_SYNC).sort((a, b) => a.updatedAt - b.updatedAt)[0];
  if (row?.deal_id != null && intake) entries.push({ at: intake.updatedAt, event: 'with_manager' });

  const pictures = [...facts.history].sort((a, b) => a.at - b.at);
  const updatedAt = Date.parse(order.updatedAt);
  const last = pictures.at(-1);
  // The order as it is now closes the walk, unless a recorded picture is as new.
  if (!last || (Number.isFinite(updatedAt) && updatedAt > last.at)) {
    pictures.push({ at: Number.isFinite(updatedAt) ? updatedAt : Date.now(), ...stateOf(order) });
  }
  let state: OrderState = { status: facts.initialStatus, cost: null, paid: false, subscriptionStatus: null };
  for (const picture of pictures) {
    for (const change of changesBetween(state, picture)) entries.push({ at: picture.at, event: 'changed', change });
    state = picture;
  }
  // A stable sort keeps the logical order of entries made in the same millisecond.
  return entries.sort((a, b) => a.at - b.at);
}

/** Whether another order may be created now: the user's webview orders started in the window. Pure. */
export type LimitDecision = { allowed: true } | { allowed: false; count: number; retryAt: number };

export function decideOrderLimit(startedAt: number[], limit: OrderLimit, now: number): LimitDecision {
  const recent = startedAt.filter((t) => t > now - limit.windowMs).sort((a, b) => a - b);
  if (recent.length < limit.max) return { allowed: true };
  // A place frees up when enough of the oldest orders have left the window.
  return { allowed: false, count: recent.length, retryAt: recent[recent.length - limit.max]! + limit.windowMs };
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
  // A paused user's orders get no writes (src/sync/pause.ts), and a create is one: refused
  // before anything is sent, as the order limit is.
  if (await isUserPaused(deps.db.kysely, input.userId)) {
    deps.logger.info('webview.order.refused_paused', { userId: input.userId });
    throw new OrdersOnHold();
  }

  // Before the create is sent: Company 1 may echo it as order.created before the answer is
  // recorded, and the worker must know that order is the webview's (see markOutsideWebview).
  // The same transaction counts the user's orders against WEBVIEW_ORDER_LIMIT, so a
  // refused attempt calls no one.
  await deps.db.kysely.transaction().execute(async (trx) => {
    await lockUser(trx, deps.db.dialect, input.userId);
    const retry = await trx.selectFrom('webview_orders').select('idempotency_key').where('idempotency_key', '=', key).executeTakeFirst();
    // The same form again (a double submit, a retry after an error) is not another order.
    if (retry) return;
    const decision = decideOrderLimit(await startedWithin(trx, input.userId, deps.orderLimit, now), deps.orderLimit, now);
    if (!decision.allowed) {
      deps.logger.warn('webview.order.limit_reached', { userId: input.userId, orders: decision.count, retryAt: decision.retryAt });
      throw new OrderLimitReached(decision.count, decision.retryAt);
    }
    await trx
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
      .execute();
  });

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

/** A user an admin paused (or whose order is paused): nothing was sent. */
export class OrdersOnHold extends Error {
  override name = 'OrdersOnHold';
  constructor() {
    super('the user’s orders are paused by an admin');
  }
}

/** A user who has created WEBVIEW_ORDER_LIMIT orders in its window; nothing was sent. */
export class OrderLimitReached extends Error {
  override name = 'OrderLimitReached';
  constructor(
    readonly count: number,
    /** Epoch ms from which one more order will be accepted. */
    readonly retryAt: number,
  ) {
    super(`the user created ${count} orders in the window; the next one is possible at ${new Date(retryAt).toISOString()}`);
  }
}

/** Whether the user may create an order now (the new-order form asks before it is shown). */
export async function orderLimitState(deps: WebviewOrdersDeps, userId: string, now = Date.now()): Promise<LimitDecision> {
  return decideOrderLimit(await startedWithin(deps.db.kysely, userId, deps.orderLimit, now), deps.orderLimit, now);
}

async function startedWithin(db: Kysely<Database>, userId: string, limit: OrderLimit, now: number): Promise<number[]> {
  const rows = await db
    .selectFrom('webview_orders')
    .select('started_at')
    .where('user_id', '=', userId)
    .where('started_at', '>', now - limit.windowMs)
    .execute();
  return rows.map((r) => r.started_at);
}

/**
 * Serializes the limit check of one user across instances. PostgreSQL: a transaction
 * advisory lock on the user id (released at commit). SQLite: one process owns the file and
 * Kysely runs its transactions one at a time on the single connection, so there is nothing to add.
 */
async function lockUser(trx: Transaction<Database>, dialect: Db['dialect'], userId: string): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtextextended(${`webview-order:${userId}`}, 0))`.execute(trx);
}

/** The user's orders; `live` is false when Company 1 did not answer. */
export async function listUserOrders(deps: WebviewOrdersDeps, userId: string): Promise<{ orders: OrderSummary[]; live: boolean }> {
  const rows = await deps.db.kysely.selectFrom('orders').selectAll().where('user_id', '=', userId).execute();
  try {
    const live = await deps.partner.listOrders(userId);
    // Company 1 answers by userId; anything else in the answer is not this user's.
    return { orders: mergeOrders(live.filter((o) => o.userId === userId), rows), live: true };
  } catch (error) {
    deps.logger.warn('webview.partner_unavailable', { userId, operation: 'list', error: String(error) });
    return { orders: mergeOrders(undefined, rows), live: false };
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

  const [comment, jobs, history] = await Promise.all([
    webviewCommentOf(db, orderId),
    db.kysely
      .selectFrom('jobs')
      .select(['kind', 'updated_at'])
      .where('job_key', '=', `order:${orderId}`)
      .where('status', '=', 'done')
      .orderBy('id')
      .execute(),
    readOrderHistory(db.kysely, orderId),
  ]);

  return {
    summary: summarize(order, row),
    order,
    live,
    comment,
    timeline: buildTimeline({
      order,
      row,
      initialStatus: deps.mappings.partner.initialStatus,
      jobs: jobs.map((j) => ({ kind: j.kind, updatedAt: j.updated_at })),
      history,
    }),
    cancellable: live && canCancel(deps.mappings, order.status) && !(row && (await pausedAmong(db.kysely, [row])).has(orderId)),
  };
}

/** The comment the user typed when creating the order in the webview, if any. */
export async function webviewCommentOf(db: Db, orderId: string): Promise<string | null> {
  const created = await db.kysely.selectFrom('webview_orders').select('comment').where('order_id', '=', orderId).orderBy('started_at').executeTakeFirst();
  return created?.comment ?? null;
}

export type CancelOutcome =
  | { type: 'cancelled'; order: Order }
  | { type: 'not_found' }
  | { type: 'not_allowed'; status: OrderStatus }
  /** Paused by an admin (the order or its user): no write, not even the user's cancel. */
  | { type: 'on_hold' };

/**
 * Cancels the user's order through Company 1's API where the mappings' transitions allow
 * `cancelled` from its current status (read live: the decision rests on Company 1's state,
 * not a snapshot). The key is derived from (order, the status it is cancelled from, the
 * additionalInfo sent), so a double submit is one cancellation.
 */
export async function cancelWebviewOrder(deps: WebviewOrdersDeps, userId: string, orderId: string): Promise<CancelOutcome> {
  const recorded = await deps.db.kysely.selectFrom('orders').select(['order_id', 'user_id', 'paused_at']).where('order_id', '=', orderId).executeTakeFirst();
  if (recorded && recorded.user_id === userId && (await pausedAmong(deps.db.kysely, [recorded])).has(orderId)) {
    deps.logger.info('webview.order.cancel_refused_paused', { userId, orderId });
    return { type: 'on_hold' };
  }
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
    // The user's own change, recorded as theirs (writeSnapshot would call it the bridge's);
    // the order.sync job tells the deal (the reverse table's note and move), as an
    // order.updated webhook from Company 1 would.
    await deps.db.kysely.transaction().execute(async (trx) => {
      await recordOrderHistory(trx, updated, 'webview');
      await writeSnapshot(trx, updated);
      await syncJobs.enqueue(trx, ORDER_SYNC, { orderId }, { key: `order:${orderId}` });
    });
    deps.onWorkEnqueued();
  }
  deps.logger.info('webview.order.cancelled', { userId, orderId, from: order.status, dealId: row?.deal_id ?? null });
  return { type: 'cancelled', order: updated };
}
