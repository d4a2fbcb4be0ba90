import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { revokeApiKey } from '../src/admin/api-keys.js';
import { createAdminFormat } from '../src/admin-ui/format.js';
import { adminMessagesFor } from '../src/admin-ui/messages/index.js';
import { queueOverviewOf } from '../src/admin-ui/queue-overview.js';
import { timelineLine } from '../src/admin-ui/timeline.js';
import { adminUiRouter } from '../src/admin-ui/router.js';
import { ADMIN_SESSION_TTL_MS } from '../src/admin-ui/session.js';
import { retentionOnce } from '../src/db/retention.js';
import type { Job } from '../src/db/schema.js';
import type { Stack } from '../src/sandbox/stack.js';
import { syncJobs } from '../src/sync/jobs.js';
import { adminCsrf, adminKey, deadOrderJob, openSignIn, signInAdmin } from './support/admin-ui.js';
import { DATABASES } from './support/databases.js';
import { captureLogs } from './support/logs.js';
import { linkedOrder } from './support/orders.js';
import { testStack, waitFor } from './support/stack.js';

/**
 * The admin page at /admin/ui over real HTTP against the simulators, on both databases:
 * sign-in with an API key, sessions in the database, CSRF on every form, the scopes of
 * the admin API, the overview, and the dead letters with replay.
 */

/** Text of a page without its tags, spaces plain. */
const text = (html: string) => html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim();
const setCookie = (res: { headers: Record<string, unknown> }, name: string) =>
  ([res.headers['set-cookie']].flat() as Array<string | undefined>).find((c) => c?.startsWith(`${name}=`));

