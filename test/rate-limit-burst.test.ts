import { afterEach, describe, expect, it } from 'vitest';
import type { Order } from '../src/partner/schema.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { testStack, waitFor } from './support/stack.js';

/**
 * The limiter must make 429 rare, not merely survivable: a 200-order burst against
 * the simulator's 7-requests-per-second limit gets no 429 at all. (PostgreSQL runs the
 * shared, database-clocked limiter; SQLite the in-process one.)
 */
describe.each(DATABASES)('200-order burst on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => stack?.stop());

  it('finishes with zero 429 answers at 7 requests per second', async () => {
    stack = await testStack(kind, `burst-${kind}`, { amo: { rateLimitRps: 7 }, rateLimitRps: 7 });
    await stack.bridge.ready;
    stack.amo.stats.reset();
    const orders: Order[] = [];
    for (let i = 0; i < 200; i++) {
      orders.push(
        await stack.partner.createOrderAsUser({
          userId: `burst-${i % 150}`,
          customer: { firstName: 'Burst', lastName: String(i), phone: `+7901${String(i).padStart(7, '0')}` },
        }),
      );
    }
    await waitFor('all 200 orders linked', () => orders.every((o) => stack!.partner.orders.get(o.id)?.additionalInfo), 100_000);
    expect(stack.amo.stats.count({ status: 429 })).toBe(0);
    expect(stack.amo.state.leads.size).toBe(200);
    expect(stack.amo.state.contacts.size).toBe(150);
    // Batching: a search per new user, plus shared leads/complex calls.
    const calls = stack.amo.stats.count({ pathPrefix: '/api/v4' });
    expect(calls).toBeLessThan(200 * 1.2);
  }, 150_000);
});
