import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import type { Order } from '../src/partner/schema.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { changedByCompany1, linkedOrder, notesOf } from './support/orders.js';
import { settled, testStack, waitFor } from './support/stack.js';
import { hiddenField, partnerOrdersOf, signWebviewToken } from './support/webview.js';

/**
 * The other direction: what the user or Company 1 does to an order reaches the deal as a
 * note (and, where the mappings' orderEvents say so, a move), once; the webhook amoCRM
 * fires for the bridge's own move changes nothing.
 */

const CANCELLED_NOTE = 'Клиент отменил заказ';
const REJECTED_NOTE = 'Компания 1 отклонила заказ';

const partnerPatches = (stack: Stack, orderId: string) =>
  stack.partner.stats.requests.filter((r) => r.method === 'PATCH' && r.path === `/orders/${orderId}`);

const jobs = (stack: Stack) => stack.bridge.db.kysely.selectFrom('jobs').select(['kind', 'job_key', 'status', 'last_error']).where('kind', '<>', 'deals.sweep').execute();

/** The webhooks the simulator delivered to the bridge about a deal, as event lists. */
const deliveriesFor = (stack: Stack, dealId: number) =>
  stack.amo.state.deliveries.filter((d) => d.leadIds.includes(dealId) && d.destination.startsWith(stack.bridgeUrl)).map((d) => d.events);

