import { Webhook } from 'standardwebhooks';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Order } from '../src/partner/schema.js';
import { DEFAULT_PARTNER_WEBHOOK_SECRET } from '../src/sandbox/partner/index.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { testStack } from './support/stack.js';

const signer = new Webhook(DEFAULT_PARTNER_WEBHOOK_SECRET);

function order(id: string): Order {
  const now = new Date().toISOString();
  return {
    id,
    userId: 'user-1',
    serviceId: 'trial-lesson',
    status: 'on_approval',
    cost: null,
    paid: false,
    subscriptionStatus: null,
    customer: { firstName: 'Анна', lastName: 'Иванова', phone: '+79991234567' },
    additionalInfo: null,
    createdAt: now,
    updatedAt: now,
  };
}

function signed(body: string, id = `msg_${Math.random().toString(36).slice(2)}`, at = new Date()) {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signer.sign(id, at, body),
  };
}

describe.each(DATABASES)('POST /webhooks/partner on %s', (kind) => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack(kind, `partner-webhook-${kind}`, { tuning: { worker: false } });
  });
  afterAll(async () => stack.stop());

  const counts = async () => {
    const db = stack.bridge.db.kysely;
    const [inbox, jobs, orders] = await Promise.all([
      db.selectFrom('inbox').select((e) => e.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      db.selectFrom('jobs').select((e) => e.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      db.selectFrom('orders').select((e) => e.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
    ]);
    return { inbox: Number(inbox.n), jobs: Number(jobs.n), orders: Number(orders.n) };
  };

  it('refuses every bad input with its status, as problem+json, and keeps nothing', async () => {
    const body = JSON.stringify({ type: 'order.created', timestamp: new Date().toISOString(), data: order('R-1') });
    const post = () => request(stack.bridge.app).post('/webhooks/partner');

    const cases: Array<[string, () => request.Test, number]> = [
      ['no signature headers', () => post().set('content-type', 'application/json').send(body), 401],
      ['a forged signature', () => post().set({ ...signed(body), 'webhook-signature': 'v1,AAAA' }).send(body), 401],
      ['a body changed after signing', () => post().set(signed(body)).send(body.replace('R-1', 'R-2')), 401],
      ['a timestamp six minutes old', () => post().set(signed(body, 'msg_old', new Date(Date.now() - 6 * 60_000))).send(body), 401],
      ['a signature made with another secret', () => post().set({ ...signed(body), 'webhook-signature': new Webhook('whsec_' + Buffer.from('another secret key!!').toString('base64')).sign('x', new Date(), body) }).send(body), 401],
      ['the wrong content type', () => post().set({ ...signed(body), 'content-type': 'text/plain' }).send(body), 415],
      ['a body over the size limit', () => { const big = JSON.stringify({ pad: 'x'.repeat(300_000) }); return post().set(signed(big)).send(big); }, 413],
      ['signed text that is not JSON', () => post().set(signed('{not json')).send('{not json'), 400],
      ['JSON that is not an order event', () => { const b = JSON.stringify({ type: 'order.created', data: { id: 'R-3' } }); return post().set(signed(b)).send(b); }, 400],
      ['an unknown event type', () => { const b = JSON.stringify({ type: 'order.deleted', timestamp: 'x', data: order('R-4') }); return post().set(signed(b)).send(b); }, 400],
      // JSON can spell U+0000, PostgreSQL text cannot hold it: refused, not retried forever.
      ['a NUL character in the customer\'s name', () => { const o = order('R-6'); const b = JSON.stringify({ type: 'order.created', timestamp: 'x', data: { ...o, customer: { ...o.customer, firstName: 'Ol\u0000ga' } } }); return post().set(signed(b)).send(b); }, 400],
      // An order id is a path segment of Company 1's API: `..` would be `GET /` (issue 11).
      ...['..', '.', 'R 5', 'x'.repeat(101)].map((id): [string, () => request.Test, number] => [`the order id ${JSON.stringify(id.slice(0, 8))}`, () => { const b = JSON.stringify({ type: 'order.created', timestamp: 'x', data: order(id) }); return post().set(signed(b)).send(b); }, 400]),
    ];
    for (const [name, send, status] of cases) {
      const res = await send();
      expect(res.status, name).toBe(status);
      expect(res.headers['content-type'], name).toMatch(/application\/problem\+json/);
      expect(JSON.parse(res.text).status, name).toBe(status);
    }
    expect(await counts()).toEqual({ inbox: 0, jobs: 0, orders: 0 });
  });

  it('accepts a signed event with one inbox row, one order and one job, and absorbs a repeat', async () => {
    const body = JSON.stringify({ type: 'order.created', timestamp: new Date().toISOString(), data: order('A-1') });
    const headers = signed(body, 'msg_a1');
    const first = await request(stack.bridge.app).post('/webhooks/partner').set(headers).send(body);
    expect(first.status).toBe(202);
    const again = await request(stack.bridge.app).post('/webhooks/partner').set(headers).send(body);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ status: 'duplicate' });
    // A second delivery of the same event under a new id joins the waiting job.
    const other = await request(stack.bridge.app).post('/webhooks/partner').set(signed(body, 'msg_a1_bis')).send(body);
    expect(other.status).toBe(202);
    expect(await counts()).toEqual({ inbox: 2, jobs: 1, orders: 1 });
    const row = await stack.bridge.db.kysely.selectFrom('orders').selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ order_id: 'A-1', user_id: 'user-1', origin: 'webhook', partner_status: 'on_approval' });
    expect(JSON.parse(row.snapshot).customer.lastName).toBe('Иванова');
  });
});
