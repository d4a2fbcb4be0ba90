import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { OUTSIDE_WEBVIEW_NOTE } from '../src/inbox/accept-partner-event.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { editedMappings } from './support/mappings.js';
import { testStack, waitFor } from './support/stack.js';
import {
  CONFIRMED_AND_PAID,
  confirmAndPay,
  dealsOfOrder,
  hiddenField,
  openForm,
  orderForm,
  partnerOrdersOf,
  signIn,
  signWebviewToken,
  unsignedWebviewToken,
} from './support/webview.js';

const setCookies = (res: request.Response): string[] => {
  const header = res.headers['set-cookie'] as string[] | string | undefined;
  return header === undefined ? [] : Array.isArray(header) ? header : [header];
};

/** Every job finished. */
async function drained(stack: Stack) {
  await waitFor('the queue to drain', async () => {
    const open = await stack.bridge.db.kysely.selectFrom('jobs').select('id').where('status', '<>', 'done').execute();
    return open.length === 0;
  });
}

describe.each(DATABASES)('webview on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('signs in with a valid token: a session cookie (httpOnly, SameSite=Lax, /webview), then a redirect without the token', async () => {
    stack = await testStack(kind, `webview-signin-${kind}`);
    const res = await request(stack.bridgeUrl).get('/webview').query({ token: await signWebviewToken() });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/webview/orders');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-store');
    const [session, ...rest] = setCookies(res);
    expect(rest).toEqual([]);
    expect(session).toMatch(/^amobridge_session=s%3A/);
    expect(session).toMatch(/; Path=\/webview/);
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/; SameSite=Lax/);
    expect(session).not.toMatch(/Secure/); // plain http on loopback

    // Behind a TLS-terminating proxy on loopback, the cookie is Secure.
    const https = await request(stack.bridgeUrl).get('/webview').set('X-Forwarded-Proto', 'https').query({ token: await signWebviewToken() });
    expect(setCookies(https)[0]).toMatch(/; Secure/);

    const page = await request(stack.bridgeUrl).get('/webview/orders').set('Cookie', session!.split(';')[0]!);
    expect(page.status).toBe(200);
    expect(page.text).toContain('<h1>Мои заказы</h1>');
    expect(page.text).toContain('<html lang="ru">');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  });

  it('refuses forged, expired, alg-none, wrong-audience, wrong-issuer, HS512 and malformed tokens with an error page and no cookie', async () => {
    stack = await testStack(kind, `webview-bad-tokens-${kind}`);
    const tokens: Array<[string, string]> = [
      ['forged', await signWebviewToken({ secret: 'another-secret-another-secret-another-secret' })],
      ['expired', await signWebviewToken({ expiresIn: -120 })],
      ['alg none', unsignedWebviewToken()],
      ['wrong audience', await signWebviewToken({ audience: 'someone-else' })],
      ['wrong issuer', await signWebviewToken({ issuer: 'company3' })],
      ['HS512', await signWebviewToken({ alg: 'HS512' })],
      ['garbage', 'not-a-jwt'],
      ['empty', ''],
    ];
    for (const [what, token] of tokens) {
      const res = await request(stack.bridgeUrl).get('/webview').query({ token });
      expect(res.status, what).toBe(401);
      expect(res.type, what).toBe('text/html');
      expect(res.text, what).toMatch(/<h1>(Ссылка для входа недействительна|Срок действия ссылки для входа истёк)<\/h1>/);
      expect(res.text, what).toContain('снова откройте страницу «Компания 2»');
      expect(setCookies(res), what).toEqual([]);
    }
    expect(await stack.bridge.db.kysely.selectFrom('webview_sessions').select('user_id').execute()).toEqual([]);

    // A token that expired within the allowed clock skew still signs in.
    const late = await request(stack.bridgeUrl).get('/webview').query({ token: await signWebviewToken({ expiresIn: -10 }) });
    expect(late.status).toBe(303);
  });

  it('a token signs in once: a replay gets the error page and no session, with or without a jti', async () => {
    stack = await testStack(kind, `webview-replay-${kind}`);
    for (const jti of [undefined, null] as const) {
      const token = await signWebviewToken({ sub: 'replayed-user', jti });
      const first = request.agent(stack.bridgeUrl);
      expect((await first.get('/webview').query({ token })).status).toBe(303);

      const replay = await request(stack.bridgeUrl).get('/webview').query({ token });
      expect(replay.status).toBe(401);
      expect(replay.text).toContain('<h1>Эта ссылка для входа уже использована</h1>');
      expect(setCookies(replay)).toEqual([]);

      // The browser that signed in with it and reopens the same URL stays signed in, and no new session is made.
      const reopened = await first.get('/webview').query({ token });
      expect(reopened.status).toBe(303);
      expect(setCookies(reopened)).toEqual([]);
    }
    const sessions = await stack.bridge.db.kysely.selectFrom('webview_sessions').select('user_id').execute();
    expect(sessions).toHaveLength(2);
  });

  it('pages need a session; sign-out ends it', async () => {
    stack = await testStack(kind, `webview-session-${kind}`);
    for (const path of ['/webview/orders', '/webview/orders/new', '/webview/orders/DM-000001']) {
      const res = await request(stack.bridgeUrl).get(path);
      expect(res.status, path).toBe(401);
      expect(res.text, path).toContain('<h1>Сеанс завершён</h1>');
    }
    expect((await request(stack.bridgeUrl).get('/webview')).text).toContain('Откройте эту страницу из приложения «Компания 1»');

    const agent = await signIn(stack);
    const page = await agent.get('/webview/orders');
    const csrf = hiddenField(page.text, '_csrf');
    const refused = await agent.post('/webview/sign-out').type('form').send({});
    expect(refused.status).toBe(403);
    expect((await agent.get('/webview/orders')).status).toBe(200);

    const out = await agent.post('/webview/sign-out').type('form').send({ _csrf: csrf });
    expect(out.status).toBe(200);
    expect(out.text).toContain('<h1>Вы вышли</h1>');
    expect(await stack.bridge.db.kysely.selectFrom('webview_sessions').select('user_id').execute()).toEqual([]);
    expect((await agent.get('/webview/orders')).status).toBe(401);
  });

  it('refuses a POST without the CSRF token, or with another session’s, and creates nothing', async () => {
    stack = await testStack(kind, `webview-csrf-${kind}`);
    const agent = await signIn(stack, 'csrf-user');
    const form = await openForm(agent);
    const other = await signIn(stack, 'csrf-other');
    const otherForm = await openForm(other);

    const attempts: Array<[string, Record<string, string>]> = [
      ['no token', { ...orderForm(form), _csrf: '' }],
      ['made-up token', { ...orderForm(form), _csrf: 'abc.def' }],
      ['another session’s token', { ...orderForm(form), _csrf: otherForm.csrf }],
    ];
    for (const [what, body] of attempts) {
      const res = await agent.post('/webview/orders').type('form').send(body);
      expect(res.status, what).toBe(403);
      expect(res.text, what).toContain('<h1>Форма устарела</h1>');
    }
    // No form body at all (another content type) is refused the same way.
    expect((await agent.post('/webview/orders').send({ ...orderForm(form) })).status).toBe(403);
    expect(stack.partner.stats.count({ method: 'POST', pathPrefix: '/orders' })).toBe(0);
  });

  it('creates an order through Company 1 with an Idempotency-Key; a double submit makes one order and one deal', async () => {
    stack = await testStack(kind, `webview-create-${kind}`);
    await stack.bridge.ready;
    const agent = await signIn(stack, 'double-user');
    const form = await openForm(agent);
    expect(form.html).toContain('value="Ольга"');
    expect(form.html).toContain('value="+79035550101"');

    // Two submits of the same form at once, as a double click without JavaScript sends them.
    const [a, b] = await Promise.all([
      agent.post('/webview/orders').type('form').send(orderForm(form, { comment: 'Evenings, please' })),
      agent.post('/webview/orders').type('form').send(orderForm(form, { comment: 'Evenings, please' })),
    ]);
    expect(a.status).toBe(303);
    expect(b.status).toBe(303);
    expect(a.headers.location).toBe(b.headers.location);
    const orders = partnerOrdersOf(stack, 'double-user');
    expect(orders).toHaveLength(1);
    const order = orders[0]!;
    expect(a.headers.location).toBe(`/webview/orders/${order.id}`);
    const posts = stack.partner.stats.requests.filter((r) => r.method === 'POST' && r.path === '/orders');
    expect(posts).toHaveLength(2);
    expect(posts[0]!.idempotencyKey).toMatch(/^webview-create:[0-9a-f]{64}$/);
    expect(posts[1]!.idempotencyKey).toBe(posts[0]!.idempotencyKey);
    expect(posts[0]!.body).toMatchObject({
      userId: 'double-user',
      serviceId: 'trial-lesson',
      customer: { firstName: 'Ольга', lastName: 'Смирнова', phone: '+7 903 555-01-01' },
      comment: 'Evenings, please',
    });

    const linked = await waitFor('additionalInfo', () => stack!.partner.orders.get(order.id)?.additionalInfo ?? undefined);
    const deals = dealsOfOrder(stack, order.id);
    expect(deals).toHaveLength(1);
    expect(linked).toEqual({ contactId: expect.any(Number), externalId: deals[0]!.id, closedByDetmir: false });
    const row = await stack.bridge.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', order.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ origin: 'webview', note: null, deal_id: deals[0]!.id });

    // A third submit of the same form (a reload of the POST) still changes nothing.
    const c = await agent.post('/webview/orders').type('form').send(orderForm(form, { comment: 'Evenings, please' }));
    expect(c.headers.location).toBe(a.headers.location);
    await drained(stack);
    expect(partnerOrdersOf(stack, 'double-user')).toHaveLength(1);
    expect(dealsOfOrder(stack, order.id)).toHaveLength(1);

    const page = await agent.get(a.headers.location!);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Заказ оформлен. Менеджер скоро свяжется с вами.');
    expect(page.text).toContain('data-status="on_approval"');
    expect(page.text).toContain('Заказ передан менеджеру');
    // Post/redirect/get: the notice was shown once; a reload does not bring it back.
    const reloaded = await agent.get(a.headers.location!);
    expect(reloaded.status).toBe(200);
    expect(reloaded.text).not.toContain('Заказ оформлен. Менеджер скоро свяжется с вами.');
  });

  it('shows a comment with <script> as text, and escapes names from the token', async () => {
    stack = await testStack(kind, `webview-xss-${kind}`);
    const agent = await signIn(stack, 'xss-user', { givenName: '"><script>alert(1)</script>' });
    const form = await openForm(agent);
    expect(form.html).not.toContain('<script>alert(1)</script>');
    expect(form.html).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');

    const comment = '<script>alert("x")</script> & <b>bold</b>';
    const res = await agent.post('/webview/orders').type('form').send(orderForm(form, { comment }));
    expect(res.status).toBe(303);
    const page = await agent.get(res.headers.location!);
    expect(page.text).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;');
    expect(page.text).not.toContain('<script>alert');
    expect(page.text).not.toContain('<b>bold</b>');
    // The header's sign-out button names the user, escaped as well.
    expect(page.text).toContain('(&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;)');
  });

  it('re-renders an invalid form with its errors and the same nonce, and sends nothing', async () => {
    stack = await testStack(kind, `webview-invalid-${kind}`);
    const agent = await signIn(stack, 'invalid-user');
    const form = await openForm(agent);
    const res = await agent.post('/webview/orders').type('form').send(orderForm(form, { serviceId: 'no-such-service', firstName: ' ', phone: 'call me' }));
    expect(res.status).toBe(400);
    expect(res.text).toContain('Проверьте форму');
    expect(res.text).toContain('<a href="#serviceId">Выберите услугу</a>');
    expect(res.text).toContain('<a href="#firstName">Укажите имя</a>');
    expect(res.text).toContain('aria-invalid="true" aria-describedby="phone-error"');
    expect(hiddenField(res.text, 'nonce')).toBe(form.nonce);
    expect(stack.partner.stats.count({ method: 'POST' })).toBe(0);
  });

  it('an outage of Company 1 shows a friendly page whose retry creates the order once', async () => {
    stack = await testStack(kind, `webview-outage-${kind}`);
    await stack.bridge.ready;
    const agent = await signIn(stack, 'outage-user');
    const form = await openForm(agent);
    stack.partner.faults.outage = true;
    const failed = await agent.post('/webview/orders').type('form').send(orderForm(form));
    expect(failed.status).toBe(503);
    expect(failed.text).toContain('<h1>Не удалось оформить заказ</h1>');
    expect(failed.text).toContain('Повторить безопасно: заказ не будет оформлен дважды.');
    expect(hiddenField(failed.text, 'nonce')).toBe(form.nonce);
    expect(await stack.bridge.db.kysely.selectFrom('orders').select('order_id').execute()).toEqual([]);

    // The list still renders, saying it may be stale.
    const list = await agent.get('/webview/orders');
    expect(list.status).toBe(200);
    expect(list.text).toContain('Приложение «Компания 1» сейчас не отвечает');

    stack.partner.faults.outage = false;
    const retryFields = Object.fromEntries(
      ['_csrf', 'nonce', 'serviceId', 'firstName', 'lastName', 'phone', 'comment'].map((n) => [n, hiddenField(failed.text, n)]),
    );
    const retried = await agent.post('/webview/orders').type('form').send(retryFields);
    expect(retried.status).toBe(303);
    expect(partnerOrdersOf(stack, 'outage-user')).toHaveLength(1);
  });

  it('Company 1 echoing the create as order.created makes no second deal, and the order stays the webview’s', async () => {
    stack = await testStack(kind, `webview-echo-${kind}`, { partner: { notifyApiChanges: true } });
    await stack.bridge.ready;
    const agent = await signIn(stack, 'echo-user');
    const form = await openForm(agent);
    const res = await agent.post('/webview/orders').type('form').send(orderForm(form));
    expect(res.status).toBe(303);
    const [order] = partnerOrdersOf(stack, 'echo-user');
    await waitFor('the echo webhook', () => stack!.partner.deliveries.some((d) => d.orderId === order!.id && d.status === 202));
    await waitFor('additionalInfo', () => stack!.partner.orders.get(order!.id)?.additionalInfo ?? undefined);
    await drained(stack);
    expect(dealsOfOrder(stack, order!.id)).toHaveLength(1);
    const row = await stack.bridge.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', order!.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ origin: 'webview', note: null });
  });

  it('at stage 3 an order made on Company 1’s side is still taken in, and marked as created outside the webview', async () => {
    stack = await testStack(kind, `webview-outside-${kind}`);
    await stack.bridge.ready;
    const created = await stack.partner.createOrderAsUser({
      userId: 'app-user',
      customer: { firstName: 'Иван', lastName: 'Петров', phone: '+79035550102' },
    });
    await waitFor('additionalInfo', () => stack!.partner.orders.get(created.id)?.additionalInfo ?? undefined);
    expect(dealsOfOrder(stack, created.id)).toHaveLength(1);
    const row = await stack.bridge.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', created.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ origin: 'webhook', note: OUTSIDE_WEBVIEW_NOTE });

    // While the webview has a create of that user and service under way (no answer
    // recorded yet), an order.created for it may be its echo: not marked.
    await stack.bridge.db.kysely
      .insertInto('webview_orders')
      .values({ idempotency_key: 'k-pending', user_id: 'app-user-2', service_id: 'trial-lesson', comment: null, started_at: Date.now(), order_id: null, recorded_at: null })
      .execute();
    const echo = await stack.partner.createOrderAsUser({ userId: 'app-user-2', customer: { firstName: 'Анна', lastName: '', phone: '+79035550103' } });
    await waitFor('additionalInfo', () => stack!.partner.orders.get(echo.id)?.additionalInfo ?? undefined);
    const echoRow = await stack.bridge.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', echo.id).executeTakeFirstOrThrow();
    expect(echoRow).toMatchObject({ origin: 'webhook', note: null });

    // The user sees it in the webview all the same.
    const agent = await signIn(stack, 'app-user');
    const list = await agent.get('/webview/orders');
    expect(list.text).toContain(`Заказ ${created.id}`);
    const page = await agent.get(`/webview/orders/${created.id}`);
    expect(page.text).toContain('В приложении «Компания 1»');
  });

  it('cancels in two steps (a page that asks, then its POST) where the transitions allow it, once; not after the order is in work; never another user’s order', async () => {
    stack = await testStack(kind, `webview-cancel-${kind}`);
    await stack.bridge.ready;
    const agent = await signIn(stack, 'cancel-user');
    const form = await openForm(agent);
    const created = await agent.post('/webview/orders').type('form').send(orderForm(form));
    const [order] = partnerOrdersOf(stack, 'cancel-user');
    await waitFor('additionalInfo', () => stack!.partner.orders.get(order!.id)?.additionalInfo ?? undefined);
    await drained(stack);

    const page = await agent.get(created.headers.location!);
    const cancelHref = `/webview/orders/${order!.id}/cancel`;
    expect(page.text).toContain(`<a class="button button-danger" href="${cancelHref}">Отменить заказ</a>`);
    // The first step only asks: a GET changes nothing, and its form (with the CSRF token) cancels.
    const confirm = await agent.get(cancelHref);
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain('<h1>Отменить заказ?</h1>');
    expect(confirm.text).toContain(`<form method="post" action="${cancelHref}" class="cancel-form">`);
    expect(confirm.text).toContain(`<a class="button button-secondary button-wide" href="/webview/orders/${order!.id}">Нет, вернуться к заказу</a>`);
    expect(stack.partner.stats.count({ method: 'PATCH', pathPrefix: `/orders/${order!.id}` })).toBe(1); // additionalInfo only
    expect(stack.partner.orders.get(order!.id)!.status).toBe('on_approval');
    const csrf = hiddenField(confirm.text, '_csrf');

    // Someone else cannot see or cancel it.
    const stranger = await signIn(stack, 'stranger');
    expect((await stranger.get(`/webview/orders/${order!.id}`)).status).toBe(404);
    expect((await stranger.get(cancelHref)).status).toBe(404);
    const strangerPage = await stranger.get('/webview/orders');
    const strangerCancel = await stranger.post(`/webview/orders/${order!.id}/cancel`).type('form').send({ _csrf: hiddenField(strangerPage.text, '_csrf') });
    expect(strangerCancel.status).toBe(404);
    expect(stack.partner.orders.get(order!.id)!.status).toBe('on_approval');

    const [x, y] = await Promise.all([
      agent.post(`/webview/orders/${order!.id}/cancel`).type('form').send({ _csrf: csrf }),
      agent.post(`/webview/orders/${order!.id}/cancel`).type('form').send({ _csrf: csrf }),
    ]);
    expect([x.status, y.status]).toEqual([303, 303]);
    expect(x.headers.location).toBe(`/webview/orders/${order!.id}`);
    const patches = stack.partner.stats.requests.filter((r) => r.method === 'PATCH' && r.path === `/orders/${order!.id}` && (r.body as { status?: string }).status === 'cancelled');
    expect(patches.length).toBeGreaterThan(0);
    expect(new Set(patches.map((p) => p.idempotencyKey)).size).toBe(1);
    expect(patches[0]!.body).toEqual({ status: 'cancelled', additionalInfo: stack.partner.orders.get(order!.id)!.additionalInfo });
    const after = await agent.get(x.headers.location!);
    expect(after.text).toContain('data-status="cancelled"');
    expect(after.text).toContain('Заказ отменён.');
    expect(after.text).not.toContain(cancelHref);
    expect((await agent.get(x.headers.location!)).text).not.toContain('<p class="notice notice-success"');
    expect((await agent.get(cancelHref)).status).toBe(409);

    // An order in work cannot be cancelled (the mappings' transitions say so).
    const secondForm = await openForm(agent);
    const second = await agent.post('/webview/orders').type('form').send(orderForm(secondForm));
    const secondId = decodeURIComponent(second.headers.location!.split('/').pop()!);
    const dealId = (await waitFor('additionalInfo', () => stack!.partner.orders.get(secondId)?.additionalInfo ?? undefined)).externalId;
    await stack.amo.moveLead(dealId, { statusName: 'Confirmed VU' });
    await waitFor('in_work', () => stack!.partner.orders.get(secondId)?.status === 'in_work');
    const inWork = await agent.get(`/webview/orders/${secondId}`);
    expect(inWork.text).toContain('data-status="in_work"');
    expect(inWork.text).not.toContain(`/webview/orders/${secondId}/cancel`);
    const asked = await agent.get(`/webview/orders/${secondId}/cancel`);
    expect(asked.status).toBe(409);
    expect(asked.text).toContain('<h1>Этот заказ уже нельзя отменить</h1>');
    expect(asked.text).toContain('Сейчас его статус — «В работе».');
    const refused = await agent.post(`/webview/orders/${secondId}/cancel`).type('form').send({ _csrf: hiddenField(inWork.text, '_csrf') });
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('<h1>Этот заказ уже нельзя отменить</h1>');
    expect(stack.partner.orders.get(secondId)!.status).toBe('in_work');
  });

  it('the timeline says what changed (confirmed, in work, cost 4 900 ₽, paid, subscription status); the subscription row only once it applies', async () => {
    stack = await testStack(kind, `webview-timeline-${kind}`);
    await stack.bridge.ready;
    const agent = await signIn(stack, 'timeline-user');
    const form = await openForm(agent);
    const created = await agent.post('/webview/orders').type('form').send(orderForm(form));
    expect(created.status).toBe(303);
    const orderId = partnerOrdersOf(stack, 'timeline-user')[0]!.id;
    const dealId = (await waitFor('additionalInfo', () => stack!.partner.orders.get(orderId)?.additionalInfo ?? undefined)).externalId;
    await drained(stack);
    const events = (html: string) => [...html.matchAll(/<span class="event">([^<]*)<\/span>/g)].map((m) => m[1]!.replace(/\s/g, ' '));

    const fresh = await agent.get(created.headers.location!);
    expect(fresh.text).not.toContain('data-fact="subscription"');
    expect(events(fresh.text)).toEqual(['Заказ оформлен', 'Заказ передан менеджеру']);

    const current = () => stack!.partner.orders.get(orderId)!;
    // Skipped stages still each say what they changed.
    await confirmAndPay(stack, orderId);
    const subscriptionField = stack.amo.fieldIdByName('leads', 'Subscription status');
    await stack.amo.moveLead(dealId, { statusName: 'Submit Subscription Status' }, { customFields: [{ field_id: subscriptionField, values: [{ value: 'Активен' }] }] });
    // A Russian value: it travels in the stage step's Idempotency-Key too.
    await waitFor('the subscription status', () => current().subscriptionStatus === 'Активен');

    const page = await agent.get(created.headers.location!);
    expect(events(page.text)).toEqual([...CONFIRMED_AND_PAID, 'Статус абонемента: Активен']);
    expect(page.text).toContain('<div data-fact="subscription"><dt>Абонемент</dt><dd>Активен</dd></div>');
    expect(page.text).toContain('<dd>4\u00a0900\u00a0₽</dd>');
    expect(page.text).toContain('<dd>Оплачен</dd>');
    const list = await agent.get('/webview/orders');
    expect(list.text).toContain('data-fact="subscription"');
  });

  it('speaks English with WEBVIEW_LOCALE=en: <html lang>, texts and plural forms', async () => {
    stack = await testStack(kind, `webview-english-${kind}`, { env: { WEBVIEW_LOCALE: 'en', WEBVIEW_ORDER_LIMIT: '1/1h' } });
    const agent = await signIn(stack, 'english-user', { givenName: 'Olga', familyName: 'Smith' });
    const list = await agent.get('/webview/orders');
    expect(list.text).toContain('<html lang="en">');
    expect(list.text).toContain('<h1>My orders</h1>');
    expect(list.text).toContain('<title>My orders · Company 2</title>');
    const form = await openForm(agent);
    expect(form.html).toContain('<label for="serviceId">Trial lesson</label>');
    expect((await agent.post('/webview/orders').type('form').send(orderForm(form))).status).toBe(303);
    const limited = await agent.get('/webview/orders/new');
    expect(limited.status).toBe(429);
    expect(limited.text).toContain('You have placed 1 order in 1 hour.');
    expect(limited.text).toMatch(/You can place a new order in (59|60) minutes\./);
    expect(limited.text).not.toMatch(/[а-яё]/i);
    const orders = await agent.get('/webview/orders');
    expect(orders.text).toContain('<dt>Cost</dt><dd>Not set yet</dd>');
    expect(orders.text).toContain('<span class="status status-on_approval" data-status="on_approval">In processing</span>');
  });

  it('before stage 3 the webview shows orders but has no new-order form', async () => {
    const stage2 = editedMappings((yaml) => yaml.replace('integrationStage: 3', 'integrationStage: 2'));
    stack = await testStack(kind, `webview-stage2-${kind}`, { mappingsPath: stage2 });
    const agent = await signIn(stack, 'stage2-user');
    const list = await agent.get('/webview/orders');
    expect(list.status).toBe(200);
    expect(list.text).not.toContain('/webview/orders/new');
    expect(list.text).toContain('Пока новые заказы оформляются в приложении «Компания 1».');
    expect((await agent.get('/webview/orders/new')).status).toBe(403);
    const csrf = hiddenField(list.text, '_csrf');
    const post = await agent
      .post('/webview/orders')
      .type('form')
      .send({ _csrf: csrf, nonce: 'aaaaaaaaaaaaaaaaaaaaaa', serviceId: 'trial-lesson', firstName: 'A', phone: '+79035550101' });
    expect(post.status).toBe(403);
    expect(stack.partner.stats.count({ method: 'POST' })).toBe(0);
  });
});
