import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../src/admin/api-keys.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { testStack, waitFor } from './support/stack.js';

describe.each(DATABASES)('admin API on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('shows a dead job with its error and replays it to success once the cause is fixed', async () => {
    stack = await testStack(kind, `admin-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'ops-reader', ['jobs:read', 'orders:read']);
    const operator = await createApiKey(db, 'ops', ['jobs:read', 'jobs:replay', 'orders:read']);
    const app = stack.bridge.app;

    // Company 1 answers 404 for an order it "lost": permanent, so the job goes dead.
    const order = await stack.partner.createOrderAsUser({ userId: 'admin-u', customer: { firstName: 'A', lastName: 'B', phone: '+79990000001' } }, { send: false });
    stack.partner.orders.delete(order.id);
    await stack.partner.sendWebhook('order.created', order);
    await waitFor('a dead job', async () => (await db.selectFrom('jobs').select('id').where('status', '=', 'dead').execute()).length > 0);

    expect((await request(app).get('/admin/jobs')).status).toBe(401);
    expect((await request(app).get('/admin/jobs').set('authorization', 'Bearer ak_000000000000_wrongwrongwrongwrongwrongwrongwrong')).status).toBe(401);
    const dead = await request(app).get('/admin/jobs?status=dead').set('authorization', `Bearer ${reader.key}`);
    expect(dead.status).toBe(200);
    expect(dead.body.items).toHaveLength(1);
    expect(dead.body.items[0]).toMatchObject({ kind: 'order.sync', key: `order:${order.id}`, status: 'dead' });
    expect(dead.body.items[0].lastError).toMatch(/404/);

    const jobId = dead.body.items[0].id;
    const forbidden = await request(app).post(`/admin/jobs/${jobId}/replay`).set('authorization', `Bearer ${reader.key}`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.detail).toMatch(/jobs:replay/);

    stack.partner.orders.set(order.id, order);
    const replay = await request(app).post(`/admin/jobs/${jobId}/replay`).set('authorization', `Bearer ${operator.key}`);
    expect(replay.status).toBe(202);
    await waitFor('the replayed job to link the order', () => stack!.partner.orders.get(order.id)?.additionalInfo ?? undefined);
    expect(stack.amo.state.leads.size).toBe(1);

    await waitFor('the replayed job to finish', async () => (await db.selectFrom('jobs').select('status').execute()).every((j) => j.status === 'done'));
    const view = await request(app).get(`/admin/orders/${order.id}`).set('authorization', `Bearer ${reader.key}`);
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ orderId: order.id, userId: 'admin-u', dealId: [...stack.amo.state.leads.keys()][0] });
    expect(view.body.jobs.map((j: { status: string }) => j.status)).toEqual(['done']);
    expect((await request(app).get('/admin/orders/a%20b').set('authorization', `Bearer ${reader.key}`)).status).toBe(400);

    expect((await request(app).post(`/admin/jobs/${jobId}/replay`).set('authorization', `Bearer ${operator.key}`)).status).toBe(404);
    await revokeApiKey(db, operator.id);
    expect((await request(app).get('/admin/jobs').set('authorization', `Bearer ${operator.key}`)).status).toBe(401);
  });

  it('lists the jobs waiting for a retry, with the error that failed them', async () => {
    // A retry waits a minute, so the job is still retrying when it is listed.
    stack = await testStack(kind, `admin-retrying-${kind}`, { tuning: { backoff: { baseMs: 60_000, maxMs: 60_000 } } });
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'ops-reader', ['jobs:read']);
    stack.partner.faults.outage = true;
    const order = await stack.partner.createOrderAsUser({ userId: 'admin-retry', customer: { firstName: 'A', lastName: 'B', phone: '+79990000002' } });
    await waitFor('a retrying job', async () => (await db.selectFrom('jobs').select('id').where('status', '=', 'retrying').execute()).length > 0);

    const res = await request(stack.bridge.app).get('/admin/jobs?status=retrying').set('authorization', `Bearer ${reader.key}`);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(1);
    expect(res.body.items[0]).toMatchObject({ kind: 'order.sync', key: `order:${order.id}`, status: 'retrying', attempts: 1 });
    expect(res.body.items[0].lastError).toMatch(/^partner PATCH \/orders\/\S+ answered 503/);
    expect(Date.parse(res.body.items[0].runAt)).toBeGreaterThan(Date.now() + 20_000);

    const bad = await request(stack.bridge.app).get('/admin/jobs?status=stuck').set('authorization', `Bearer ${reader.key}`);
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/queued.*running.*retrying.*dead/);
  });
});
