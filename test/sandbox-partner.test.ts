import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { orderStatusSchema, orderWebhookSchema, type Order, type OrderStatus } from '../src/partner/schema.js';
import {
  createPartnerSimulator,
  DEFAULT_PARTNER_API_TOKEN,
  DEFAULT_PARTNER_WEBHOOK_SECRET,
  type PartnerSimulator,
  type PartnerSimulatorOptions,
} from '../src/sandbox/partner/index.js';

const HOUR = 60 * 60 * 1000;
const customer = { firstName: 'Анна', lastName: 'Иванова-Щукина', phone: '+79001234567' };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function startSim(options: PartnerSimulatorOptions = {}): Promise<{ sim: PartnerSimulator; api: Api }> {
  const sim = createPartnerSimulator(options);
  const baseUrl = await sim.listen();
  cleanups.push(() => sim.close());
  return { sim, api: makeApi(baseUrl) };
}

type Api = (
  method: string,
  path: string,
  options?: { body?: unknown; key?: string; token?: string | null; rawBody?: string },
) => Promise<{ status: number; json: ApiAnswer; headers: Headers }>;

/** Every field any answer of the API may carry; each test reads the ones its answer has. */
type ApiAnswer = Partial<Order> & {
  items?: Order[];
  nextCursor?: string | null;
  error?: string;
  currentStatus?: OrderStatus;
  details?: Array<{ path: string; message: string }>;
};

function makeApi(baseUrl: string): Api {
  return async (method, path, options = {}) => {
    const headers: Record<string, string> = {};
    const token = options.token === undefined ? DEFAULT_PARTNER_API_TOKEN : options.token;
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (options.key) headers['idempotency-key'] = options.key;
    let body: string | undefined = options.rawBody;
    if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(baseUrl + path, { method, headers, body });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : {}) as ApiAnswer, headers: res.headers };
  };
}

interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
}

