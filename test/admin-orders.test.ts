import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/admin/api-keys.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { changedByCompany1, linkedOrder, notesOf } from './support/orders.js';
import { settled, testStack, waitFor } from './support/stack.js';
import { hiddenField, openForm, orderForm, partnerOrdersOf, signIn } from './support/webview.js';

const CANCELLED_NOTE = 'Клиент отменил заказ';

/** Requests to the admin API with a key (or none). */
function adminApi(stack: Stack, key?: string) {
  const auth = <T extends request.Test>(r: T) => (key ? r.set('authorization', `Bearer ${key}`) : r);
  return {
    get: (path: string) => auth(request(stack.bridge.app).get(path)),
    post: (path: string) => auth(request(stack.bridge.app).post(path)),
  };
}

/** What the bridge wrote to either side: amoCRM POSTs and PATCHes, Company 1 PATCHes. */
function writes(stack: Stack) {
  return {
    amo: stack.amo.stats.count({ method: 'POST', pathPrefix: '/api/v4/' }) + stack.amo.stats.count({ method: 'PATCH', pathPrefix: '/api/v4/' }),
    partner: stack.partner.stats.requests.filter((r) => r.method === 'PATCH' && r.idempotencyKey?.startsWith('app-') !== true).length,
  };
}

const customer = (firstName: string, lastName: string, phone: string) => ({ firstName, lastName, phone });

