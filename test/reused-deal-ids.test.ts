import { afterEach, describe, expect, it } from 'vitest';
import type { Order } from '../src/partner/schema.js';
import { replayDeadJob } from '../src/queue/dead-letter.js';
import type { Stack } from '../src/sandbox/stack.js';
import { dealClaimKey, takeClaim } from '../src/sync/claims.js';
import { relinkOrderDeal } from '../src/sync/relink.js';
import { DATABASES } from './support/databases.js';
import { changedByCompany1, linkedOrder, notesOf } from './support/orders.js';
import { settled, testStack, waitFor } from './support/stack.js';

/**
 * amoCRM ids come back on other records when an account is restored from a backup or the
 * simulator restarts without its data. A deal id the bridge recorded for one order may
 * then be another order's deal: before the bridge acts on a deal for an order, the deal
 * must carry that order's detmirOrderId, or nothing is written to either side and the job
 * waits in the dead letter with the reason.
 */

const MISMATCH = (dealId: number, a: string, b: string) =>
  new RegExp(`^deal ${dealId} is linked to order ${a} but carries detmirOrderId ${b} \\(order ${b} is linked to it too\\): amoCRM ids may have been reused .* replay this job`);

const deadJobs = (stack: Stack) =>
  stack.bridge.db.kysely.selectFrom('jobs').select(['id', 'kind', 'job_key', 'last_error']).where('status', '=', 'dead').execute();

/** The bridge's PATCHes of Company 1 orders (additionalInfo, status, …). */
const partnerPatches = (stack: Stack) => stack.partner.stats.requests.filter((r) => r.method === 'PATCH' && r.path.startsWith('/orders/'));

/**
 * Order A gets deal D; amoCRM restarts without its data; order B's deal then gets the
 * same id D. The bridge holds D for both, and D carries B's id.
 */
async function reusedDealId(stack: Stack): Promise<{ a: Order; b: Order; dealId: number }> {
  const a = await linkedOrder(stack, 'first-owner');
  await settled(stack);
  stack.amo.state.forgetRecords();
  const b = await linkedOrder(stack, 'second-owner');
  await settled(stack);
  expect(b.dealId).toBe(a.dealId);
  expect(a.order.id < b.order.id).toBe(true);
  return { a: a.order, b: b.order, dealId: a.dealId };
}

/** Neither order was written to, and one dead job, the deal's reconcile, says why. */
async function expectRefused(stack: Stack, { a, b, dealId }: { a: Order; b: Order; dealId: number }, patchesBefore: number) {
  expect(partnerPatches(stack).slice(patchesBefore)).toEqual([]);
  expect(stack.partner.orders.get(a.id)!.status).toBe('on_approval');
  expect(stack.partner.orders.get(b.id)!.status).toBe('on_approval');
  const dead = await deadJobs(stack);
  expect(dead).toHaveLength(1);
  expect(dead[0]).toMatchObject({ kind: 'deal.reconcile', job_key: `order:${a.id}` });
  expect(dead[0]!.last_error).toMatch(MISMATCH(dealId, a.id, b.id));
}

