import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { testStack, waitFor } from './support/stack.js';
import {
  type Agent,
  cookiesOf,
  dealsOfOrder,
  hiddenField,
  openForm,
  orderForm,
  partnerOrdersOf,
  rawRequest,
  respellings,
  signIn,
  signWebviewToken,
} from './support/webview.js';

/**
 * The security defects of issue 11, each reproduced as it was found: a sign-in link
 * respelled, a token without iat or valid for 75 years, another user's link replacing
 * the session, a session placing orders without limit, and order ids `.` and `..`
 * reaching Company 1's API as other paths.
 */

/** The sessions of these users (the stack is shared by the file's tests, each with users of its own). */
const sessionsOf = (stack: Stack, users: string[]) =>
  stack.bridge.db.kysely.selectFrom('webview_sessions').select(['user_id', 'given_name']).where('user_id', 'in', users).execute();

const sessionCookieSet = (res: request.Response) => cookiesOf(res.headers).some((c) => c.startsWith('amobridge_session='));

/** The user the session's pages are for: the header names them (the sign-out button). */
async function signedInAs(agent: Agent): Promise<string | undefined> {
  const page = await agent.get('/webview/orders');
  if (page.status !== 200) return undefined;
  return /class="visually-hidden"> \(([^)]*)\)</.exec(page.text)?.[1];
}

const submit = (agent: Agent, form: { csrf: string; nonce: string }) => agent.post('/webview/orders').type('form').send(orderForm(form));

