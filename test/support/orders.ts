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

/** A user orders in Company 1's app; resolves once the bridge wrote the deal's id back. */
export async function linkedOrder(stack: Stack, userId: string): Promise<{ order: Order; dealId: number }> {
  const created = await stack.partner.createOrderAsUser({ userId, customer: { firstName: 'Ольга', lastName: 'Смирнова', phone: '+79035550101' } });
  const order = await waitFor('additionalInfo', () => (stack.partner.orders.get(created.id)?.additionalInfo ? stack.partner.orders.get(created.id) : undefined));
  return { order, dealId: order.additionalInfo!.externalId };
}
