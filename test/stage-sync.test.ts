import { afterEach, describe, expect, it } from 'vitest';
import type { Order } from '../src/partner/schema.js';
import { RECONCILE_GATHER_MS } from '../src/inbox/accept-amo-event.js';
import { buildWebhookBody, webhookLeadOf } from '../src/sandbox/amo/index.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { linkedOrder } from './support/orders.js';
import { drained, testStack, waitFor } from './support/stack.js';

const SUBSCRIPTION_FIELD = 'Subscription status';

/** Every job finished: the bridge has done all it will do for what it was told. */
async function settled(stack: Stack) {
  await stack.amo.webhooksIdle();
  await drained(stack);
}

const patches = (stack: Stack, orderId: string) =>
  stack.partner.stats.requests.filter((r) => r.method === 'PATCH' && r.path === `/orders/${orderId}` && r.status === 200);

describe.each(DATABASES)('stage sync on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  describe.each(['compact', 'full'] as const)('with %s webhook bodies', (shape) => {
    it('drives the order through every row of the stage table', async () => {
      stack = await testStack(kind, `stage-rows-${kind}-${shape}`, { amo: { webhookShape: shape } });
      await stack.bridge.ready;
      const subscriptionField = stack.amo.fieldIdByName('leads', SUBSCRIPTION_FIELD);
      const { order, dealId } = await linkedOrder(stack, `rows-${shape}`);
      const current = () => stack!.partner.orders.get(order.id)!;
      const info = order.additionalInfo;

      const steps: Array<[string, Partial<Order>, Parameters<Stack['amo']['moveLead']>[2]?]> = [
        ['Recorded for trial', { status: 'approved' }],
        ['Confirmed VU', { status: 'in_work' }],
        ['Lesson Passed', {}],
        ['Waiting for a solution', {}],
        ['Waiting for payment', { cost: 12_500 }, { price: 12_500 }],
        ['Payment received', { paid: true }],
        ['Submit Subscription Status', { subscriptionStatus: 'active' }, { customFields: [{ field_id: subscriptionField, values: [{ value: 'active' }] }] }],
        ['Another lesson has passed', { subscriptionStatus: 'renewed' }, { customFields: [{ field_id: subscriptionField, values: [{ value: 'renewed' }] }] }],
        // Success closes the order: from stage 2 on Company 1 no longer does it itself.
        ['Closed - won', { status: 'executed' }],
      ];
      for (const [stage, expected, opts] of steps) {
        const before = { ...current() };
        const calls = patches(stack, order.id).length;
        await stack.amo.moveLead(dealId, { statusName: stage }, opts);
        await settled(stack);
        expect(current(), stage).toMatchObject({ ...before, ...expected, updatedAt: current().updatedAt });
        // Rows with no action send nothing; rows with one send exactly one PATCH.
        expect(patches(stack, order.id).length - calls, stage).toBe(Object.keys(expected).length > 0 ? 1 : 0);
        expect(current().additionalInfo, stage).toEqual(info);
      }

      const refused = await linkedOrder(stack, `refusal-${shape}`);
      await stack.amo.moveLead(refused.dealId, { statusName: 'Closed - lost' });
      await settled(stack);
      expect(stack.partner.orders.get(refused.order.id)!.status).toBe('rejected');
    });
  });

  it('a deal jumping from New lead to Payment received is approved, then in_work, with cost and paid', async () => {
    stack = await testStack(kind, `stage-jump-${kind}`);
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'jumper');
    await stack.amo.moveLead(dealId, { statusName: 'Payment received' }, { price: 9900 });
    await settled(stack);
    const sent = patches(stack, order.id).slice(-2).map((r) => r.body);
    expect(sent).toEqual([
      { status: 'approved', additionalInfo: order.additionalInfo },
      { status: 'in_work', cost: 9900, paid: true, additionalInfo: order.additionalInfo },
    ]);
    expect(stack.partner.orders.get(order.id)).toMatchObject({ status: 'in_work', cost: 9900, paid: true });
  });

  it('a deal won straight from New lead walks the order approved → in_work → executed, with cost and paid', async () => {
    stack = await testStack(kind, `stage-won-jump-${kind}`);
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'won-jumper');
    await stack.amo.moveLead(dealId, { statusName: 'Closed - won' }, { price: 15_000 });
    await settled(stack);
    const sent = patches(stack, order.id).slice(-3).map((r) => r.body);
    expect(sent).toEqual([
      { status: 'approved', additionalInfo: order.additionalInfo },
      { status: 'in_work', additionalInfo: order.additionalInfo },
      { status: 'executed', cost: 15_000, paid: true, additionalInfo: order.additionalInfo },
    ]);
    expect(stack.partner.orders.get(order.id)).toMatchObject({ status: 'executed', cost: 15_000, paid: true, additionalInfo: order.additionalInfo });
    expect(await stack.bridge.db.kysely.selectFrom('jobs').select('id').where('status', '=', 'dead').execute()).toEqual([]);
  });

  it('the same webhook twice, and webhooks in reverse order, end in the same state with no extra calls', async () => {
    stack = await testStack(kind, `stage-replay-${kind}`);
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'replayer');
    await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' }, { fire: false });
    const early = stack.amo.state.deliveries.length;
    await stack.amo.moveLead(dealId, { statusName: 'Confirmed VU' });
    await settled(stack);
    const afterFirst = patches(stack, order.id).length;
    expect(stack.partner.orders.get(order.id)!.status).toBe('in_work');

    // amoCRM retries a delivery, and the earlier move's webhook arrives late, after the
    // later one: nothing changes and nothing more is sent.
    const delivered = stack.amo.state.deliveries.slice(early);
    expect(delivered.length).toBeGreaterThan(0);
    const lead = stack.amo.state.leads.get(dealId)!;
    const recorded = stack.amo.statusIdByName('Recorded for trial');
    const stale = buildWebhookBody({
      account: { id: 31234567, subdomain: 'company2' },
      leads: { status: [webhookLeadOf({ ...lead, status_id: recorded }, { ...lead, status_id: stack.amo.statusIdByName('New lead') })] },
    });
    const destination = delivered[0]!.destination;
    for (const body of [...delivered.map((d) => d.body), ...delivered.map((d) => d.body), stale]) {
      const res = await fetch(destination, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
      expect(res.status).toBe(200);
    }
    await settled(stack);
    expect(patches(stack, order.id).length).toBe(afterFirst);
    expect(stack.partner.orders.get(order.id)!.status).toBe('in_work');
  });

  it('a 409 re-reads the order; a state no transition reaches goes to the dead letter with its reason', async () => {
    stack = await testStack(kind, `stage-conflict-${kind}`);
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'conflicted');
    // The user cancels in Company 1's app; the bridge has not heard of it yet.
    const cancelled = await fetch(`${stack.partnerUrl}/orders/${order.id}`, {
      method: 'PATCH',
      headers: { authorization: 'Bearer partner-sim-token', 'content-type': 'application/json', 'idempotency-key': 'user-cancel' },
      body: JSON.stringify({ status: 'cancelled' }),
    });
    expect(cancelled.status).toBe(200);
    await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' });
    const dead = await waitFor('the dead letter', async () => {
      const rows = await stack!.bridge.db.kysely.selectFrom('jobs').selectAll().where('status', '=', 'dead').execute();
      return rows.length > 0 ? rows : undefined;
    });
    expect(dead[0]!.last_error).toMatch(/order \S+ is "cancelled" and deal \d+ stands at "Recorded for trial", which asks for "approved"/);
    expect(stack.partner.stats.requests.some((r) => r.method === 'PATCH' && r.status === 409)).toBe(true);
    expect(stack.partner.stats.requests.some((r) => r.method === 'GET' && r.path === `/orders/${order.id}`)).toBe(true);
    expect(stack.partner.orders.get(order.id)!.status).toBe('cancelled');
  });

  it('ignores deals of other pipelines and deals no order of the bridge has', async () => {
    stack = await testStack(kind, `stage-ignore-${kind}`);
    await stack.bridge.ready;
    const foreign = await stack.amo.createLeadAsStaff({ name: 'Other business', pipelineName: 'Sales' }, { fire: false });
    const stray = await stack.amo.createLeadAsStaff({ name: 'Walk-in', statusName: 'New lead' }, { fire: false });
    await stack.amo.moveLead(foreign.id, { statusId: 142 });
    await stack.amo.moveLead(stray.id, { statusName: 'Confirmed VU' });
    await settled(stack);
    const jobs = await stack.bridge.db.kysely.selectFrom('jobs').selectAll().where('kind', '=', 'deal.reconcile').execute();
    expect(jobs.length).toBeGreaterThan(0);
    expect(jobs.every((j) => j.status === 'done')).toBe(true);
    expect(stack.partner.stats.count({ method: 'PATCH' })).toBe(0);
  });

  it('a stage change whose webhook never came is healed by the sweep within one interval', async () => {
    stack = await testStack(kind, `stage-sweep-${kind}`, { env: { SWEEP_INTERVAL: '1' } });
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'swept');
    await stack.amo.moveLead(dealId, { statusName: 'Confirmed VU' }, { fire: false });
    const movedAt = Date.now();
    await waitFor('the sweep to approve and start the order', () => stack!.partner.orders.get(order.id)!.status === 'in_work', 5_000);
    expect(Date.now() - movedAt).toBeLessThan(2_500);
  });

  it('the sweep heals a change made in the same second as its cursor, after that second was read', async () => {
    // amoCRM's updated_at is whole seconds: hold the simulator's clock within one second
    // while one deal changes, a sweep reads it, and a second deal changes.
    let held: number | undefined;
    stack = await testStack(kind, `stage-sweep-second-${kind}`, { amo: { now: () => held ?? Date.now() }, env: { SWEEP_INTERVAL: '1' } });
    await stack.bridge.ready;
    const first = await linkedOrder(stack, 'second-a');
    const second = await linkedOrder(stack, 'second-b');
    const cursor = async () => {
      const row = await stack!.bridge.db.kysely.selectFrom('kv').select('value').where('key', '=', 'sweep.cursor').executeTakeFirst();
      return row ? Number(row.value) : undefined;
    };

    held = Date.now();
    const heldSecond = Math.floor(held / 1000);
    await stack.amo.moveLead(first.dealId, { statusName: 'Recorded for trial' }, { fire: false });
    await waitFor('a sweep to heal the first deal', () => stack!.partner.orders.get(first.order.id)!.status === 'approved', 10_000);
    await waitFor('the sweep to save that second as its cursor', async () => (await cursor()) === heldSecond, 10_000);
    await stack.amo.moveLead(second.dealId, { statusName: 'Recorded for trial' }, { fire: false });
    expect(stack.amo.state.leads.get(second.dealId)!.updated_at).toBe(heldSecond);
    expect(stack.amo.state.leads.get(first.dealId)!.updated_at).toBe(heldSecond);
    held = undefined;

    await waitFor('a later sweep to heal the second deal', () => stack!.partner.orders.get(second.order.id)!.status === 'approved', 10_000);
  });

  it('a price that goes 100 → 200 → 100 within one second ends as cost 100', async () => {
    // Three changes in one second share the deal's updated_at; each is read and pushed.
    let held: number | undefined;
    stack = await testStack(kind, `stage-same-second-${kind}`, { amo: { now: () => held ?? Date.now() } });
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'same-second');
    await stack.amo.moveLead(dealId, { statusName: 'Confirmed VU' });
    await waitFor('the order in work', () => stack!.partner.orders.get(order.id)!.status === 'in_work');

    held = Date.now();
    for (const [step, price] of [100, 200, 100].entries()) {
      await stack.amo.moveLead(dealId, { statusName: 'Waiting for payment' }, { price });
      await waitFor(`cost ${price} (change ${step + 1} of 3)`, () => stack!.partner.orders.get(order.id)!.cost === price, 5_000);
    }
    expect(stack.amo.state.leads.get(dealId)!.updated_at).toBe(Math.floor(held / 1000));
    held = undefined;
  });

  it('a burst of stage changes for 100 deals costs at most one amoCRM read per 50 deals', async () => {
    // The production gather window: the point is how many reads a burst costs.
    stack = await testStack(kind, `stage-burst-${kind}`, { amo: { rateLimitRps: 50 }, rateLimitRps: 50, tuning: { reconcileGatherMs: RECONCILE_GATHER_MS } });
    await stack.bridge.ready;
    const orders: Order[] = [];
    for (let i = 0; i < 100; i++) {
      orders.push(await stack.partner.createOrderAsUser({ userId: `burst-${i}`, customer: { firstName: 'B', lastName: String(i), phone: '+79000000000' } }));
    }
    await waitFor('all linked', () => orders.every((o) => stack!.partner.orders.get(o.id)?.additionalInfo), 30_000);
    await settled(stack);
    stack.amo.stats.reset();
    const deliveredBefore = stack.amo.state.deliveries.length;
    await Promise.all(
      orders.map((o) => stack!.amo.moveLead(stack!.partner.orders.get(o.id)!.additionalInfo!.externalId, { statusName: 'Recorded for trial' })),
    );
    await waitFor('all approved', () => orders.every((o) => stack!.partner.orders.get(o.id)!.status === 'approved'), 30_000);
    const reads = stack.amo.stats.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/api/v4/leads'));
    // The 100 webhooks go out at once, but on a loaded machine the bridge may take them in
    // over more than one gather window; each further window may cost one more read.
    const burst = stack.amo.state.deliveries.slice(deliveredBefore);
    expect(burst).toHaveLength(100);
    const span = Math.max(...burst.map((d) => d.at + d.durationMs)) - Math.min(...burst.map((d) => d.at));
    const windows = Math.max(1, Math.ceil(span / RECONCILE_GATHER_MS));
    expect(reads.length).toBeLessThanOrEqual(2 + (windows - 1));
  });
});