describe.each(DATABASES)('webview security on %s', (kind) => {
  // One stack for the file: each test has users of its own. Two orders per user in 10 minutes.
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack(kind, `webview-security-${kind}`, { env: { WEBVIEW_ORDER_LIMIT: '2/10m' } });
    await stack.bridge.ready;
  });
  afterAll(async () => stack?.stop());

  it('a token without jti signs in once whatever its spelling (%3D, %0A, another last base64 character)', async () => {
    const token = await signWebviewToken({ sub: 'respelled-user', jti: null });
    expect((await request(stack.bridgeUrl).get('/webview').query({ token })).status).toBe(303);

    for (const [how, spelling] of respellings(token)) {
      const res = await request(stack.bridgeUrl).get('/webview').query({ token: spelling });
      expect(res.status, how).toBe(401);
      expect(sessionCookieSet(res), how).toBe(false);
    }
    expect(await sessionsOf(stack, ['respelled-user'])).toHaveLength(1);

    // Respelled before any use, the token signs in nobody either: only its canonical form counts.
    const fresh = await signWebviewToken({ sub: 'respelled-user', jti: null, givenName: 'Анна' });
    for (const [how, spelling] of respellings(fresh)) {
      const res = await request(stack.bridgeUrl).get('/webview').query({ token: spelling });
      expect(res.status, how).toBe(401);
    }
    expect((await request(stack.bridgeUrl).get('/webview').query({ token: fresh })).status).toBe(303);
    expect(await sessionsOf(stack, ['respelled-user'])).toHaveLength(2);
  });

  it('iat is required, and a token older than WEBVIEW_TOKEN_MAX_AGE is refused whatever its exp', async () => {
    const until2100 = Math.floor(Date.UTC(2100, 0, 1) / 1000) - Math.floor(Date.now() / 1000);
    const refused: Array<[string, string]> = [
      ['no iat', await signWebviewToken({ sub: 'aged-user', issuedAt: null })],
      ['no iat, valid until 2100', await signWebviewToken({ sub: 'aged-user', issuedAt: null, expiresIn: until2100 })],
      ['issued 400 s ago, valid until 2100', await signWebviewToken({ sub: 'aged-user', issuedAt: -400, expiresIn: until2100 })],
      ['issued 10 minutes in the future', await signWebviewToken({ sub: 'aged-user', issuedAt: 600 })],
    ];
    for (const [what, token] of refused) {
      const res = await request(stack.bridgeUrl).get('/webview').query({ token });
      expect(res.status, what).toBe(401);
      expect(sessionCookieSet(res), what).toBe(false);
    }
    expect(await sessionsOf(stack, ['aged-user'])).toEqual([]);
    // Within the default 300 s (and the clock skew), a token signs in.
    expect((await request(stack.bridgeUrl).get('/webview').query({ token: await signWebviewToken({ sub: 'aged-user', issuedAt: -200 }) })).status).toBe(303);
  });

  it('another user’s link asks “Continue as …?” and keeps the current session until a CSRF-protected POST confirms', async () => {
    const agent = await signIn(stack, 'victim', { givenName: 'Ольга' });
    const token = await signWebviewToken({ sub: 'attacker', givenName: 'Иван' });

    const asked = await agent.get('/webview').query({ token });
    expect(asked.status).toBe(200);
    expect(asked.text).toContain('<h1>Продолжить как Иван?</h1>');
    expect(asked.text).toContain('Сейчас вы вошли как Ольга.');
    expect(sessionCookieSet(asked)).toBe(false);
    expect(await signedInAs(agent)).toBe('Ольга');
    expect((await sessionsOf(stack, ['victim', 'attacker'])).map((s) => s.user_id)).toEqual(['victim']);

    // Without the CSRF token, or confirmed from another session, nothing changes.
    const action = /<form method="post" action="([^"]+)"[^>]*class="continue-as"/.exec(asked.text)?.[1];
    expect(action).toBe('/webview/sign-in');
    expect((await agent.post('/webview/sign-in').type('form').send({ user: 'attacker' })).status).toBe(403);
    const other = await signIn(stack, 'bystander', { givenName: 'Анна' });
    const otherPage = await other.get('/webview/orders');
    const foreign = await other.post('/webview/sign-in').type('form').send({ _csrf: hiddenField(otherPage.text, '_csrf'), user: 'attacker' });
    expect(foreign.status).toBe(409);
    expect(foreign.text).toContain('<h1>Это подтверждение входа больше не действует</h1>');
    expect(await signedInAs(other)).toBe('Анна');
    expect(await signedInAs(agent)).toBe('Ольга');

    // The link was used by asking: opened again elsewhere it signs nobody in.
    expect((await request(stack.bridgeUrl).get('/webview').query({ token })).status).toBe(401);

    const confirmed = await agent.post('/webview/sign-in').type('form').send({ _csrf: hiddenField(asked.text, '_csrf'), user: 'attacker' });
    expect(confirmed.status).toBe(303);
    expect(confirmed.headers.location).toBe('/webview/orders');
    expect(sessionCookieSet(confirmed)).toBe(true);
    expect(await signedInAs(agent)).toBe('Иван');
    expect((await sessionsOf(stack, ['victim', 'attacker', 'bystander'])).map((s) => s.user_id).sort()).toEqual(['attacker', 'bystander']);
    // A confirmation is used once.
    const again = await agent.post('/webview/sign-in').type('form').send({ _csrf: hiddenField(asked.text, '_csrf'), user: 'attacker' });
    expect(again.status).not.toBe(303);
  });

  it('WEBVIEW_ORDER_LIMIT caps the orders a user creates per window; refused attempts call neither Company 1 nor amoCRM', async () => {
    const agent = await signIn(stack, 'busy-user');
    // Three forms opened while under the limit, sent one after another.
    const forms = [await openForm(agent), await openForm(agent), await openForm(agent)];
    const first = await submit(agent, forms[0]!);
    const second = await submit(agent, forms[1]!);
    expect([first.status, second.status]).toEqual([303, 303]);

    const third = await submit(agent, forms[2]!);
    expect(third.status).toBe(429);
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(500);
    expect(third.text).toContain('<h1>Слишком много заказов</h1>');
    expect(third.text).toContain('Вы оформили 2 заказа за 10 минут.');
    expect(third.text).toMatch(/Новый заказ можно будет оформить через (9|10) минут\./);
    expect((await agent.get('/webview/orders/new')).status).toBe(429);

    // A retry of a form already counted (a double submit, a reload) is not a new order.
    const retried = await submit(agent, forms[1]!);
    expect(retried.status).toBe(303);
    expect(retried.headers.location).toBe(second.headers.location);
    // Another user is not limited by this one.
    const calm = await signIn(stack, 'calm-user');
    expect((await submit(calm, await openForm(calm))).status).toBe(303);

    const orders = partnerOrdersOf(stack, 'busy-user');
    expect(orders).toHaveLength(2);
    const posts = stack.partner.stats.requests.filter((r) => r.method === 'POST' && (r.body as { userId?: string }).userId === 'busy-user');
    expect(new Set(posts.map((p) => p.idempotencyKey)).size).toBe(2);
    for (const order of orders) await waitFor('its deal', () => dealsOfOrder(stack, order.id).length === 1);
    const userDeals = [...stack.amo.state.leads.values()].filter((l) => orders.some((o) => dealsOfOrder(stack, o.id).some((d) => d.id === l.id)));
    expect(userDeals).toHaveLength(2);
    expect(await stack.bridge.db.kysely.selectFrom('webview_orders').select('order_id').where('user_id', '=', 'busy-user').execute()).toHaveLength(2);
  });

  it('WEBVIEW_ORDER_LIMIT holds when a user’s forms arrive at once (other instances, other tabs)', async () => {
    const agent = await signIn(stack, 'racing-user');
    const forms = [];
    for (let i = 0; i < 5; i++) forms.push(await openForm(agent));
    const answers = await Promise.all(forms.map((form) => submit(agent, form)));
    expect(answers.map((a) => a.status).sort()).toEqual([303, 303, 429, 429, 429]);
    expect(partnerOrdersOf(stack, 'racing-user')).toHaveLength(2);
  });

  it('order ids outside [A-Za-z0-9_-]{1,100} never reach Company 1 (`.`, `..`, encoded, too long)', async () => {
    const signin = await request(stack.bridgeUrl).get('/webview').query({ token: await signWebviewToken({ sub: 'dots-user' }) });
    const session = cookiesOf(signin.headers)[0]!;
    const page = await request(stack.bridgeUrl).get('/webview/orders').set('Cookie', session);
    const cookie = [session, ...cookiesOf(page.headers)].join('; ');
    const csrf = hiddenField(page.text, '_csrf');
    stack.partner.stats.reset();
    // What reached Company 1 other than the worker's additionalInfo PATCHes of earlier tests' orders.
    const reads = () =>
      stack.partner.stats.requests.filter((r) => r.method !== 'PATCH' || !/^\/orders\/DM-\d+$/.test(r.path)).map((r) => `${r.method} ${r.path}`);

    const ids = ['.', '..', '%2E', '%2E%2E', '.%2e', 'a%2Fb', 'DM%20001', 'x'.repeat(101)];
    for (const id of ids) {
      const shown = await rawRequest(stack.bridgeUrl, { path: `/webview/orders/${id}`, headers: { cookie } });
      expect(shown.status, id).toBe(404);
      const cancelled = await rawRequest(stack.bridgeUrl, {
        method: 'POST',
        path: `/webview/orders/${id}/cancel`,
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: `_csrf=${encodeURIComponent(csrf)}`,
      });
      expect(cancelled.status, id).toBe(404);
    }
    expect(reads()).toEqual([]);

    // A well-formed id does reach Company 1 (which knows no such order).
    const unknown = await rawRequest(stack.bridgeUrl, { path: '/webview/orders/DM-999999', headers: { cookie } });
    expect(unknown.status).toBe(404);
    expect(reads()).toEqual(['GET /orders/DM-999999']);
  });
});