describe.each(DATABASES)('admin orders API on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('searches by order id, user id, name and phone digits, filters by status, pages with a cursor, and checks its scope', async () => {
    stack = await testStack(kind, `admin-search-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'reader', ['orders:read']);
    const jobsOnly = await createApiKey(db, 'jobs', ['jobs:read', 'orders:write']);
    const api = adminApi(stack, reader.key);

    const olga = await stack.partner.createOrderAsUser({ userId: 'search-olga', customer: customer('Ольга', 'Смирнова', '+7 903 555-01-01') });
    const olga2 = await stack.partner.createOrderAsUser({ userId: 'search-olga', customer: customer('Ольга', 'Смирнова', '+7 903 555-01-01') });
    const pyotr = await stack.partner.createOrderAsUser({ userId: 'search-pyotr', customer: customer('Пётр', 'Орлов', '+7 916 123-45-67') });
    await settled(stack);
    await changedByCompany1(stack, olga2.id, 'cancelled');
    await settled(stack);

    // Scopes: no key 401, a key without orders:read 403, both as problem+json.
    const anonymous = await adminApi(stack).get('/admin/orders');
    expect(anonymous.status).toBe(401);
    expect(anonymous.type).toBe('application/problem+json');
    const forbidden = await adminApi(stack, jobsOnly.key).get('/admin/orders?q=search-olga');
    expect(forbidden.status).toBe(403);
    expect(forbidden.type).toBe('application/problem+json');
    expect(forbidden.body.detail).toMatch(/orders:read/);
    // Every route: no key 401, a key without the route's own scope 403, and nothing changes.
    const routes: Array<['get' | 'post', string, 'orders:read' | 'orders:write']> = [
      ['get', '/admin/orders', 'orders:read'],
      ['get', `/admin/orders/${olga.id}`, 'orders:read'],
      ['post', `/admin/orders/${olga.id}/pause`, 'orders:write'],
      ['post', `/admin/orders/${olga.id}/resume`, 'orders:write'],
      ['post', '/admin/users/search-olga/pause', 'orders:write'],
      ['post', '/admin/users/search-olga/resume', 'orders:write'],
    ];
    for (const [method, path, scope] of routes) {
      const none = await adminApi(stack)[method](path);
      expect(none.status, `${method} ${path}`).toBe(401);
      expect(none.type).toBe('application/problem+json');
      const other = await adminApi(stack, (scope === 'orders:read' ? jobsOnly : reader).key)[method](path);
      expect(other.status, `${method} ${path}`).toBe(403);
      expect(other.type).toBe('application/problem+json');
      expect(other.body.detail).toContain(scope);
    }
    expect(await db.selectFrom('paused_users').selectAll().execute()).toEqual([]);
    expect(await db.selectFrom('orders').select('order_id').where('paused_at', 'is not', null).execute()).toEqual([]);

    const ids = async (query: string) => {
      const res = await api.get(`/admin/orders?${query}`);
      expect(res.status, query).toBe(200);
      return (res.body.items as Array<{ orderId: string }>).map((i) => i.orderId).sort();
    };
    const byId = await api.get(`/admin/orders?q=${olga.id}`);
    expect(byId.body).toEqual({
      items: [
        {
          orderId: olga.id,
          userId: 'search-olga',
          status: 'on_approval',
          contactId: expect.any(Number),
          dealId: expect.any(Number),
          origin: 'webhook',
          paused: false,
          updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        },
      ],
      nextCursor: null,
    });
    expect(await ids('q=search-olga')).toEqual([olga.id, olga2.id].sort());
    expect(await ids('userId=search-pyotr')).toEqual([pyotr.id]);
    // Names: any case, part of a word, ё as е.
    expect(await ids(`q=${encodeURIComponent('СМИРНОВА')}`)).toEqual([olga.id, olga2.id].sort());
    expect(await ids(`q=${encodeURIComponent('пет')}`)).toEqual([pyotr.id]);
    expect(await ids(`q=${encodeURIComponent('ольга смир')}`)).toEqual([olga.id, olga2.id].sort());
    // Phones: the digits, however the query spells them.
    expect(await ids(`q=${encodeURIComponent('123-45-67')}`)).toEqual([pyotr.id]);
    expect(await ids('q=79035550101')).toEqual([olga.id, olga2.id].sort());
    expect(await ids(`q=${encodeURIComponent('%')}`)).toEqual([]);
    expect(await ids('q=nobody')).toEqual([]);
    expect(await ids('status=cancelled')).toEqual([olga2.id]);
    expect(await ids('status=on_approval&userId=search-olga')).toEqual([olga.id]);

    // Paging: newest change first, every order once.
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await api.get(`/admin/orders?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.items).toHaveLength(1);
      seen.push(res.body.items[0].orderId);
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen.sort()).toEqual([olga.id, olga2.id, pyotr.id].sort());
    const all = await api.get('/admin/orders');
    expect(all.body.items[0].orderId).toBe(olga2.id); // changed last

    for (const bad of ['limit=0', 'limit=201', 'limit=many', 'status=lost', 'cursor=not-a-cursor', `cursor=${Buffer.from('[1]').toString('base64url')}`]) {
      const res = await api.get(`/admin/orders?${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.type, bad).toBe('application/problem+json');
      expect(res.body.detail, bad).toBeTruthy();
    }
    expect((await api.get('/admin/orders?limit=0')).body.detail).toMatch(/limit/);
  });

  it('a paused order gets no writes while its deal moves and Company 1 cancels it; resume brings both sides to the current state', async () => {
    stack = await testStack(kind, `admin-pause-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'reader', ['orders:read']);
    const writer = await createApiKey(db, 'writer', ['orders:write']);
    const { order, dealId } = await linkedOrder(stack, 'pause-user');
    await settled(stack);

    // Scopes and bad input first: nothing is paused by them.
    expect((await adminApi(stack).post(`/admin/orders/${order.id}/pause`)).status).toBe(401);
    const forbidden = await adminApi(stack, reader.key).post(`/admin/orders/${order.id}/pause`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.detail).toMatch(/orders:write/);
    expect((await adminApi(stack, reader.key).post(`/admin/orders/${order.id}/resume`)).status).toBe(403);
    expect((await adminApi(stack, writer.key).post('/admin/orders/no-such-order/pause')).status).toBe(404);
    const badId = await adminApi(stack, writer.key).post('/admin/orders/a.b/pause');
    expect(badId.status).toBe(400);
    expect(badId.type).toBe('application/problem+json');

    const paused = await adminApi(stack, writer.key).post(`/admin/orders/${order.id}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ orderId: order.id, paused: true, orderPaused: true, userPaused: false });
    expect((await adminApi(stack, reader.key).get(`/admin/orders?q=${order.id}`)).body.items[0].paused).toBe(true);
    const before = writes(stack);

    // While paused: a manager moves the deal, and the user cancels in Company 1's app.
    await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' });
    await settled(stack);
    await changedByCompany1(stack, order.id, 'cancelled');
    await settled(stack);
    expect(writes(stack)).toEqual(before);
    expect(notesOf(stack, dealId)).toEqual([]);
    expect(stack.partner.orders.get(order.id)!.status).toBe('cancelled');
    const skipped = await db.selectFrom('order_log').selectAll().where('order_id', '=', order.id).where('event', '=', 'job.skipped').execute();
    expect(skipped.map((s) => JSON.parse(s.detail).kind).sort()).toEqual(['deal.reconcile', 'order.sync']);
    // The events are recorded all the same.
    expect((await db.selectFrom('orders').select('partner_status').where('order_id', '=', order.id).executeTakeFirstOrThrow()).partner_status).toBe('cancelled');

    const resumed = await adminApi(stack, writer.key).post(`/admin/orders/${order.id}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ orderId: order.id, paused: false, queued: ['order.sync', 'deal.reconcile'] });
    await waitFor('the deal to move to Refusal', () => stack!.amo.state.leads.get(dealId)!.status_id === 143);
    await settled(stack);
    expect(notesOf(stack, dealId)).toEqual([CANCELLED_NOTE]);
    expect(stack.partner.orders.get(order.id)!.status).toBe('cancelled');
    expect((await db.selectFrom('jobs').select('status').where('status', '<>', 'done').where('kind', '<>', 'deals.sweep').execute())).toEqual([]);
    // Resuming again changes nothing and queues nothing.
    expect((await adminApi(stack, writer.key).post(`/admin/orders/${order.id}/resume`)).body.queued).toEqual([]);
  });

  it('a paused user: a deal move and a cancel on existing orders and a new order are all held; resume catches every order up', async () => {
    stack = await testStack(kind, `admin-pause-user-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'reader', ['orders:read']);
    const writer = await createApiKey(db, 'writer', ['orders:write']);
    const moved = await linkedOrder(stack, 'paused-user');
    const cancelled = await linkedOrder(stack, 'paused-user');
    await settled(stack);

    expect((await adminApi(stack).post('/admin/users/paused-user/pause')).status).toBe(401);
    expect((await adminApi(stack, reader.key).post('/admin/users/paused-user/pause')).status).toBe(403);
    expect((await adminApi(stack, reader.key).post('/admin/users/paused-user/resume')).status).toBe(403);
    const badUser = await adminApi(stack, writer.key).post(`/admin/users/${'u'.repeat(101)}/pause`);
    expect(badUser.status).toBe(400);
    expect(badUser.type).toBe('application/problem+json');
    const paused = await adminApi(stack, writer.key).post('/admin/users/paused-user/pause');
    expect(paused.status).toBe(200);
    expect(paused.body).toEqual({ userId: 'paused-user', paused: true, orders: 2, resumed: 0 });
    const before = writes(stack);
    const leadsBefore = stack.amo.state.leads.size;

    await stack.amo.moveLead(moved.dealId, { statusName: 'Payment received' }, { price: 9900 });
    await changedByCompany1(stack, cancelled.order.id, 'cancelled');
    const fresh = await stack.partner.createOrderAsUser({ userId: 'paused-user', customer: customer('Ольга', 'Смирнова', '+79035550101') });
    await stack.amo.webhooksIdle();
    await settled(stack);
    expect(writes(stack)).toEqual(before);
    expect(stack.amo.state.leads.size).toBe(leadsBefore);
    expect(stack.partner.orders.get(moved.order.id)!.status).toBe('on_approval');
    const listed = await adminApi(stack, reader.key).get('/admin/orders?userId=paused-user');
    expect(listed.body.items.map((i: { paused: boolean }) => i.paused)).toEqual([true, true, true]);

    const resumed = await adminApi(stack, writer.key).post('/admin/users/paused-user/resume');
    expect(resumed.status).toBe(200);
    expect(resumed.body).toEqual({ userId: 'paused-user', paused: false, orders: 3, resumed: 3 });
    await waitFor('the moved deal’s order paid', () => stack!.partner.orders.get(moved.order.id)!.paid);
    await waitFor('the new order linked', () => stack!.partner.orders.get(fresh.id)!.additionalInfo ?? undefined);
    await waitFor('the cancelled order’s deal at Refusal', () => stack!.amo.state.leads.get(cancelled.dealId)!.status_id === 143);
    await settled(stack);
    expect(stack.partner.orders.get(moved.order.id)).toMatchObject({ status: 'in_work', cost: 9900, paid: true });
    expect(notesOf(stack, cancelled.dealId)).toEqual([CANCELLED_NOTE]);
    expect(stack.amo.state.leads.size).toBe(leadsBefore + 1);
    expect((await db.selectFrom('jobs').select('status').where('status', '<>', 'done').where('kind', '<>', 'deals.sweep').execute())).toEqual([]);
  });

  it('the webview of a paused user places no order, and a paused order cannot be cancelled there, until resumed', async () => {
    stack = await testStack(kind, `admin-pause-webview-${kind}`);
    await stack.bridge.ready;
    const writer = await createApiKey(stack.bridge.db.kysely, 'writer', ['orders:write']);
    const agent = await signIn(stack, 'webview-paused');
    const form = await openForm(agent);
    expect((await agent.post('/webview/orders').type('form').send(orderForm(form))).status).toBe(303);
    const [order] = partnerOrdersOf(stack, 'webview-paused');
    await waitFor('additionalInfo', () => stack!.partner.orders.get(order!.id)?.additionalInfo ?? undefined);
    await settled(stack);

    expect((await adminApi(stack, writer.key).post(`/admin/orders/${order!.id}/pause`)).status).toBe(200);
    // The order page offers no cancel, and a cancel sent anyway is refused: Company 1 is not written to.
    const page = await agent.get(`/webview/orders/${order!.id}`);
    expect(page.status).toBe(200);
    expect(page.text).not.toContain(`href="/webview/orders/${order!.id}/cancel"`);
    const patchesBefore = stack.partner.stats.count({ method: 'PATCH', pathPrefix: `/orders/${order!.id}` });
    const refused = await agent.post(`/webview/orders/${order!.id}/cancel`).type('form').send({ _csrf: hiddenField(page.text, '_csrf') });
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('Поддержка проверяет ваши заказы');
    expect(stack.partner.stats.count({ method: 'PATCH', pathPrefix: `/orders/${order!.id}` })).toBe(patchesBefore);
    expect(stack.partner.orders.get(order!.id)!.status).toBe('on_approval');

    // A paused user places no order: nothing reaches Company 1.
    expect((await adminApi(stack, writer.key).post('/admin/users/webview-paused/pause')).status).toBe(200);
    const creates = stack.partner.stats.count({ method: 'POST', pathPrefix: '/orders' });
    const held = await agent.post('/webview/orders').type('form').send(orderForm(await openForm(agent)));
    expect(held.status).toBe(409);
    expect(held.text).toContain('Сейчас это недоступно');
    expect(stack.partner.stats.count({ method: 'POST', pathPrefix: '/orders' })).toBe(creates);

    expect((await adminApi(stack, writer.key).post('/admin/users/webview-paused/resume')).status).toBe(200);
    expect((await agent.post('/webview/orders').type('form').send(orderForm(await openForm(agent)))).status).toBe(303);
    expect(partnerOrdersOf(stack, 'webview-paused')).toHaveLength(2);
    // The order paused by itself stays paused after its user is resumed.
    const stillHeld = await agent.post(`/webview/orders/${order!.id}/cancel`).type('form').send({ _csrf: hiddenField(page.text, '_csrf') });
    expect(stillHeld.status).toBe(409);
    expect((await adminApi(stack, writer.key).post(`/admin/orders/${order!.id}/resume`)).status).toBe(200);
    const cancelPage = await agent.get(`/webview/orders/${order!.id}/cancel`);
    expect(cancelPage.status).toBe(200);
    expect((await agent.post(`/webview/orders/${order!.id}/cancel`).type('form').send({ _csrf: hiddenField(cancelPage.text, '_csrf') })).status).toBe(303);
    expect(stack.partner.orders.get(order!.id)!.status).toBe('cancelled');
  });

  it('shows an order’s timeline, oldest first: webhooks, jobs and their attempts, calls with what they changed, decisions', async () => {
    stack = await testStack(kind, `admin-timeline-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'reader', ['orders:read']);
    const writer = await createApiKey(db, 'writer', ['orders:write']);
    const { order, dealId } = await linkedOrder(stack, 'timeline-user');
    await settled(stack);
    await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' });
    await waitFor('approved', () => stack!.partner.orders.get(order.id)!.status === 'approved');
    await settled(stack);
    await adminApi(stack, writer.key).post(`/admin/orders/${order.id}/pause`);
    await changedByCompany1(stack, order.id, 'cancelled');
    await settled(stack);
    await adminApi(stack, writer.key).post(`/admin/orders/${order.id}/resume`);
    await waitFor('the deal at Refusal', () => stack!.amo.state.leads.get(dealId)!.status_id === 143);
    await settled(stack);

    const res = await adminApi(stack, reader.key).get(`/admin/orders/${order.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ orderId: order.id, dealId, status: 'cancelled', paused: false });
    const timeline = res.body.timeline as Array<{ at: string; source: string; event: string; detail: Record<string, unknown> }>;
    const ats = timeline.map((e) => Date.parse(e.at));
    expect(ats).toEqual([...ats].sort((a, b) => a - b));
    expect(timeline.every((e) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(e.at))).toBe(true);
    const present = (i: number, what: string) => {
      if (i < 0) throw new Error(`no ${what} in the timeline: ${JSON.stringify(timeline, null, 1)}`);
      return i;
    };
    const find = (event: string, match: Record<string, unknown> = {}) =>
      present(
        timeline.findIndex((e) => e.event === event && Object.entries(match).every(([k, v]) => JSON.stringify(e.detail[k]) === JSON.stringify(v))),
        `${event} ${JSON.stringify(match)}`,
      );

    // Intake: the webhook, its job, the deal, additionalInfo written back (null → ids), the attempt done.
    const received = find('webhook.received', { type: 'order.created', status: 'on_approval' });
    expect(timeline[received]!.source).toBe('partner');
    const created = find('deal.created', { dealId });
    expect(timeline[created]!.source).toBe('amocrm');
    const infoWritten = present(timeline.findIndex((e) => e.event === 'order.patched' && 'additionalInfo' in (e.detail.changes as object)), 'additionalInfo');
    expect(timeline[infoWritten]).toMatchObject({
      source: 'partner',
      detail: { changes: { additionalInfo: { before: null, after: { contactId: expect.any(Number), externalId: dealId, closedByDetmir: false } } } },
    });
    const intakeDone = find('job.attempt', { kind: 'order.sync', outcome: 'done' });
    expect(received).toBeLessThan(created);
    expect(created).toBeLessThan(infoWritten);
    expect(infoWritten).toBeLessThan(intakeDone);

    // The stage move: amoCRM's webhook, the decision, Company 1's status on_approval → approved.
    const stageHook = find('webhook.received', { dealId });
    expect(timeline[stageHook]!.source).toBe('amocrm');
    const decided = find('decision', { decision: 'update' });
    const approved = present(
      timeline.findIndex((e) => e.event === 'order.patched' && JSON.stringify(e.detail.changes).includes('"status":{"before":"on_approval","after":"approved"}')),
      'the approval',
    );
    if (process.env.SHOW_TIMELINE) console.log(JSON.stringify(timeline, null, 1));
    expect(stageHook).toBeGreaterThan(intakeDone);
    expect(decided).toBeGreaterThan(stageHook);
    expect(approved).toBeGreaterThan(decided);

    // The pause: recorded, the cancel seen and its job skipped, then the resume and the deal's note and move.
    const paused = find('order.paused');
    expect(timeline[paused]).toMatchObject({ source: 'admin', detail: { keyId: writer.id } });
    const cancelled = find('order.changed');
    expect(timeline[cancelled]).toMatchObject({ source: 'partner', detail: { changes: { status: { before: 'approved', after: 'cancelled' } } } });
    const skipped = find('job.skipped', { kind: 'order.sync', reason: 'paused' });
    const resumed = find('order.resumed');
    const noted = find('deal.noted', { dealId, kind: 'cancelled' });
    const moved = find('deal.moved', { dealId, kind: 'cancelled' });
    expect(paused).toBeGreaterThan(approved);
    expect(skipped).toBeGreaterThan(paused);
    expect(resumed).toBeGreaterThan(skipped);
    expect(noted).toBeGreaterThan(resumed);
    expect(moved).toBeGreaterThanOrEqual(noted);
    expect(timeline.filter((e) => e.event === 'job.queued').map((e) => e.detail.kind)).toEqual(expect.arrayContaining(['order.sync', 'deal.reconcile']));

    // No names, phones or secrets.
    const text = JSON.stringify(res.body);
    for (const secret of ['Ольга', 'Смирнова', '5550101', '555-01-01', 'partner-sim-token', writer.key]) expect(text).not.toContain(secret);
  });

  it('a dead letter’s reason is in the timeline', async () => {
    stack = await testStack(kind, `admin-timeline-dead-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'reader', ['orders:read']);
    // Company 1 answers 404 for an order it "lost": permanent, so the job goes dead.
    const order = await stack.partner.createOrderAsUser({ userId: 'dead-user', customer: customer('A', 'B', '+79990000001') }, { send: false });
    stack.partner.orders.delete(order.id);
    await stack.partner.sendWebhook('order.created', order);
    await waitFor('a dead job', async () => (await db.selectFrom('jobs').select('id').where('status', '=', 'dead').execute()).length > 0);
    const res = await adminApi(stack, reader.key).get(`/admin/orders/${order.id}`);
    const dead = (res.body.timeline as Array<{ source: string; event: string; detail: Record<string, unknown> }>).find((e) => e.event === 'job.dead_letter');
    expect(dead).toMatchObject({ source: 'bridge', detail: { kind: 'order.sync', outcome: 'dead', error: expect.stringMatching(/404/) } });
    expect((await adminApi(stack, reader.key).get('/admin/orders/unknown-order')).status).toBe(404);
  });
});
