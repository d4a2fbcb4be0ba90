import type { Kysely } from 'kysely';
import type { Database, OrderHistorySource } from '../db/schema.js';
import { type Order, type OrderStatus, orderStatusSchema } from '../partner/schema.js';

/**
 * What a person sees change on an order (status, cost, paid, subscription status), kept
 * per picture of the order the bridge records, so an order's timeline can say what
 * changed and when: "confirmed", "cost 4 900 ₽", "paid".
 */

/** The part of an order its timeline follows. */
export interface OrderState {
  status: OrderStatus;
  cost: number | null;
  paid: boolean;
  subscriptionStatus: string | null;
}

export type OrderChange =
  | { field: 'status'; status: OrderStatus }
  | { field: 'cost'; cost: number | null }
  | { field: 'paid'; paid: boolean }
  | { field: 'subscriptionStatus'; subscriptionStatus: string | null };

/** A recorded picture: the order's state as of Company 1's updatedAt. */
export interface OrderHistoryPoint extends OrderState {
  at: number;
}

/** What differs from `before` to `after`, in the order a person reads it. Pure. */
export function changesBetween(before: OrderState, after: OrderState): OrderChange[] {
  const changes: OrderChange[] = [];
  if (after.status !== before.status) changes.push({ field: 'status', status: after.status });
  if (after.cost !== before.cost) changes.push({ field: 'cost', cost: after.cost });
  if (after.paid !== before.paid) changes.push({ field: 'paid', paid: after.paid });
  if (after.subscriptionStatus !== before.subscriptionStatus) {
    changes.push({ field: 'subscriptionStatus', subscriptionStatus: after.subscriptionStatus });
  }
  return changes;
}

/** Company 1's updatedAt in ms (the record's time when it does not parse). */
export const updatedAtOf = (order: Order, fallback: number) => Date.parse(order.updatedAt) || fallback;

/**
 * Keeps one picture of the order. The same updatedAt again (a repeated webhook, the
 * answer to the bridge's own PATCH echoed as a webhook) is the same picture: the first
 * record, and who made it, stays.
 */
export async function recordOrderHistory(db: Kysely<Database>, order: Order, source: OrderHistorySource, now = Date.now()): Promise<void> {
  await db
    .insertInto('order_history')
    .values({
      order_id: order.id,
      partner_updated_at: updatedAtOf(order, now),
      recorded_at: now,
      source,
      status: order.status,
      cost: order.cost,
      paid: order.paid ? 1 : 0,
      subscription_status: order.subscriptionStatus,
    })
    .onConflict((oc) => oc.columns(['order_id', 'partner_updated_at']).doNothing())
    .execute();
}

/** The order's recorded pictures, oldest first. */
export async function readOrderHistory(db: Kysely<Database>, orderId: string): Promise<OrderHistoryPoint[]> {
  const rows = await db
    .selectFrom('order_history')
    .selectAll()
    .where('order_id', '=', orderId)
    .orderBy('partner_updated_at')
    .execute();
  return rows.map((r) => ({
    at: r.partner_updated_at,
    status: orderStatusSchema.parse(r.status),
    cost: r.cost === null ? null : Number(r.cost),
    paid: r.paid === 1,
    subscriptionStatus: r.subscription_status,
  }));
}