describe.each(DATABASES)('admin page on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('signs in with a good key only, into a database session; the key is never echoed or logged', async () => {
    const logs = captureLogs();
    stack = await testStack(kind, `admin-ui-signin-${kind}`, { logger: logs.logger });
    await stack.bridge.ready;
    const { key, id: keyId } = await adminKey(stack, 'ops', ['jobs:read']);
    const agent = request.agent(stack.bridgeUrl);

    // Without a session the page sends to the form.
    const start = await agent.get('/admin/ui');
    expect(start.status).toBe(303);
    expect(start.headers.location).toBe('/admin/ui/sign-in');
    const form = await agent.get('/admin/ui/sign-in');
    expect(form.status).toBe(200);
    expect(form.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(form.headers['cache-control']).toBe('no-store');
    expect(form.text).toMatch(/<html lang="ru">/);
    expect(text(form.text)).toContain('Войдите с API-ключом администратора');
    expect(setCookie(form, 'amobridge_admin_signin')).toMatch(/; Path=\/admin\/ui; .*HttpOnly; SameSite=Strict/);
    const csrf = await openSignIn(agent);

    // A wrong key, a malformed one, an empty one: the form again, with no session and no echo.
    const wrong = `${key.slice(0, -4)}xxxx`;
    for (const [bad, status] of [[wrong, 401], ['not-a-key', 401], ['', 400]] as const) {
      const res = await agent.post('/admin/ui/sign-in').type('form').send({ _csrf: csrf, key: bad });
      expect(res.status).toBe(status);
      expect(setCookie(res, 'amobridge_admin')).toBeUndefined();
      expect(text(res.text)).toContain(status === 400 ? 'Введите API-ключ.' : 'Ключ не подошёл: он неверен, отозван или введён не полностью.');
      if (bad) expect(res.text).not.toContain(bad);
    }

    const signedIn = await agent.post('/admin/ui/sign-in').type('form').send({ _csrf: csrf, key });
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.location).toBe('/admin/ui');
    const cookie = setCookie(signedIn, 'amobridge_admin')!;
    expect(cookie).toMatch(/; Max-Age=28800; Path=\/admin\/ui; .*HttpOnly; SameSite=Strict/);
    expect(cookie).not.toMatch(/Secure/);
    // The database keeps the id's hash, not the id.
    const id = cookie.split(';')[0]!.split('=')[1]!;
    const rows = await stack.bridge.db.kysely.selectFrom('admin_sessions').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ key_id: keyId });
    expect(rows[0]!.id_hash).not.toBe(id);
    expect(rows[0]!.id_hash).toMatch(/^[0-9a-f]{64}$/);

    const overview = await agent.get('/admin/ui');
    expect(overview.status).toBe(200);
    expect(text(overview.text)).toContain('Ключ «ops»');

    // Behind a TLS-terminating proxy on loopback the cookie is Secure, as the webview's.
    const viaProxy = request.agent(stack.bridgeUrl);
    const proxiedCsrf = await openSignIn(viaProxy);
    const secure = await viaProxy.post('/admin/ui/sign-in').set('x-forwarded-proto', 'https').type('form').send({ _csrf: proxiedCsrf, key });
    expect(setCookie(secure, 'amobridge_admin')).toMatch(/; Secure/);
    expect(overview.text).not.toContain(key);

    expect(logs.events().filter((e) => String(e.message).startsWith('admin_ui.signin'))).toEqual([
      expect.objectContaining({ message: 'admin_ui.signin_rejected', level: 'warn' }),
      expect.objectContaining({ message: 'admin_ui.signin_rejected', level: 'warn' }),
      expect.objectContaining({ message: 'admin_ui.signin', keyId }),
      expect.objectContaining({ message: 'admin_ui.signin', keyId }),
    ]);
    const secret = key.slice(`ak_${keyId}_`.length);
    expect(logs.lines.join('\n')).not.toContain(secret);
    expect(logs.lines.join('\n')).not.toContain(id);
  });

  it('refuses a revoked key, and revoking a key ends its open sessions', async () => {
    stack = await testStack(kind, `admin-ui-revoked-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const revoked = await adminKey(stack, 'old', ['jobs:read']);
    await revokeApiKey(db, revoked.id);
    const agent = request.agent(stack.bridgeUrl);
    const csrf = await openSignIn(agent);
    const refused = await agent.post('/admin/ui/sign-in').type('form').send({ _csrf: csrf, key: revoked.key });
    expect(refused.status).toBe(401);
    expect(setCookie(refused, 'amobridge_admin')).toBeUndefined();

    const live = await adminKey(stack, 'ops', ['jobs:read']);
    const session = await signInAdmin(stack.bridgeUrl, live.key);
    expect((await session.get('/admin/ui')).status).toBe(200);
    await revokeApiKey(db, live.id);
    const after = await session.get('/admin/ui');
    expect(after.status).toBe(401);
    expect(text(after.text)).toContain('Сеанс завершён или ключ отозван. Войдите снова.');
    expect(setCookie(after, 'amobridge_admin')).toMatch(/Expires=Thu, 01 Jan 1970/);
  });

  it('shows the overview: queue depth by kind and state, the oldest waiting job, dead letters, the services', async () => {
    stack = await testStack(kind, `admin-ui-overview-${kind}`);
    await stack.bridge.ready;
    const { jobId } = await deadOrderJob(stack, 'overview-user');
    // A job due a minute ago that no worker takes (an unknown kind waits for ever).
    await stack.bridge.db.kysely
      .insertInto('jobs')
      .values({ kind: 'legacy.kind', job_key: 'legacy:1', payload: '{}', status: 'queued', attempts: 0, max_attempts: 5, run_at: Date.now() - 90_000, created_at: Date.now() - 90_000, updated_at: Date.now() - 90_000 })
      .execute();
    const { key } = await adminKey(stack, 'ops', ['jobs:read']);
    const agent = await signInAdmin(stack.bridgeUrl, key);
    const res = await agent.get('/admin/ui');
    expect(res.status).toBe(200);
    const page = text(res.text);
    expect(page).toContain('amoCRM работает');
    expect(page).toContain('Компания 1 работает');
    expect(page).toContain('Таблица этапов сопоставлена с amoCRM');
    expect(page).toContain('1 задание с ошибкой ждёт решения.');
    expect(res.text).toMatch(/<tr data-kind="order\.sync">.*<td class="num bad" data-state="dead" data-label="С ошибкой">1<\/td>/);
    expect(res.text).toMatch(/<tr data-kind="legacy\.kind">.*<td class="num" data-state="waiting" data-label="Ждут">1<\/td>/);
    expect(page).toMatch(/Самое давнее ожидающее задание legacy\.kind · legacy:1 · Задание \d+ · в ожидании: 1 минута/);
    expect(res.text).toContain('href="/admin/ui/dead"');
    expect(jobId).toBeGreaterThan(0);
  });

  it('replays a dead letter from its form: post/redirect/get with a one-time notice', async () => {
    stack = await testStack(kind, `admin-ui-replay-${kind}`);
    await stack.bridge.ready;
    const { order, jobId } = await deadOrderJob(stack, 'replay-user');
    const { key } = await adminKey(stack, 'ops', ['jobs:read', 'jobs:replay']);
    const agent = await signInAdmin(stack.bridgeUrl, key);

    const list = await agent.get('/admin/ui/dead');
    expect(list.status).toBe(200);
    expect(text(list.text)).toContain(`Задание ${jobId}`);
    expect(text(list.text)).toMatch(/Последняя ошибка partner .*404/);
    expect(list.text).toContain(`action="/admin/ui/dead/${jobId}/replay"`);
    const csrf = await adminCsrf(agent, '/admin/ui/dead');

    stack.partner.orders.set(order.id, order);
    const replay = await agent.post(`/admin/ui/dead/${jobId}/replay`).type('form').send({ _csrf: csrf });
    expect(replay.status).toBe(303);
    expect(replay.headers.location).toBe('/admin/ui/dead');
    const after = await agent.get('/admin/ui/dead');
    expect(text(after.text)).toContain(`Задание ${jobId} возвращено в очередь.`);
    // Shown once: a reload does not repeat it.
    expect(text((await agent.get('/admin/ui/dead')).text)).not.toContain('возвращено в очередь');
    await waitFor('the replayed job to link the order', () => stack!.partner.orders.get(order.id)?.additionalInfo ?? undefined);

    // The same form sent again: the job is no longer dead, and the page says so.
    const again = await agent.post(`/admin/ui/dead/${jobId}/replay`).type('form').send({ _csrf: csrf });
    expect(again.status).toBe(303);
    expect(text((await agent.get('/admin/ui/dead')).text)).toContain(`Задание ${jobId} уже не в списке ошибок`);

    // Not a job id: the not-found page.
    const bad = await agent.post('/admin/ui/dead/12abc/replay').type('form').send({ _csrf: csrf });
    expect(bad.status).toBe(404);
    expect(text(bad.text)).toContain('Страница не найдена');
  });

  it('refuses a form without its session’s CSRF token, and the sign-in form without its own', async () => {
    stack = await testStack(kind, `admin-ui-csrf-${kind}`);
    await stack.bridge.ready;
    const { jobId } = await deadOrderJob(stack, 'csrf-user');
    const { key } = await adminKey(stack, 'ops', ['jobs:read', 'jobs:replay']);
    const agent = await signInAdmin(stack.bridgeUrl, key);
    const other = await signInAdmin(stack.bridgeUrl, key);
    const othersToken = await adminCsrf(other);

    for (const body of [{}, { _csrf: '' }, { _csrf: 'forged' }, { _csrf: othersToken }]) {
      const res = await agent.post(`/admin/ui/dead/${jobId}/replay`).type('form').send(body);
      expect(res.status).toBe(403);
      expect(text(res.text)).toContain('Форма устарела');
    }
    const job = await stack.bridge.db.kysely.selectFrom('jobs').select('status').where('id', '=', jobId).executeTakeFirstOrThrow();
    expect(job.status).toBe('dead');
    // Sign-out is a form too.
    expect((await agent.post('/admin/ui/sign-out').type('form').send({ _csrf: 'forged' })).status).toBe(403);
    expect((await agent.get('/admin/ui')).status).toBe(200);

    // The sign-in form: its field must match its cookie (a cross-site form has neither).
    const fresh = request.agent(stack.bridgeUrl);
    const token = await openSignIn(fresh);
    const noField = await fresh.post('/admin/ui/sign-in').type('form').send({ key });
    expect(noField.status).toBe(403);
    expect(setCookie(noField, 'amobridge_admin')).toBeUndefined();
    const noCookie = await request(stack.bridgeUrl).post('/admin/ui/sign-in').type('form').send({ _csrf: token, key });
    expect(noCookie.status).toBe(403);
    expect(setCookie(noCookie, 'amobridge_admin')).toBeUndefined();
  });

  it('checks each page’s and action’s scope as the API does: a 403 page without it', async () => {
    stack = await testStack(kind, `admin-ui-scopes-${kind}`);
    await stack.bridge.ready;
    const { jobId } = await deadOrderJob(stack, 'scope-user');
    const ordersOnly = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'orders', ['orders:read'])).key);
    const dead = await ordersOnly.get('/admin/ui/dead');
    expect(dead.status).toBe(403);
    expect(text(dead.text)).toContain('У ключа, с которым вы вошли, нет права jobs:read.');
    // The overview is open to any key, without the sections its scopes do not cover.
    const overview = await ordersOnly.get('/admin/ui');
    expect(overview.status).toBe(200);
    expect(text(overview.text)).toContain('Этот раздел виден ключу с правом jobs:read.');
    expect(overview.text).not.toContain('href="/admin/ui/dead"');

    const reader = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'reader', ['jobs:read'])).key);
    const list = await reader.get('/admin/ui/dead');
    expect(list.status).toBe(200);
    expect(list.text).not.toContain('/replay"');
    expect(text(list.text)).toContain('Повторять задания может ключ с правом jobs:replay.');
    const readerCsrf = await adminCsrf(reader);
    const replay = await reader.post(`/admin/ui/dead/${jobId}/replay`).type('form').send({ _csrf: readerCsrf });
    expect(replay.status).toBe(403);
    expect(text(replay.text)).toContain('нет права jobs:replay');
    const job = await stack.bridge.db.kysely.selectFrom('jobs').select('status').where('id', '=', jobId).executeTakeFirstOrThrow();
    expect(job.status).toBe('dead');
  });

  it('signs out: the session row goes and its cookie stops working', async () => {
    stack = await testStack(kind, `admin-ui-signout-${kind}`);
    await stack.bridge.ready;
    const agent = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'ops', ['jobs:read'])).key);
    expect((await agent.get('/admin/ui')).status).toBe(200);
    const csrf = await adminCsrf(agent);
    const out = await agent.post('/admin/ui/sign-out').type('form').send({ _csrf: csrf });
    expect(out.status).toBe(200);
    expect(text(out.text)).toContain('Вы вышли.');
    expect(await stack.bridge.db.kysely.selectFrom('admin_sessions').selectAll().execute()).toEqual([]);
    const again = await agent.get('/admin/ui');
    expect(again.status).toBe(303);
    expect(again.headers.location).toBe('/admin/ui/sign-in');
  });

  it('serves a session from any instance on the same database, and retention deletes it once expired', async () => {
    stack = await testStack(kind, `admin-ui-instances-${kind}`);
    await stack.bridge.ready;
    const agent = request.agent(stack.bridgeUrl);
    const csrf = await openSignIn(agent);
    const signedIn = await agent.post('/admin/ui/sign-in').type('form').send({ _csrf: csrf, key: (await adminKey(stack, 'ops', ['jobs:read'])).key });
    const sessionCookie = setCookie(signedIn, 'amobridge_admin')!.split(';')[0]!;

    // Another instance: its own router, nothing shared with the first but the database.
    const other = express().use(
      adminUiRouter({
        db: stack.bridge.db,
        logger: captureLogs().logger,
        onWorkEnqueued: () => undefined,
        locale: 'en',
        timeZone: 'Europe/Moscow',
        jobKinds: syncJobs.kinds,
        health: () => ({ amocrm: { kind: 'unknown' }, partner: { kind: 'unreachable', since: Date.parse('2026-01-05T10:00:00Z'), reason: 'ECONNREFUSED' }, mappingsResolved: false }),
      }),
    );
    const there = await request(other).get('/admin/ui').set('cookie', sessionCookie);
    expect(there.status).toBe(200);
    expect(there.text).toMatch(/<html lang="en">/);
    const page = text(there.text);
    expect(page).toContain('amoCRM not checked yet');
    expect(page).toContain('Company 1 unreachable since 5 January 2026 at 13:00 GMT+3 ECONNREFUSED');
    expect(page).toContain('Stage table not resolved against amoCRM yet');

    const later = Date.now() + ADMIN_SESSION_TTL_MS + 1;
    const counts = await retentionOnce({ db: stack.bridge.db, retentionMs: 86_400_000, keyWindowMs: 86_400_000, finalStatuses: [] }, later);
    expect(counts.adminSessionsDeleted).toBe(1);
    expect((await request(other).get('/admin/ui').set('cookie', sessionCookie)).status).toBe(401);
  });
});

describe('admin page, wherever the storage', () => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('speaks English with ADMIN_LOCALE=en, and answers unknown pages and bad bodies with its own pages', async () => {
    stack = await testStack('sqlite', 'admin-ui-english', { env: { ADMIN_LOCALE: 'en' } });
    await stack.bridge.ready;
    const agent = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'ops', ['jobs:read'])).key);
    const overview = await agent.get('/admin/ui');
    expect(overview.text).toMatch(/<html lang="en">/);
    expect(text(overview.text)).toContain('No dead letters.');
    expect(text(overview.text)).toContain('No job is waiting.');
    const missing = await agent.get('/admin/ui/nothing');
    expect(missing.status).toBe(404);
    expect(missing.type).toBe('text/html');
    expect(text(missing.text)).toContain('Page not found');
    const tooBig = await agent.post('/admin/ui/sign-out').type('form').send({ _csrf: 'x'.repeat(20_000) });
    expect(tooBig.status).toBe(413);
    expect(text(tooBig.text)).toContain('Bad request');
    const css = await request(stack.bridgeUrl).get('/admin/ui/static/admin.css');
    expect(css.status).toBe(200);
    expect(css.type).toBe('text/css');
  });
});

describe('admin page words and numbers', () => {
  const ru = createAdminFormat('ru', 'Europe/Moscow', adminMessagesFor('ru'));
  const en = createAdminFormat('en', 'Europe/Moscow', adminMessagesFor('en'));

  it('says an age in its largest whole unit, with the locale’s plural forms', () => {
    expect([0, 1, 59, 60, 150, 3600, 7300, 86_400, 5 * 86_400].map(ru.age)).toEqual([
      '0 секунд', '1 секунда', '59 секунд', '1 минута', '2 минуты', '1 час', '2 часа', '1 день', '5 дней',
    ]);
    expect([1, 150, 7300].map(en.age)).toEqual(['1 second', '2 minutes', '2 hours']);
  });

  it('counts dead letters in agreement with their number', () => {
    const t = adminMessagesFor('ru');
    expect([0, 1, 2, 5, 21].map(t.overview.deadCount)).toEqual([
      'Заданий с ошибкой нет.',
      '1 задание с ошибкой ждёт решения.',
      '2 задания с ошибкой ждут решения.',
      '5 заданий с ошибкой ждут решения.',
      '21 задание с ошибкой ждёт решения.',
    ]);
    expect([1, 2].map(adminMessagesFor('en').overview.deadCount)).toEqual(['1 job in the dead letter needs a decision.', '2 jobs in the dead letter need a decision.']);
  });

  it('words a service’s health as /readyz states it, the fix or reason apart', () => {
    expect(ru.health({ kind: 'ok' })).toEqual({ text: 'работает', ok: true });
    expect(ru.health({ kind: 'unauthorized', fix: 'run amobridge oauth <code>' })).toEqual({ text: 'отказ в доступе', detail: 'run amobridge oauth <code>', ok: false });
    expect(en.health({ kind: 'unreachable', since: Date.parse('2026-03-05T10:00:00Z'), reason: 'timeout' })).toEqual({
      text: 'unreachable since 5 March 2026 at 13:00 GMT+3',
      detail: 'timeout',
      ok: false,
    });
  });

  it('words a timeline entry: its event and source, a change as before → after, an unknown event by its code', () => {
    const t = adminMessagesFor('ru');
    expect(
      timelineLine({ at: '2026-03-05T10:00:00.000Z', source: 'partner', event: 'order.patched', detail: { call: 'PATCH /orders/DM-1', changes: { status: { before: 'on_approval', after: 'approved' }, cost: { before: null, after: 4900 } } } }, t),
    ).toEqual({
      at: '2026-03-05T10:00:00.000Z',
      event: 'Заказ обновлён в Компании 1',
      code: 'order.patched',
      source: 'Компания 1',
      detail: ['call: PATCH /orders/DM-1', 'status: on_approval → approved', 'cost: — → 4900'],
    });
    expect(timelineLine({ at: '2026-03-05T10:00:00.000Z', source: 'bridge', event: 'something.new', detail: { ids: [1, 2] } }, t)).toMatchObject({
      event: 'something.new',
      source: 'мост',
      detail: ['ids: [1,2]'],
    });
  });

  it('rows the queue depth by kind, totals by state, and ages the oldest waiting job', () => {
    const now = 1_000_000;
    const overview = queueOverviewOf(
      {
        depth: [
          { kind: 'a', state: 'waiting', jobs: 2 },
          { kind: 'a', state: 'dead', jobs: 1 },
          { kind: 'b', state: 'waiting', jobs: 3 },
        ],
        oldestWaitingSeconds: [],
      },
      { id: 7, kind: 'b', job_key: 'k', run_at: now - 90_000 } as Job,
      now,
    );
    expect(overview.rows).toEqual([
      { kind: 'a', counts: { waiting: 2, running: 0, retrying: 0, dead: 1 } },
      { kind: 'b', counts: { waiting: 3, running: 0, retrying: 0, dead: 0 } },
    ]);
    expect(overview.totals).toEqual({ waiting: 5, running: 0, retrying: 0, dead: 1 });
    expect(overview.oldest).toEqual({ id: 7, kind: 'b', key: 'k', ageSeconds: 90 });
  });
});

describe.each(DATABASES)('admin page: orders and quota on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  /** Order rows as intake leaves them: the search's data, without a round trip through the simulators each. */
  const orderRows = (n: number, userId: string, status: string, t0: number) =>
    Array.from({ length: n }, (_, i) => ({
      order_id: `DM-9${String(i).padStart(5, '0')}`,
      user_id: userId,
      service_id: 'trial-lesson',
      contact_id: null,
      deal_id: null,
      partner_status: status,
      snapshot: '{}',
      partner_updated_at: t0 + i,
      note: null,
      origin: 'webhook',
      closed_by_partner: 0,
      info_pushed: 0,
      status_by_bridge: null,
      created_at: t0 + i,
      updated_at: t0 + i,
      pii_purged_at: null,
    }));

  it('searches orders by q and status, a page at a time, and says when a query cannot be read', async () => {
    stack = await testStack(kind, `admin-ui-orders-${kind}`);
    await stack.bridge.ready;
    const t0 = Date.now() - 60_000;
    await stack.bridge.db.kysely.insertInto('orders').values([...orderRows(27, 'many-orders', 'in_work', t0)]).execute();
    await stack.bridge.db.kysely.insertInto('orders').values({ ...orderRows(1, 'other-user', 'cancelled', t0)[0]!, order_id: 'DM-800000' }).execute();
    const agent = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'reader', ['orders:read'])).key);

    const first = await agent.get('/admin/ui/orders').query({ q: 'many-orders', status: '' });
    expect(first.status).toBe(200);
    const ids = (html: string) => [...html.matchAll(/data-order="([^"]+)"/g)].map((m) => m[1]);
    // Newest change first, 25 to a page, then a link to the next.
    expect(ids(first.text)).toHaveLength(25);
    expect(ids(first.text)[0]).toBe('DM-900026');
    const next = /<a href="([^"]+)" rel="next">/.exec(first.text)![1]!.replace(/&amp;/g, '&');
    expect(next).toMatch(/^\/admin\/ui\/orders\?q=many-orders&cursor=/);
    const second = await agent.get(next);
    expect(ids(second.text)).toEqual(['DM-900001', 'DM-900000']);
    expect(second.text).not.toContain('rel="next"');
    expect(text(second.text)).toContain('← К началу');

    const cancelled = await agent.get('/admin/ui/orders').query({ status: 'cancelled' });
    expect(ids(cancelled.text)).toEqual(['DM-800000']);
    expect(text(cancelled.text)).toContain('Отменён');
    expect(cancelled.text).toContain('<option value="cancelled" selected>');
    expect(ids((await agent.get('/admin/ui/orders').query({ q: 'nobody' })).text)).toEqual([]);

    for (const bad of [{ status: 'lost' }, { cursor: 'not-a-cursor' }, { q: 'x'.repeat(201) }]) {
      const res = await agent.get('/admin/ui/orders').query(bad);
      expect(res.status).toBe(400);
      expect(text(res.text)).toContain('Такой запрос не разобрать');
    }
    // Without orders:read, the 403 page.
    const jobsOnly = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'jobs', ['jobs:read'])).key);
    expect((await jobsOnly.get('/admin/ui/orders')).status).toBe(403);
    expect((await jobsOnly.get('/admin/ui/orders/DM-800000')).status).toBe(403);
  });

  it('pauses and resumes an order from its page (orders:write, CSRF), which then catches up', async () => {
    stack = await testStack(kind, `admin-ui-pause-${kind}`);
    await stack.bridge.ready;
    const { order } = await linkedOrder(stack, 'pause-user');
    const writer = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'writer', ['orders:read', 'orders:write'])).key);
    const page = await writer.get(`/admin/ui/orders/${order.id}`);
    expect(page.status).toBe(200);
    expect(text(page.text)).toContain(`Заказ ${order.id}`);
    expect(page.text).toContain(`action="/admin/ui/orders/${order.id}/pause"`);
    const csrf = await adminCsrf(writer, `/admin/ui/orders/${order.id}`);

    expect((await writer.post(`/admin/ui/orders/${order.id}/pause`).type('form').send({ _csrf: 'forged' })).status).toBe(403);
    const paused = await writer.post(`/admin/ui/orders/${order.id}/pause`).type('form').send({ _csrf: csrf });
    expect(paused.status).toBe(303);
    expect(paused.headers.location).toBe(`/admin/ui/orders/${order.id}`);
    const after = await writer.get(`/admin/ui/orders/${order.id}`);
    expect(text(after.text)).toContain(`Заказ ${order.id} поставлен на паузу.`);
    expect(text(after.text)).toContain('Заказ на паузе: мост не пишет о нём');
    expect(after.text).toContain(`action="/admin/ui/orders/${order.id}/resume"`);
    expect(after.text).toContain('data-event="order.paused"');
    // The timeline of GET /admin/orders/:id, in words: the webhook, the deal created, the pause.
    expect(text(after.text)).toMatch(/Пришёл вебхук · Компания 1 .*Создана сделка · amoCRM .*Заказ поставлен на паузу · администратор/);
    const row = await stack.bridge.db.kysely.selectFrom('orders').select('paused_at').where('order_id', '=', order.id).executeTakeFirstOrThrow();
    expect(row.paused_at).not.toBeNull();

    // A reader sees the page, not the button, and may not post it.
    const reader = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'reader', ['orders:read'])).key);
    const readerView = await reader.get(`/admin/ui/orders/${order.id}`);
    expect(readerView.text).not.toContain('/resume"');
    expect(text(readerView.text)).toContain('Ставить на паузу может ключ с правом orders:write.');
    const readerCsrf = await adminCsrf(reader);
    const refused = await reader.post(`/admin/ui/orders/${order.id}/resume`).type('form').send({ _csrf: readerCsrf });
    expect(refused.status).toBe(403);
    expect(text(refused.text)).toContain('нет права orders:write');

    const resumed = await writer.post(`/admin/ui/orders/${order.id}/resume`).type('form').send({ _csrf: csrf });
    expect(resumed.status).toBe(303);
    const back = await writer.get(`/admin/ui/orders/${order.id}`);
    expect(text(back.text)).toContain(`Заказ ${order.id} снят с паузы`);
    expect(back.text).toContain(`action="/admin/ui/orders/${order.id}/pause"`);
    await waitFor('the catch-up jobs to finish', async () =>
      (await stack!.bridge.db.kysely.selectFrom('jobs').select('status').where('job_key', '=', `order:${order.id}`).execute()).every((j) => j.status === 'done'),
    );

    // The whole user, from the order's page: back to it with a notice, and its button turns.
    const userPaused = await writer.post('/admin/ui/users/pause-user/pause').type('form').send({ _csrf: csrf, order: order.id });
    expect(userPaused.status).toBe(303);
    expect(userPaused.headers.location).toBe(`/admin/ui/orders/${order.id}`);
    const userPage = await writer.get(`/admin/ui/orders/${order.id}`);
    expect(text(userPage.text)).toContain('Пользователь pause-user поставлен на паузу: все его заказы, и новые тоже.');
    expect(text(userPage.text)).toContain('На паузе все заказы этого пользователя, и новые тоже.');
    expect(userPage.text).toContain('action="/admin/ui/users/pause-user/resume"');
    expect(await stack.bridge.db.kysely.selectFrom('paused_users').select('user_id').execute()).toEqual([{ user_id: 'pause-user' }]);
    // Without an order to go back to: the user's orders, with the notice.
    const userResumed = await writer.post('/admin/ui/users/pause-user/resume').type('form').send({ _csrf: csrf });
    expect(userResumed.headers.location).toBe('/admin/ui/orders?q=pause-user');
    expect(text((await writer.get(userResumed.headers.location!)).text)).toContain('Пользователь pause-user снят с паузы');
    expect(await stack.bridge.db.kysely.selectFrom('paused_users').select('user_id').execute()).toEqual([]);
    expect((await reader.post('/admin/ui/users/pause-user/pause').type('form').send({ _csrf: readerCsrf })).status).toBe(403);
    expect((await writer.post(`/admin/ui/users/${'u'.repeat(101)}/pause`).type('form').send({ _csrf: csrf })).status).toBe(404);

    // An unknown order, a malformed id.
    expect((await writer.get('/admin/ui/orders/DM-404404')).status).toBe(404);
    expect((await writer.get('/admin/ui/orders/a%20b')).status).toBe(404);
    expect((await writer.post('/admin/ui/orders/DM-404404/pause').type('form').send({ _csrf: csrf })).status).toBe(404);
  });

  it('shows today’s calls to amoCRM and Company 1 on the overview to a key with quota:read', async () => {
    stack = await testStack(kind, `admin-ui-quota-${kind}`);
    await stack.bridge.ready;
    await linkedOrder(stack, 'quota-user');
    const agent = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'quota', ['quota:read'])).key);
    const overview = await agent.get('/admin/ui');
    expect(overview.status).toBe(200);
    const day = (peer: string) => Number(new RegExp(`<tr data-peer="${peer}">.*?data-window="day">([\\d\\s]+)<`, 's').exec(overview.text)![1]!.replace(/\s/g, ''));
    expect(day('amocrm')).toBeGreaterThan(0);
    expect(day('partner')).toBeGreaterThan(0);
    expect(text(overview.text)).toContain('Обращения к сервисам');
    expect(text(overview.text)).toContain('лимита нет');
    const without = await signInAdmin(stack.bridgeUrl, (await adminKey(stack, 'jobs', ['jobs:read'])).key);
    expect(text((await without.get('/admin/ui')).text)).toContain('Этот раздел виден ключу с правом quota:read.');
  });
});