describe.each(DATABASES)('reused amoCRM deal ids on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('a stage move of a deal linked to order A that now carries order B: no PATCH to either order, one dead job saying why', async () => {
    stack = await testStack(kind, `reused-webhook-${kind}`);
    await stack.bridge.ready;
    const { a, b, dealId } = await reusedDealId(stack);
    const patchesBefore = partnerPatches(stack).length;

    await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' });
    await settled(stack);

    await expectRefused(stack, { a, b, dealId }, patchesBefore);
  });

  it('the sweep finds the deal moved with no webhook: no write, and one dead job however many sweeps see it', async () => {
    stack = await testStack(kind, `reused-sweep-${kind}`, { env: { SWEEP_INTERVAL: '1' } });
    await stack.bridge.ready;
    const { a, b, dealId } = await reusedDealId(stack);
    const patchesBefore = partnerPatches(stack).length;

    const sweeps = async () =>
      (await stack!.bridge.db.kysely.selectFrom('jobs').select('id').where('kind', '=', 'deals.sweep').where('status', '=', 'done').execute()).length;
    const sweptBefore = await sweeps();
    await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' }, { fire: false });
    // The sweep reads a minute back, so every one of these sees the deal as recently updated.
    await waitFor('four sweeps', async () => (await sweeps()) >= sweptBefore + 4, 10_000);
    await settled(stack);

    await expectRefused(stack, { a, b, dealId }, patchesBefore);
    const reconciles = await stack.bridge.db.kysely.selectFrom('jobs').select('status').where('kind', '=', 'deal.reconcile').execute();
    expect(reconciles).toEqual([{ status: 'dead' }]);
  });

  it('order A cancelled in Company 1 while its recorded deal carries order B: no note, no move, one dead job', async () => {
    stack = await testStack(kind, `reused-cancel-${kind}`);
    await stack.bridge.ready;
    const { a, b, dealId } = await reusedDealId(stack);
    const newLead = stack.amo.state.leads.get(dealId)!.status_id;
    const patchesBefore = partnerPatches(stack).length;

    await changedByCompany1(stack, a.id, 'cancelled');
    await settled(stack);

    expect(notesOf(stack, dealId)).toEqual([]);
    expect(stack.amo.state.leads.get(dealId)!.status_id).toBe(newLead);
    expect(stack.amo.stats.count({ method: 'PATCH', pathPrefix: '/api/v4/leads' })).toBe(0);
    expect(partnerPatches(stack).slice(patchesBefore).map((r) => r.idempotencyKey)).toEqual([`app-cancelled-${a.id}`]);
    expect(stack.partner.orders.get(b.id)!.status).toBe('on_approval');
    const dead = await deadJobs(stack);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ kind: 'order.sync', job_key: `order:${a.id}` });
    expect(dead[0]!.last_error).toMatch(new RegExp(`^deal ${dealId} is linked to order ${a.id} but carries detmirOrderId ${b.id}: `));
  });
  it('what the check costs: a new order no amoCRM read, an order event at most one batched read of its deal', async () => {
    // The bridge's own moves are not echoed, so every read below is the check's.
    stack = await testStack(kind, `reused-cost-${kind}`, { amo: { apiChangesFireWebhooks: false } });
    await stack.bridge.ready;
    const leadReads = () => stack!.amo.stats.requests.filter((r) => r.method === 'GET' && r.path === '/api/v4/leads');
    stack.amo.stats.reset(); // the mappings' resolution at start
    const linked = [];
    for (let i = 0; i < 5; i++) linked.push(await linkedOrder(stack, `cost-${i}`));
    await settled(stack);
    // Intake: a contact search and a leads/complex per new user; its deal is never read back.
    expect(leadReads()).toEqual([]);
    expect(stack.amo.stats.count({ pathPrefix: '/api/v4' })).toBe(2 * linked.length);

    stack.amo.stats.reset();
    await Promise.all(linked.map(({ order }) => changedByCompany1(stack!, order.id, 'cancelled')));
    await settled(stack);
    for (const { dealId } of linked) {
      expect(notesOf(stack, dealId)).toEqual(['Клиент отменил заказ']);
      expect(leadReads().filter((r) => r.url.includes(String(dealId))), `reads of deal ${dealId}`).toHaveLength(1);
    }
    // One GET per batch of order events, shared by the batch's deals.
    expect(leadReads().length).toBeLessThanOrEqual(linked.length);
    expect(await deadJobs(stack)).toEqual([]);
  });
  it('the reason can be acted on: order A linked to a deal of its own, the dead job replayed, and each order follows its own deal', async () => {
    stack = await testStack(kind, `reused-relink-${kind}`);
    const mappings = await stack.bridge.ready;
    const { a, b, dealId } = await reusedDealId(stack);
    await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' });
    await settled(stack);
    const [dead] = await deadJobs(stack);

    // The person gives order A a contact and a deal of its own in amoCRM, and links the order to it.
    const contact = stack.amo.createContactAsStaff({ firstName: 'Ольга', lastName: 'Смирнова', detmirUserId: a.userId });
    const own = await stack.amo.createLeadAsStaff({ name: `Trial lesson — order ${a.id}`, detmirOrderId: a.id, contactId: contact.id }, { fire: false });
    const deps = { db: stack.bridge.db, amo: stack.bridge.amo, mappings };
    expect(await relinkOrderDeal(deps, a.id, dealId)).toEqual({
      type: 'refused',
      reason: `deal ${dealId} carries detmirOrderId ${b.id}, not ${a.id}: set it in amoCRM first`,
    });
    expect(await relinkOrderDeal(deps, 'DM-404', own.id)).toEqual({ type: 'refused', reason: 'the bridge has no order DM-404' });
    expect(await relinkOrderDeal(deps, a.id, own.id)).toEqual({ type: 'relinked', orderId: a.id, dealId: own.id, previous: dealId });
    expect(await replayDeadJob(stack.bridge.db.kysely, dead!.id)).toBe(true);
    await settled(stack);

    expect(await deadJobs(stack)).toEqual([]);
    // Deal D is order B's, in "Recorded for trial"; order A now names its own deal.
    expect(stack.partner.orders.get(b.id)).toMatchObject({ status: 'approved', additionalInfo: { externalId: dealId } });
    expect(stack.partner.orders.get(a.id)).toMatchObject({ status: 'on_approval', additionalInfo: { contactId: contact.id, externalId: own.id } });
  });
  it('intake after a create of unknown outcome takes the deal carrying the order’s id, not an earlier one that only mentions it', async () => {
    // The lost create below happened a minute ago (its claim says so): amoCRM's search index
    // has long caught up with it.
    stack = await testStack(kind, `reused-search-${kind}`, { amo: { searchIndexDelayMs: 0 } });
    await stack.bridge.ready;
    const order = await stack.partner.createOrderAsUser({ userId: 'searched', customer: { firstName: 'Ольга', lastName: 'Смирнова', phone: '+79035550101' } }, { send: false });
    const contact = stack.amo.createContactAsStaff({ firstName: 'Ольга', lastName: 'Смирнова', detmirUserId: 'searched' });
    // amoCRM's search is full text: a deal naming the order in its title is found too.
    const mention = await stack.amo.createLeadAsStaff({ name: `Follow-up of ${order.id}`, detmirOrderId: 'DM-999999', contactId: contact.id }, { fire: false });
    // The bridge sent the create and crashed before the answer was recorded.
    const lost = await stack.amo.createLeadAsStaff({ name: `Trial lesson — order ${order.id}`, detmirOrderId: order.id, contactId: contact.id }, { fire: false });
    expect(await takeClaim(stack.bridge.db.kysely, dealClaimKey(order.id), { state: 'free' }, 0, Date.now() - 60_000)).toBe(true);

    expect((await stack.partner.sendWebhook('order.created', order)).status).toBe(202);
    const info = await waitFor('additionalInfo', () => stack!.partner.orders.get(order.id)?.additionalInfo ?? undefined);
    expect(info).toEqual({ contactId: contact.id, externalId: lost.id, closedByDetmir: false });
    expect(mention.id).toBeLessThan(lost.id);
    expect(stack.amo.stats.count({ method: 'GET', pathPrefix: '/api/v4/leads' })).toBeGreaterThan(0);
    expect(stack.amo.state.leads.size).toBe(2);
  });
});
