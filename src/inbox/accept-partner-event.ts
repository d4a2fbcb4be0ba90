import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/connect.js';
import type { Database } from '../db/schema.js';
import type { Order, OrderWebhook } from '../partner/schema.js';
import { ORDER_SYNC, syncJobs } from '../sync/jobs.js';
import { recordOrderHistory } from '../sync/order-history.js';
import { acceptPartnerOnSqlite, acceptPartnersOnPostgres, type PartnerAcceptInput } from './accept-statements.js';
import { GroupCommit } from './group-commit.js';

export type AcceptResult = { accepted: true; inboxId: number } | { accepted: false; reason: 'duplicate' };

/**
 * Persists a verified partner webhook in one transaction: the raw event in the inbox,
 * the order's latest snapshot, and the job that will act on it. Nothing here calls out;
 * the HTTP answer follows the commit. A repeated webhook-id is absorbed by the inbox's
 * unique key and changes nothing.
 */
export async function acceptPartnerEvent(
  db: Db,
  input: { webhookId: string; rawBody: string; event: OrderWebhook },
  now = Date.now(),
): Promise<AcceptResult> {
  return db.kysely
    .transaction()
    .execute((trx) => takeInPartnerOrder(trx, { dedupeKey: `partner:${input.webhookId}`, rawBody: input.rawBody, order: input.event.data }, now));
}

export interface PartnerWebhookInput {
  webhookId: string;
  rawBody: string;
  event: OrderWebhook;
}

/** Takes in verified partner webhooks: each answered once its own row is committed. */
export interface PartnerAcceptor {
  accept(input: PartnerWebhookInput, now?: number): Promise<AcceptResult>;
  /** Resolves once every webhook handed over so far is written. */
  drain(): Promise<void>;
}

/**
 * The webhook route's way in: the prepared statements of ./accept-statements.ts, with the
 * webhooks that arrive together sharing one transaction (./group-commit.ts). Does what
 * acceptPartnerEvent does, webhook by webhook; a Db without a driver handle (a test's
 * stand-in) falls back to it.
 */
export function createPartnerAcceptor(db: Db, options: { onCommit?(size: number): void } = {}): PartnerAcceptor {
  const group = new GroupCommit<PartnerAcceptInput, AcceptResult>({ write: groupWriter(db), onCommit: options.onCommit });
  return {
    accept: (input, now = Date.now()) =>
      group.submit({ dedupeKey: `partner:${input.webhookId}`, rawBody: input.rawBody, order: input.event.data, now }),
    drain: () => group.drain(),
  };
}

function groupWriter(db: Db): (items: readonly PartnerAcceptInput[]) => Promise<AcceptResult[]> {
  const { sqlite, pool } = db;
  if (sqlite) {
    // Synchronous, under kysely's connection mutex: no kysely transaction is open on the
    // handle meanwhile, and none starts until this one has committed.
    const writeAll = sqlite.transaction((items: readonly PartnerAcceptInput[]) => items.map((item) => acceptPartnerOnSqlite(sqlite, item)));
    return (items) => db.kysely.connection().execute(async () => writeAll.immediate(items));
  }
  if (pool) {
    // One statement per group, atomic by itself: no BEGIN/COMMIT, one round trip.
    return async (items) => {
      const client = await pool.connect();
      try {
        return await acceptPartnersOnPostgres(client, items);
      } finally {
        client.release();
      }
    };
  }
  return (items) =>
    db.kysely.transaction().execute(async (trx) => {
      const results: AcceptResult[] = [];
      for (const item of items) results.push(await takeInPartnerOrder(trx, item, item.now));
      return results;
    });
}

/**
 * What a partner webhook does once verified, in the caller's transaction: the raw event
 * in the inbox under `dedupeKey` (a repeat is absorbed and changes nothing), then the
 * order and its `order.sync` job. The partner sweep takes in the orders whose webhooks
 * were lost through here too, under keys of its own, so they are handled exactly alike.
 */
export async function takeInPartnerOrder(
  trx: Transaction<Database>,
  input: { dedupeKey: string; rawBody: string; order: Order },
  now = Date.now(),
): Promise<AcceptResult> {
  const inbox = await trx
    .insertInto('inbox')
    .values({ source: 'partner', dedupe_key: input.dedupeKey, received_at: now, body: input.rawBody })
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!inbox) return { accepted: false, reason: 'duplicate' };

  await recordOrder(trx, input.order, { origin: 'webhook', inboxId: inbox.id }, now);
  return { accepted: true, inboxId: inbox.id };
}

/** Where an order came into the bridge: a Company 1 webhook, or the webview (stage 3). */
export type OrderOrigin = 'webhook' | 'webview';

/**
 * Records an order's latest snapshot and enqueues the `order.sync` job that does its
 * intake (contact, deal) and writes additionalInfo back. Runs inside the caller's
 * transaction, so the row and its job commit together. Shared by the partner webhook
 * and the webview, so an order recorded by both (the webview's create and Company 1's
 * order.created echo, in either order) is one row and, by the job's key, one intake.
 *
 * A webview record always wins the origin: if the order.created webhook raced in first,
 * the row ends as 'webview' all the same (and loses the "outside the webview" note the
 * worker may have given it in the meantime). The snapshot is replaced only by a newer one.
 */
export async function recordOrder(
  trx: Transaction<Database>,
  order: Order,
  source: { origin: OrderOrigin; inboxId?: number | null },
  now = Date.now(),
): Promise<void> {
  const partnerUpdatedAt = Date.parse(order.updatedAt) || now;
  const snapshot = JSON.stringify(order);
  await trx
    .insertInto('orders')
    .values({
      order_id: order.id,
      user_id: order.userId,
      service_id: order.serviceId,
      contact_id: null,
      deal_id: null,
      partner_status: order.status,
      snapshot,
      partner_updated_at: partnerUpdatedAt,
      note: null,
      origin: source.origin,
      closed_by_partner: 0,
      info_pushed: 0,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => {
      const existing = oc.column('order_id');
      if (source.origin === 'webhook') {
        return (
          existing
            .doUpdateSet({ snapshot, partner_status: order.status, partner_updated_at: partnerUpdatedAt, updated_at: now })
            // Webhooks can arrive out of order: keep the newest picture of the order.
            .where('orders.partner_updated_at', '<=', partnerUpdatedAt)
        );
      }
      // The webview's own create: the origin is set whatever the snapshot's age, so the
      // newest-picture rule moves into the values themselves.
      const newer = sql<boolean>`orders.partner_updated_at <= ${partnerUpdatedAt}`;
      return existing.doUpdateSet({
        origin: 'webview',
        note: sql<string | null>`case when orders.note = ${OUTSIDE_WEBVIEW_NOTE} then null else orders.note end`,
        snapshot: sql<string>`case when ${newer} then ${snapshot} else orders.snapshot end`,
        partner_status: sql<string>`case when ${newer} then ${order.status} else orders.partner_status end`,
        partner_updated_at: sql<number>`case when ${newer} then ${partnerUpdatedAt} else orders.partner_updated_at end`,
        updated_at: now,
      });
    })
    .execute();
  await recordOrderHistory(trx, order, source.origin === 'webview' ? 'webview' : 'partner', now);

  await syncJobs.enqueue(trx, ORDER_SYNC, { orderId: order.id }, { key: `order:${order.id}`, inboxId: source.inboxId ?? null }, now);
}

/**
 * The note on an order that Company 1 let a user create on its own side although the
 * integration is at stage 3, where the webview is the only way in (set by the worker).
 */
export const OUTSIDE_WEBVIEW_NOTE = 'created outside the webview (integration stage 3)';
