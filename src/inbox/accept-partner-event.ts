import type { Db } from '../db/connect.js';
import type { OrderWebhook } from '../partner/schema.js';
import { enqueue } from '../queue/enqueue.js';

export const ORDER_SYNC = 'order.sync';

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
  const order = input.event.data;
  const partnerUpdatedAt = Date.parse(order.updatedAt) || now;
  return db.kysely.transaction().execute(async (trx) => {
    const inbox = await trx
      .insertInto('inbox')
      .values({ source: 'partner', dedupe_key: `partner:${input.webhookId}`, received_at: now, body: input.rawBody })
      .onConflict((oc) => oc.column('dedupe_key').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!inbox) return { accepted: false, reason: 'duplicate' };

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
        origin: 'webhook',
        closed_by_partner: 0,
        info_pushed: 0,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) =>
        oc
          .column('order_id')
          .doUpdateSet({ snapshot, partner_status: order.status, partner_updated_at: partnerUpdatedAt, updated_at: now })
          // Webhooks can arrive out of order: keep the newest picture of the order.
          .where('orders.partner_updated_at', '<=', partnerUpdatedAt),
      )
      .execute();

    await enqueue(trx, { kind: ORDER_SYNC, key: `order:${order.id}`, payload: { orderId: order.id }, inboxId: inbox.id }, now);
    return { accepted: true, inboxId: inbox.id };
  });
}
