import { expect } from 'vitest';
import type { Order, OrderStatus } from '../../src/partner/schema.js';
import type { Stack } from '../../src/sandbox/stack.js';
import { waitFor } from './stack.js';

/** A Company 1 order as its API answers it, for the pure decisions' tables. */
export function anOrder(status: OrderStatus, extra: Partial<Order> = {}): Order {
  return {
    id: 'DM-1',
    userId: 'u1',
    serviceId: 'trial-lesson',
    status,
    cost: null,
    paid: false,
    subscriptionStatus: null,
    customer: { firstName: 'A', lastName: 'B', phone: '+70000000000' },
    additionalInfo: null,
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    ...extra,
  };
}

/** An order placed by a real-looking customer (Cyrillic name, full phone), as a webview user places it. */
export function aCustomerOrder(extra: Partial<Order> = {}): Order {
  return anOrder('on_approval', {
    id: 'DM-000042',
    customer: { firstName: 'Ольга', lastName: 'Смирнова', phone: '+79035550101' },
    createdAt: '2025-03-01T10:00:00.000Z',
    updatedAt: '2025-03-01T10:00:00.000Z',
    ...extra,
  });
}

/** A user orders in Company 1's app; resolves once the bridge wrote the deal's id back. */
export async function linkedOrder(stack: Stack, userId: string): Promise<{ order: Order; dealId: number }> {
  const created = await stack.partner.createOrderAsUser({ userId, customer: { firstName: 'Ольга', lastName: 'Смирнова', phone: '+79035550101' } });
  const order = await waitFor('additionalInfo', () => (stack.partner.orders.get(created.id)?.additionalInfo ? stack.partner.orders.get(created.id) : undefined));
  return { order, dealId: order.additionalInfo!.externalId };
}

/** The texts of the notes on a deal in the amoCRM simulator. */
export const notesOf = (stack: Stack, dealId: number) =>
  [...stack.amo.state.notes.values()].filter((n) => n.entity_type === 'leads' && n.entity_id === dealId).map((n) => n.params.text);

/** Company 1 changes the order on its side and says so by an order.updated webhook. */
export async function changedByCompany1(stack: Stack, orderId: string, status: 'cancelled' | 'rejected'): Promise<Order> {
  const res = await fetch(`${stack.partnerUrl}/orders/${orderId}`, {
    method: 'PATCH',
    headers: { authorization: 'Bearer partner-sim-token', 'content-type': 'application/json', 'idempotency-key': `app-${status}-${orderId}` },
    body: JSON.stringify({ status }),
  });
  expect(res.status).toBe(200);
  const order = (await res.json()) as Order;
  expect((await stack.partner.sendWebhook('order.updated', order)).status).toBe(202);
  return order;
}