describe.each(DATABASES)('order events reach the deal on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('a cancel in the webview: the comment and "Клиент отменил заказ" become notes, the deal moves to Refusal, and its echo changes nothing', async () => {
    stack = await testStack(kind, `events-webview-${kind}`);
    await stack.bridge.ready;
    const agent = request.agent(stack.bridgeUrl);
    expect((await agent.get('/webview').query({ token: await signWebviewToken({ sub: 'canceller' }) })).status).toBe(303);
    const form = await agent.get('/webview/orders/new');
    const created = await agent
      .post('/webview/orders')
      .type('form')
      .send({
        _csrf: hiddenField(form.text, '_csrf'),
        nonce: hiddenField(form.text, 'nonce'),
        serviceId: 'trial-lesson',
        firstName: 'Ольга',
        lastName: 'Смирнова',
        phone: '+7 903 555-01-01',
        comment: 'Удобно после 18:00',
      });
    expect(created.status).toBe(303);
    const [order] = partnerOrdersOf(stack, 'canceller');
    const dealId = (await waitFor('additionalInfo', () => stack!.partner.orders.get(order!.id)?.additionalInfo ?? undefined)).externalId;
    await settled(stack);
    expect(notesOf(stack, dealId)).toEqual(['Комментарий клиента: Удобно после 18:00']);

    const page = await agent.get(`/webview/orders/${order!.id}`);
    const cancel = await agent.post(`/webview/orders/${order!.id}/cancel`).type('form').send({ _csrf: hiddenField(page.text, '_csrf') });
    expect(cancel.status).toBe(303);
    await waitFor('the deal to move', () => stack!.amo.state.leads.get(dealId)!.status_id === 143);
    await settled(stack);

    expect(notesOf(stack, dealId)).toEqual(['Комментарий клиента: Удобно после 18:00', CANCELLED_NOTE]);
    expect(stack.amo.state.leads.get(dealId)!.pipeline_id).toBe(stack.amo.pipelineIdByName('Company 2'));
    // amoCRM fired the move's webhook to the bridge, which found the order in step with it.
    expect(deliveriesFor(stack, dealId)).toEqual([['leads[update]', 'leads[status]']]);
    expect(stack.partner.orders.get(order!.id)!.status).toBe('cancelled');
    // additionalInfo once, the cancel once: nothing in answer to the echo.
    expect(partnerPatches(stack, order!.id).map((r) => (r.body as { status?: string }).status ?? 'additionalInfo')).toEqual(['additionalInfo', 'cancelled']);
    const all = await jobs(stack);
    expect(all.filter((j) => j.status !== 'done')).toEqual([]);
    expect(all.filter((j) => j.kind === 'deal.reconcile')).toHaveLength(1);
  });

  it('an order.updated webhook saying the user cancelled in Company 1’s app: the note and the move, once, however often it is told', async () => {
    stack = await testStack(kind, `events-app-cancel-${kind}`);
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'app-canceller');
    await settled(stack);
    const cancelled = await changedByCompany1(stack, order.id, 'cancelled');
    // Company 1 repeats itself (a new delivery of the same news, another webhook id).
    expect((await stack.partner.sendWebhook('order.updated', cancelled)).status).toBe(202);
    await waitFor('the deal to move', () => stack!.amo.state.leads.get(dealId)!.status_id === 143);
    await settled(stack);

    expect(notesOf(stack, dealId)).toEqual([CANCELLED_NOTE]);
    expect(deliveriesFor(stack, dealId)).toEqual([['leads[update]', 'leads[status]']]);
    expect(stack.amo.stats.count({ method: 'PATCH', pathPrefix: '/api/v4/leads' })).toBe(1);
    // The only PATCHes are additionalInfo and Company 1's own cancel; none from the echo.
    expect(partnerPatches(stack, order.id).map((r) => r.idempotencyKey)).toEqual([expect.stringMatching(/^additionalInfo:/), `app-cancelled-${order.id}`]);
    expect((await jobs(stack)).filter((j) => j.status !== 'done')).toEqual([]);
  });

  it('amoCRM down when the news arrives: the job retries, and the deal gets the note and the move once', async () => {
    stack = await testStack(kind, `events-outage-${kind}`);
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'outage-user');
    await settled(stack);
    stack.amo.faults.outage = true;
    await changedByCompany1(stack, order.id, 'cancelled');
    await waitFor('a failed attempt', async () => {
      const failed = await stack!.bridge.db.kysely.selectFrom('jobs').select('id').where('kind', '=', 'order.sync').where('last_error', 'is not', null).execute();
      return failed.length > 0;
    });
    expect(notesOf(stack, dealId)).toEqual([]);
    stack.amo.faults.outage = false;
    await waitFor('the deal to move', () => stack!.amo.state.leads.get(dealId)!.status_id === 143);
    await settled(stack);
    expect(notesOf(stack, dealId)).toEqual([CANCELLED_NOTE]);
    expect((await jobs(stack)).filter((j) => j.status !== 'done')).toEqual([]);
  });

  it('Company 1 rejects the order: "Компания 1 отклонила заказ" and a move to Refusal, no PATCH, no dead letter', async () => {
    stack = await testStack(kind, `events-rejected-${kind}`);
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'rejected-user');
    await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' });
    await waitFor('approved', () => stack!.partner.orders.get(order.id)!.status === 'approved');
    await settled(stack);
    const before = partnerPatches(stack, order.id).length;

    await changedByCompany1(stack, order.id, 'rejected');
    await waitFor('the deal to move', () => stack!.amo.state.leads.get(dealId)!.status_id === 143);
    await settled(stack);
    expect(notesOf(stack, dealId)).toEqual([REJECTED_NOTE]);
    expect(partnerPatches(stack, order.id).length).toBe(before + 1); // Company 1's own
    expect((await jobs(stack)).filter((j) => j.status !== 'done')).toEqual([]);
  });

  it('an order the bridge rejected itself (the deal was lost) is no news from Company 1: no note, even when Company 1 echoes it', async () => {
    stack = await testStack(kind, `events-own-reject-${kind}`);
    await stack.bridge.ready;
    const { order, dealId } = await linkedOrder(stack, 'lost-user');
    await stack.amo.moveLead(dealId, { statusName: 'Closed - lost' });
    await waitFor('rejected', () => stack!.partner.orders.get(order.id)!.status === 'rejected');
    await settled(stack);
    expect((await stack.partner.sendWebhook('order.updated', stack.partner.orders.get(order.id)!)).status).toBe(202);
    await settled(stack);
    expect(notesOf(stack, dealId)).toEqual([]);
    expect(stack.amo.stats.count({ method: 'PATCH', pathPrefix: '/api/v4/leads' })).toBe(0);
    expect((await jobs(stack)).filter((j) => j.status !== 'done')).toEqual([]);
  });

  it('a comment typed on a new order becomes a note once, whatever else happens to the order', async () => {
    stack = await testStack(kind, `events-comment-${kind}`);
    await stack.bridge.ready;
    const agent = request.agent(stack.bridgeUrl);
    expect((await agent.get('/webview').query({ token: await signWebviewToken({ sub: 'commenter' }) })).status).toBe(303);
    const form = await agent.get('/webview/orders/new');
    const fields = {
      _csrf: hiddenField(form.text, '_csrf'),
      nonce: hiddenField(form.text, 'nonce'),
      serviceId: 'subscription-month',
      firstName: 'Пётр',
      lastName: 'Орлов',
      phone: '+7 903 555-02-02',
      comment: 'Ребёнку 7 лет',
    };
    // A double submit makes one order and one comment.
    const [a, b] = await Promise.all([agent.post('/webview/orders').type('form').send(fields), agent.post('/webview/orders').type('form').send(fields)]);
    expect([a.status, b.status]).toEqual([303, 303]);
    const [order] = partnerOrdersOf(stack, 'commenter');
    const dealId = (await waitFor('additionalInfo', () => stack!.partner.orders.get(order!.id)?.additionalInfo ?? undefined)).externalId;
    await settled(stack);
    // Company 1 echoes the create, and the deal moves on: the comment is not noted again.
    await stack.partner.sendWebhook('order.created', stack.partner.orders.get(order!.id)!);
    await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' });
    await waitFor('approved', () => stack!.partner.orders.get(order!.id)!.status === 'approved');
    await stack.partner.sendWebhook('order.updated', stack.partner.orders.get(order!.id)!);
    await settled(stack);
    expect(notesOf(stack, dealId)).toEqual(['Комментарий клиента: Ребёнку 7 лет']);
    expect(partnerOrdersOf(stack, 'commenter')).toHaveLength(1);
  });
});