/** A stand-in for the bridge's webhook endpoint: records raw bodies for verification. */
async function startReceiver(answer = 204): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = answer;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/partner`, received };
}

function verify(r: Received, secret = DEFAULT_PARTNER_WEBHOOK_SECRET) {
  const headers = {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  };
  return orderWebhookSchema.parse(new Webhook(secret).verify(r.raw, headers));
}

const newOrder = { userId: 'u-1', serviceId: 'trial-lesson', customer };

describe('partner simulator: API basics', () => {
  it('requires the bearer token', async () => {
    const { api } = await startSim();
    expect((await api('GET', '/orders?userId=u', { token: null })).status).toBe(401);
    const wrong = await api('GET', '/orders?userId=u', { token: 'nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('answers 404 in JSON for unknown orders and routes', async () => {
    const { api } = await startSim();
    const order = await api('GET', '/orders/DM-404');
    expect(order.status).toBe(404);
    expect(order.json.error).toMatch(/DM-404/);
    expect((await api('PATCH', '/orders/DM-404', { key: 'k', body: { paid: true } })).status).toBe(404);
    expect((await api('GET', '/nowhere')).status).toBe(404);
  });

  it('lists orders by user and requires userId', async () => {
    const { sim, api } = await startSim();
    await sim.createOrderAsUser({ userId: 'u-1', customer }, { send: false });
    await sim.createOrderAsUser({ userId: 'u-2', customer }, { send: false });
    await sim.createOrderAsUser({ userId: 'u-1', customer }, { send: false });
    const list = await api('GET', '/orders?userId=u-1');
    expect(list.status).toBe(200);
    expect(list.json.items!.map((o) => o.userId)).toEqual(['u-1', 'u-1']);
    expect((await api('GET', '/orders')).status).toBe(400);
  });
});

describe('partner simulator: GET /orders?updatedSince (the orders changed since a time)', () => {
  const T0 = Date.parse('2026-03-01T10:00:00.000Z');
  const changed = (since: number, query = '') => `/orders?updatedSince=${new Date(since).toISOString()}${query}`;
  /** Reads every page from `since`, with the given limit, and answers the pages' ids. */
  async function allPages(api: Api, since: number, limit: number): Promise<string[][]> {
    const pages: string[][] = [];
    let cursor: string | null | undefined;
    do {
      const res = await api('GET', changed(since, `&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`));
      expect(res.status).toBe(200);
      pages.push(res.json.items!.map((o) => o.id));
      cursor = res.json.nextCursor;
    } while (cursor);
    return pages;
  }

  it('lists the orders changed at or after the time, oldest change first, and ends with nextCursor null', async () => {
    let now = T0;
    const { sim, api } = await startSim({ now: () => now });
    const a = await sim.createOrderAsUser({ userId: 'u-1', customer }, { send: false });
    now += 1000;
    const b = await sim.createOrderAsUser({ userId: 'u-2', customer }, { send: false });
    now += 1000;
    const c = await sim.createOrderAsUser({ userId: 'u-3', customer }, { send: false });
    now += 1000;
    // The oldest order changes last, so it comes last.
    const approved = await api('PATCH', `/orders/${a.id}`, { key: 'approve', body: { status: 'approved' } });

    const all = await api('GET', changed(T0));
    expect(all.status).toBe(200);
    expect(all.json.items!.map((o) => [o.id, o.status])).toEqual([
      [b.id, 'on_approval'],
      [c.id, 'on_approval'],
      [a.id, 'approved'],
    ]);
    expect(all.json.items![2]).toEqual(approved.json);
    expect(all.json.nextCursor).toBeNull();
    // At or after: an order changed exactly at updatedSince is in.
    expect((await api('GET', changed(T0 + 2000))).json.items!.map((o) => o.id)).toEqual([c.id, a.id]);
    expect((await api('GET', changed(T0 + 3001))).json).toEqual({ items: [], nextCursor: null });
    // Any ISO 8601 time zone means the same instant.
    expect((await api('GET', `/orders?updatedSince=${encodeURIComponent('2026-03-01T13:00:02+03:00')}`)).json.items!.map((o) => o.id)).toEqual([c.id, a.id]);
  });

  it('pages with limit and an opaque cursor; orders changed in the same millisecond follow their ids', async () => {
    const { sim, api } = await startSim({ now: () => T0 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await sim.createOrderAsUser({ userId: `u-${i}`, customer }, { send: false })).id);
    expect(await allPages(api, T0, 2)).toEqual([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
    // A full last page says there is no more, rather than sending the client for an empty one.
    expect(await allPages(api, T0, 5)).toEqual([ids]);
  });

  it('misses no order that changes between pages: it moves behind the cursor and comes again', async () => {
    let now = T0;
    const { sim, api } = await startSim({ now: () => now });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await sim.createOrderAsUser({ userId: `u-${i}`, customer }, { send: false })).id);
      now += 1000;
    }
    const [a, b, c, d, e] = ids as [string, string, string, string, string];
    const first = await api('GET', changed(T0, '&limit=2'));
    expect(first.json.items!.map((o) => o.id)).toEqual([a, b]);
    // Between pages, one order already read and one not yet read both change.
    await api('PATCH', `/orders/${c}`, { key: 'c', body: { status: 'cancelled' } });
    now += 1000;
    await api('PATCH', `/orders/${a}`, { key: 'a', body: { status: 'approved' } });
    const rest: Order[] = [];
    let cursor = first.json.nextCursor;
    while (cursor) {
      const page = await api('GET', changed(T0, `&limit=2&cursor=${cursor}`));
      rest.push(...page.json.items!);
      cursor = page.json.nextCursor;
    }
    expect(rest.map((o) => [o.id, o.status])).toEqual([
      [d, 'on_approval'],
      [e, 'on_approval'],
      [c, 'cancelled'],
      [a, 'approved'],
    ]);
  });

  it('answers at most 100 orders a page, and 100 when no limit is given', async () => {
    const { sim, api } = await startSim({ now: () => T0 });
    for (let i = 0; i < 101; i++) await sim.createOrderAsUser({ userId: `u-${i}`, customer }, { send: false });
    const first = await api('GET', changed(T0));
    expect(first.json.items).toHaveLength(100);
    expect(first.json.nextCursor).toEqual(expect.any(String));
    const second = await api('GET', changed(T0, `&limit=100&cursor=${first.json.nextCursor}`));
    expect(second.json.items).toHaveLength(1);
    expect(second.json.nextCursor).toBeNull();
  });

  it.each([
    ['no updatedSince', '/orders?limit=10', /updatedSince must be an ISO 8601 date-time/],
    ['a date without a time', '/orders?updatedSince=2026-03-01', /updatedSince must be an ISO 8601 date-time/],
    ['a time without a zone', '/orders?updatedSince=2026-03-01T10:00:00', /updatedSince must be an ISO 8601 date-time/],
    ['words', '/orders?updatedSince=yesterday', /updatedSince must be an ISO 8601 date-time/],
    ['limit 0', '/orders?updatedSince=2026-03-01T10:00:00Z&limit=0', /limit must be a whole number from 1 to 100/],
    ['limit 101', '/orders?updatedSince=2026-03-01T10:00:00Z&limit=101', /limit must be a whole number from 1 to 100/],
    ['limit 2.5', '/orders?updatedSince=2026-03-01T10:00:00Z&limit=2.5', /limit must be a whole number from 1 to 100/],
    ['limit abc', '/orders?updatedSince=2026-03-01T10:00:00Z&limit=abc', /limit must be a whole number from 1 to 100/],
    ['a forged cursor', '/orders?updatedSince=2026-03-01T10:00:00Z&cursor=not-a-cursor', /cursor is not one this API issued/],
    ['a cursor of the wrong shape', `/orders?updatedSince=2026-03-01T10:00:00Z&cursor=${Buffer.from('{"id":1}').toString('base64url')}`, /cursor is not one this API issued/],
    ['an empty cursor', '/orders?updatedSince=2026-03-01T10:00:00Z&cursor=', /cursor must not be empty/],
    ['userId as well', '/orders?updatedSince=2026-03-01T10:00:00Z&userId=u-1', /userId/],
  ])('refuses %s with 400 and a clear error', async (_what, path, error) => {
    const { sim, api } = await startSim({ now: () => T0 });
    await sim.createOrderAsUser({ userId: 'u-1', customer }, { send: false });
    const res = await api('GET', path);
    expect(res.status).toBe(400);
    expect(res.json.error).toMatch(error);
    expect(res.json.items).toBeUndefined();
  });

  it('requires the bearer token', async () => {
    const { api } = await startSim();
    expect((await api('GET', changed(T0), { token: null })).status).toBe(401);
  });
});

describe('partner simulator: POST /orders', () => {
  it('requires Idempotency-Key', async () => {
    const { sim, api } = await startSim();
    const res = await api('POST', '/orders', { body: newOrder });
    expect(res.status).toBe(400);
    expect(sim.orders.size).toBe(0);
  });

  it('creates an order in on_approval, and a replay returns the same order', async () => {
    const { sim, api } = await startSim();
    const first = await api('POST', '/orders', { key: 'create-1', body: newOrder });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({
      status: 'on_approval',
      cost: null,
      paid: false,
      subscriptionStatus: null,
      additionalInfo: null,
      customer,
    });
    // Same request, keys in another order: still the same request.
    const replay = await api('POST', '/orders', {
      key: 'create-1',
      body: { customer, serviceId: 'trial-lesson', userId: 'u-1' },
    });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json.id).toBe(first.json.id);
    expect(sim.orders.size).toBe(1);

    const reused = await api('POST', '/orders', { key: 'create-1', body: { ...newOrder, userId: 'u-2' } });
    expect(reused.status).toBe(422);
    expect(sim.orders.size).toBe(1);
  });

  it('rejects an invalid body with details and remembers nothing', async () => {
    const { sim, api } = await startSim();
    const bad = await api('POST', '/orders', { key: 'k', body: { userId: 'u-1', customer: { firstName: '' } } });
    expect(bad.status).toBe(400);
    expect(bad.json.details!.map((d) => d.path)).toEqual(
      expect.arrayContaining(['serviceId', 'customer.firstName', 'customer.phone']),
    );
    expect((await api('POST', '/orders', { key: 'k', rawBody: '{"userId":' })).status).toBe(400);
    expect(sim.orders.size).toBe(0);
  });

  it('stores additionalInfo given at creation (stage 3 webview orders)', async () => {
    const { api } = await startSim();
    const additionalInfo = { contactId: 11, externalId: 22, closedByDetmir: false };
    const res = await api('POST', '/orders', { key: 'k', body: { ...newOrder, comment: 'звонить после 18:00', additionalInfo } });
    expect(res.status).toBe(201);
    expect(res.json.additionalInfo).toEqual(additionalInfo);
    expect(res.json).not.toHaveProperty('comment');
  });
});

describe('partner simulator: PATCH /orders/:id and the status machine', () => {
  const allowed: Record<OrderStatus, OrderStatus[]> = {
    on_approval: ['approved', 'rejected', 'cancelled'],
    approved: ['in_work', 'rejected', 'cancelled'],
    in_work: ['executed', 'rejected'],
    executed: [],
    rejected: [],
    cancelled: [],
  };
  const statuses = orderStatusSchema.options;

  it('allows exactly the contract transitions; others get 409 {error, currentStatus}', async () => {
    const { sim, api } = await startSim();
    for (const from of statuses) {
      for (const to of statuses) {
        if (from === to) continue;
        const order = await sim.createOrderAsUser({ userId: 'u', customer }, { send: false });
        sim.orders.set(order.id, { ...order, status: from });
        const res = await api('PATCH', `/orders/${order.id}`, { key: `${from}->${to}`, body: { status: to } });
        if (allowed[from].includes(to)) {
          expect(res.status, `${from} -> ${to}`).toBe(200);
          expect(res.json.status).toBe(to);
        } else {
          expect(res.status, `${from} -> ${to}`).toBe(409);
          expect(res.json).toEqual({ error: expect.any(String), currentStatus: from });
          expect(sim.orders.get(order.id)!.status).toBe(from);
        }
      }
    }
  });

  it('walks the happy path, bumping updatedAt on every change only', async () => {
    const { sim, api } = await startSim();
    const order = await sim.createOrderAsUser({ userId: 'u', customer }, { send: false });
    let last = order.updatedAt;
    const steps = [{ status: 'approved' }, { status: 'in_work' }, { cost: 4990 }, { paid: true }, { subscriptionStatus: 'активна' }, { status: 'executed' }];
    for (const [i, patch] of steps.entries()) {
      const res = await api('PATCH', `/orders/${order.id}`, { key: `step-${i}`, body: patch });
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject(patch);
      const updatedAt = res.json.updatedAt!;
      expect(updatedAt > last).toBe(true);
      last = updatedAt;
    }
    // Same status again is no transition and no change: 200, updatedAt unchanged.
    const same = await api('PATCH', `/orders/${order.id}`, { key: 'same', body: { status: 'executed' } });
    expect(same.status).toBe(200);
    expect(same.json.updatedAt).toBe(last);
    // Final orders still accept additionalInfo (the bridge writes it back after auto-close).
    const info = { contactId: 1, externalId: 2, closedByDetmir: true };
    const written = await api('PATCH', `/orders/${order.id}`, { key: 'info', body: { additionalInfo: info } });
    expect(written.status).toBe(200);
    expect(written.json.additionalInfo).toEqual(info);
  });

  it('refuses the whole patch when the transition is forbidden', async () => {
    const { sim, api } = await startSim();
    const order = await sim.createOrderAsUser({ userId: 'u', customer }, { send: false });
    const res = await api('PATCH', `/orders/${order.id}`, { key: 'k', body: { status: 'executed', paid: true } });
    expect(res.status).toBe(409);
    expect(res.json.currentStatus).toBe('on_approval');
    expect(sim.orders.get(order.id)).toEqual(order);
  });

  it('replays a PATCH key without applying it twice', async () => {
    const { sim, api } = await startSim();
    const order = await sim.createOrderAsUser({ userId: 'u', customer }, { send: false });
    const first = await api('PATCH', `/orders/${order.id}`, { key: 'cost-1', body: { cost: 100 } });
    await api('PATCH', `/orders/${order.id}`, { key: 'cost-2', body: { cost: 200 } });
    const replay = await api('PATCH', `/orders/${order.id}`, { key: 'cost-1', body: { cost: 100 } });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json).toEqual(first.json); // the remembered answer
    expect(sim.orders.get(order.id)!.cost).toBe(200); // not applied again

    expect((await api('PATCH', `/orders/${order.id}`, { key: 'cost-1', body: { cost: 300 } })).status).toBe(422);
    const other = await sim.createOrderAsUser({ userId: 'u', customer }, { send: false });
    expect((await api('PATCH', `/orders/${other.id}`, { key: 'cost-1', body: { cost: 100 } })).status).toBe(422);
  });

  it('does not remember refusals: a key retried after the order moved on succeeds', async () => {
    const { sim, api } = await startSim();
    const order = await sim.createOrderAsUser({ userId: 'u', customer }, { send: false });
    expect((await api('PATCH', `/orders/${order.id}`, { key: 'to-work', body: { status: 'in_work' } })).status).toBe(409);
    expect((await api('PATCH', `/orders/${order.id}`, { key: 'approve', body: { status: 'approved' } })).status).toBe(200);
    expect((await api('PATCH', `/orders/${order.id}`, { key: 'to-work', body: { status: 'in_work' } })).status).toBe(200);
  });

  it('requires Idempotency-Key and a valid body', async () => {
    const { sim, api } = await startSim();
    const order = await sim.createOrderAsUser({ userId: 'u', customer }, { send: false });
    expect((await api('PATCH', `/orders/${order.id}`, { body: { paid: true } })).status).toBe(400);
    const bad = await api('PATCH', `/orders/${order.id}`, { key: 'k', body: { status: 'done', colour: 'red' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toBe('invalid request body');
    expect(bad.json.details!.length).toBeGreaterThan(0);
    const partialInfo = await api('PATCH', `/orders/${order.id}`, { key: 'k2', body: { additionalInfo: { contactId: 1 } } });
    expect(partialInfo.status).toBe(400);
    expect(sim.orders.get(order.id)).toEqual(order);
  });
});

describe('partner simulator: webhooks and auto-close', () => {
  it('sends a signed order.created that verifies, with Cyrillic intact', async () => {
    const receiver = await startReceiver();
    const { sim, api } = await startSim({ bridgeWebhookUrl: receiver.url });
    const order = await sim.createOrderAsUser({ userId: 'u-77', customer: { ...customer, email: 'anna@пример.рф' } });
    expect(receiver.received).toHaveLength(1);
    const event = verify(receiver.received[0]);
    expect(event.type).toBe('order.created');
    expect(event.data).toEqual(order);
    expect(event.data.customer.lastName).toBe('Иванова-Щукина');
    expect(receiver.received[0].headers['webhook-id']).toMatch(/^msg_/);
    expect(sim.deliveries).toEqual([{ webhookId: receiver.received[0].headers['webhook-id'], type: 'order.created', orderId: order.id, status: 204 }]);
    expect((await api('GET', `/orders/${order.id}`)).json.customer?.firstName).toBe('Анна');
  });

  it('auto-closes orders older than 4 h as executed with closedByDetmir, and says so', async () => {
    const receiver = await startReceiver();
    const t0 = Date.now(); // pinned, so real milliseconds passing do not count towards the 4 h
    const { sim } = await startSim({ bridgeWebhookUrl: receiver.url, now: () => t0 });
    const plain = await sim.createOrderAsUser({ userId: 'u-1', customer });
    const linked = await sim.createOrderAsUser({ userId: 'u-2', customer });
    sim.orders.set(linked.id, { ...linked, additionalInfo: { contactId: 501, externalId: 9001, closedByDetmir: false } });
    const done = await sim.createOrderAsUser({ userId: 'u-3', customer }, { send: false });
    sim.orders.set(done.id, { ...done, status: 'cancelled' });
    receiver.received.length = 0;

    await sim.advanceClock(4 * HOUR - 1);
    expect(receiver.received).toHaveLength(0);
    expect(sim.orders.get(plain.id)!.status).toBe('on_approval');

    await sim.advanceClock(1);
    expect(sim.orders.get(plain.id)).toMatchObject({ status: 'executed', additionalInfo: { contactId: 0, externalId: 0, closedByDetmir: true } });
    expect(sim.orders.get(linked.id)!.additionalInfo).toEqual({ contactId: 501, externalId: 9001, closedByDetmir: true });
    expect(sim.orders.get(done.id)!.status).toBe('cancelled');
    expect(Date.parse(sim.orders.get(plain.id)!.updatedAt)).toBeGreaterThanOrEqual(Date.parse(plain.createdAt) + 4 * HOUR);

    const events = receiver.received.map((r) => verify(r));
    expect(events.map((e) => [e.type, e.data.id])).toEqual([
      ['order.updated', plain.id],
      ['order.updated', linked.id],
    ]);
    expect(events[0].data.status).toBe('executed');
    // The body's timestamp is simulated time; the signature time is the wall clock.
    expect(Date.parse(events[0].timestamp)).toBeGreaterThan(Date.now() + 3 * HOUR);

    await sim.advanceClock(HOUR); // already closed: nothing more
    expect(receiver.received).toHaveLength(2);
  });

  it('does not auto-close when turned off (stage 2)', async () => {
    const receiver = await startReceiver();
    const { sim } = await startSim({ bridgeWebhookUrl: receiver.url, autoClose: false });
    const order = await sim.createOrderAsUser({ userId: 'u', customer });
    await sim.advanceClock(5 * HOUR);
    expect(sim.orders.get(order.id)!.status).toBe('on_approval');
    sim.setAutoClose(true);
    await sim.advanceClock(0);
    expect(sim.orders.get(order.id)!.status).toBe('executed');
  });

  it('honours a custom clock and autoCloseAfterMs', async () => {
    let t = Date.parse('2025-03-01T10:00:00Z');
    const { sim } = await startSim({ now: () => t, autoCloseAfterMs: 1000 });
    const order = await sim.createOrderAsUser({ userId: 'u', customer }, { send: false });
    expect(order.createdAt).toBe('2025-03-01T10:00:00.000Z');
    t += 1000;
    await sim.advanceClock(0);
    expect(sim.orders.get(order.id)!.status).toBe('executed');
    expect(sim.deliveries.at(-1)).toMatchObject({ type: 'order.updated', status: 0 }); // no URL set
  });

  it('replays and forges deliveries for the bridge to refuse', async () => {
    const receiver = await startReceiver();
    const { sim } = await startSim();
    const order = await sim.createOrderAsUser({ userId: 'u', customer }, { send: false });
    expect(await sim.sendWebhook('order.created', order)).toEqual({ status: 0, body: 'no bridge webhook URL configured' });
    sim.setBridgeWebhookUrl(receiver.url);

    expect((await sim.sendWebhook('order.created', order, { webhookId: 'msg_fixed' })).status).toBe(204);
    expect((await sim.sendWebhook('order.created', order, { webhookId: 'msg_fixed' })).status).toBe(204);
    expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual(['msg_fixed', 'msg_fixed']);
    expect(verify(receiver.received[1]).data.id).toBe(order.id);

    await sim.sendWebhook('order.created', order, { secret: 'whsec_' + Buffer.from('some other secret').toString('base64') });
    expect(() => verify(receiver.received[2])).toThrow(/signature/i);

    await sim.sendWebhook('order.created', order, { timestamp: new Date(Date.now() - 10 * 60 * 1000) });
    expect(() => verify(receiver.received[3])).toThrow(/too old/i);
    expect(sim.deliveries).toHaveLength(5);
  });

  it('records the bridge answer and survives an unreachable bridge', async () => {
    const receiver = await startReceiver(500);
    const { sim } = await startSim({ bridgeWebhookUrl: receiver.url });
    await sim.createOrderAsUser({ userId: 'u', customer });
    sim.setBridgeWebhookUrl('http://127.0.0.1:1/webhooks/partner');
    await sim.createOrderAsUser({ userId: 'u', customer });
    expect(sim.deliveries.map((d) => d.status)).toEqual([500, 0]);
  });

  it('echoes API changes as webhooks only when asked to', async () => {
    const receiver = await startReceiver();
    const { sim, api } = await startSim({ bridgeWebhookUrl: receiver.url, notifyApiChanges: true });
    const created = await api('POST', '/orders', { key: 'k', body: newOrder });
    await api('PATCH', `/orders/${created.json.id!}`, { key: 'p', body: { status: 'approved' } });
    await expect.poll(() => receiver.received.length).toBe(2);
    expect(receiver.received.map((r) => verify(r).type)).toEqual(['order.created', 'order.updated']);
    expect(sim.deliveries).toHaveLength(2);
  });
});

describe('partner simulator: faults and stats', () => {
  it('injects outage, errors, latency and records requests', async () => {
    const { sim, api } = await startSim();
    sim.faults.outage = true;
    const down = await api('POST', '/orders', { key: 'k', body: newOrder });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    sim.faults.outage = false;

    sim.faults.errorRate = 1;
    expect((await api('POST', '/orders', { key: 'k', body: newOrder })).status).toBe(500);
    sim.faults.errorRate = 0;
    expect(sim.orders.size).toBe(0); // faults strike before anything is applied

    sim.faults.latencyMs = 50;
    const started = Date.now();
    expect((await api('POST', '/orders', { key: 'k', body: newOrder })).status).toBe(201);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);

    expect(sim.stats.count({ method: 'POST', pathPrefix: '/orders' })).toBe(3);
    expect(sim.stats.requests.map((r) => r.status)).toEqual([503, 500, 201]);
    expect(sim.stats.requests[2]).toMatchObject({ method: 'POST', path: '/orders', idempotencyKey: 'k', body: newOrder });
    sim.stats.reset();
    expect(sim.stats.count()).toBe(0);
  });

  it('hangs requests until the client gives up, and close() still returns', async () => {
    const sim = createPartnerSimulator();
    const baseUrl = await sim.listen();
    sim.faults.hang = true;
    await expect(
      fetch(`${baseUrl}/orders?userId=u`, {
        headers: { authorization: `Bearer ${DEFAULT_PARTNER_API_TOKEN}` },
        signal: AbortSignal.timeout(200),
      }),
    ).rejects.toThrow();
    const pending = fetch(`${baseUrl}/orders?userId=u`).catch(() => 'dropped');
    await expect.poll(() => sim.stats.count() >= 1).toBe(true);
    await sim.close();
    expect(await pending).toBe('dropped');
    expect(sim.stats.requests[0].status).toBe(0);
  });
});
