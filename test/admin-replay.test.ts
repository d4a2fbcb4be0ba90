import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/admin/api-keys.js';
import type { Order } from '../src/partner/schema.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { testStack, waitFor } from './support/stack.js';

describe.each(DATABASES)('POST /admin/jobs/replay on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('replays every dead job since a moment (of a kind) in the background and answers how many', async () => {
    stack = await testStack(kind, `admin-replay-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const operator = await createApiKey(db, 'ops', ['jobs:replay']);
    const reader = await createApiKey(db, 'reader', ['jobs:read', 'orders:read', 'contacts:read', 'quota:read', 'orders:write']);
    const app = stack.bridge.app;
    const replay = (body: unknown, key = operator.key) => request(app).post('/admin/jobs/replay').set('authorization', `Bearer ${key}`).send(body as object);

    // Company 1 "loses" an order (404 on the write-back): permanent, so its job goes dead.
    const deadOrder = async (userId: string): Promise<Order> => {
      const order = await stack!.partner.createOrderAsUser({ userId, customer: { firstName: 'R', lastName: 'P', phone: '+79990000009' } }, { send: false });
      stack!.partner.orders.delete(order.id);
      await stack!.partner.sendWebhook('order.created', order);
      await waitFor(`the job of ${order.id} dead`, async () =>
        (await db.selectFrom('jobs').select('id').where('job_key', '=', `order:${order.id}`).where('status', '=', 'dead').executeTakeFirst()) ?? undefined,
      );
      return order;
    };
    const early = await deadOrder('replay-early');
    await new Promise((r) => setTimeout(r, 20));
    const since = new Date().toISOString();
    const late = [await deadOrder('replay-late-1'), await deadOrder('replay-late-2')];

    expect((await replay({ since, kind: 'deal.reconcile' })).body).toEqual({ count: 0 });

    // The cause is fixed for every order; only those dead since `since` are replayed.
    for (const order of [early, ...late]) stack.partner.orders.set(order.id, order);
    const res = await replay({ since, kind: 'order.sync' });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ count: 2 });
    for (const order of late) await waitFor(`order ${order.id} linked`, () => stack!.partner.orders.get(order.id)?.additionalInfo ?? undefined);
    const statusOf = async (order: Order) =>
      (await db.selectFrom('jobs').select('status').where('job_key', '=', `order:${order.id}`).executeTakeFirstOrThrow()).status;
    await waitFor('the replayed jobs done', async () => (await Promise.all(late.map(statusOf))).every((s) => s === 'done'));
    expect(await statusOf(early)).toBe('dead');
    expect((await replay({ since })).body).toEqual({ count: 0 });

    // Without a kind, every kind; an offset other than Z is fine.
    const before = new Date(Date.parse(since) - 60_000);
    const withOffset = `${new Date(before.getTime() + 3 * 3600_000).toISOString().slice(0, 19)}+03:00`;
    expect((await replay({ since: withOffset })).body).toEqual({ count: 1 });
    await waitFor('the early job done', async () => (await statusOf(early)) === 'done');

    for (const bad of [{}, { since: 'yesterday' }, { since: '2026-01-01' }, { since: 123 }, { since, kind: 'no.such.kind' }, { since, extra: 1 }]) {
      const answer = await replay(bad);
      expect(answer.status, JSON.stringify(bad)).toBe(400);
      expect(answer.type).toBe('application/problem+json');
    }
    expect((await replay({ since: 'x' })).body.detail).toMatch(/since must be an ISO 8601 date and time/);
    const malformed = await request(app).post('/admin/jobs/replay').set('authorization', `Bearer ${operator.key}`).set('content-type', 'application/json').send('{"since":');
    expect(malformed.status).toBe(400);
    expect(malformed.type).toBe('application/problem+json');

    expect((await request(app).post('/admin/jobs/replay').send({ since })).status).toBe(401);
    const forbidden = await replay({ since }, reader.key);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.detail).toMatch(/jobs:replay/);
  });
});
