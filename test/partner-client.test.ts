import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpError, isRetryable, TransportError } from '../src/lib/http-error.js';
import { InvalidOrderIdError, parseConflict, PartnerClient, PartnerResponseError } from '../src/partner/client.js';
import type { CreateOrderRequest } from '../src/partner/schema.js';
import { createPartnerSimulator, DEFAULT_PARTNER_API_TOKEN, type PartnerSimulator } from '../src/sandbox/partner/index.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(token = DEFAULT_PARTNER_API_TOKEN, timeoutMs?: number): Promise<{ sim: PartnerSimulator; client: PartnerClient; baseUrl: string }> {
  const sim = createPartnerSimulator();
  const baseUrl = await sim.listen();
  cleanups.push(() => sim.close());
  return { sim, baseUrl, client: new PartnerClient({ baseUrl, token, ...(timeoutMs ? { timeoutMs } : {}) }) };
}

/** Rejects the promise's error as an instance of `type`, for further assertions. */
async function caught<E extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as E;
  }
  throw new Error(`expected a ${type.name}`);
}

const request: CreateOrderRequest = {
  userId: 'u-42',
  serviceId: 'trial-lesson',
  customer: { firstName: 'Пётр', lastName: 'Ёлкин', phone: '+7 (900) 000-00-00', email: 'пётр@почта.рф' },
  comment: 'Хочу на пробное занятие',
};

describe('PartnerClient against the simulator', () => {
  it('never sends an order id that is not one: `..` would be GET /, `.` GET /orders/', async () => {
    const { sim, client } = await setup();
    for (const id of ['..', '.', '', 'a/b', 'x'.repeat(101)]) {
      expect(isRetryable(await caught(client.getOrder(id), InvalidOrderIdError)), id).toBe(false);
      await caught(client.patchOrder(id, { status: 'cancelled' }, 'k'), InvalidOrderIdError);
    }
    expect(sim.stats.requests).toEqual([]);
  });

  it('creates, reads, lists and patches orders, Cyrillic intact', async () => {
    const { sim, client } = await setup();
    const created = await client.createOrder(request, 'create-u-42-1');
    expect(created).toMatchObject({ status: 'on_approval', userId: 'u-42', customer: request.customer });

    expect(await client.getOrder(created.id)).toEqual(created);
    expect(await client.listOrders('u-42')).toEqual([created]);
    expect(await client.listOrders('nobody')).toEqual([]);

    const approved = await client.patchOrder(created.id, { status: 'approved', additionalInfo: { contactId: 7, externalId: 8, closedByDetmir: false } }, 'approve-1');
    expect(approved).toMatchObject({ status: 'approved', additionalInfo: { contactId: 7, externalId: 8, closedByDetmir: false } });
    expect(sim.orders.get(created.id)!.customer.lastName).toBe('Ёлкин');

    // What went over the wire: bearer auth, the keys, JSON bodies.
    expect(sim.stats.requests.map((r) => [r.method, r.path, r.status, r.idempotencyKey])).toEqual([
      ['POST', '/orders', 201, 'create-u-42-1'],
      ['GET', `/orders/${created.id}`, 200, undefined],
      ['GET', '/orders', 200, undefined],
      ['GET', '/orders', 200, undefined],
      ['PATCH', `/orders/${created.id}`, 200, 'approve-1'],
    ]);
    expect(sim.stats.requests[0].body).toEqual(request);
  });

  it('gets the same order back when a create is retried with its key', async () => {
    const { sim, client } = await setup();
    const first = await client.createOrder(request, 'k');
    const again = await client.createOrder(request, 'k');
    expect(again.id).toBe(first.id);
    expect(sim.orders.size).toBe(1);
  });

  it('reads the orders changed since a time, page by page with the cursor', async () => {
    let now = Date.parse('2026-03-01T10:00:00Z');
    const sim = createPartnerSimulator({ now: () => now });
    const client = new PartnerClient({ baseUrl: await sim.listen(), token: DEFAULT_PARTNER_API_TOKEN });
    cleanups.push(() => sim.close());
    const before = await sim.createOrderAsUser({ userId: 'u-0', customer: request.customer }, { send: false });
    now += 60_000;
    const since = new Date(now);
    const created = [];
    for (let i = 1; i <= 3; i++) created.push(await sim.createOrderAsUser({ userId: `u-${i}`, customer: request.customer }, { send: false }));

    const first = await client.listOrdersChangedSince({ since, limit: 2 });
    expect(first.items).toEqual(created.slice(0, 2));
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await client.listOrdersChangedSince({ since, limit: 2, cursor: first.nextCursor! });
    expect(second).toEqual({ items: created.slice(2), nextCursor: null });
    expect((await client.listOrdersChangedSince({ since: new Date(0) })).items.map((o) => o.id)).toEqual([before.id, ...created.map((o) => o.id)]);
    expect(sim.stats.requests.map((r) => r.query)).toEqual([
      `updatedSince=${encodeURIComponent(since.toISOString())}&limit=2`,
      `updatedSince=${encodeURIComponent(since.toISOString())}&limit=2&cursor=${first.nextCursor}`,
      `updatedSince=${encodeURIComponent('1970-01-01T00:00:00.000Z')}&limit=100`,
    ]);
  });

  it('refuses a limit the contract does not allow before sending anything', async () => {
    const { sim, client } = await setup();
    await expect(client.listOrdersChangedSince({ since: new Date(), limit: 101 })).rejects.toThrow(/limit must be a whole number from 1 to 100/);
    expect(sim.stats.requests).toEqual([]);
  });

  it('sends an Idempotency-Key with non-ASCII characters as its digest, the same each time', async () => {
    const { sim, client } = await setup();
    const created = await client.createOrder(request, 'create-u-42-2');
    const key = `reconcile:${created.id}:{"subscriptionStatus":"Активен"}`;
    await client.patchOrder(created.id, { subscriptionStatus: 'Активен' }, key);
    await client.patchOrder(created.id, { subscriptionStatus: 'Активен' }, key);
    const sent = sim.stats.requests.filter((r) => r.method === 'PATCH').map((r) => r.idempotencyKey);
    expect(sent).toEqual([expect.stringMatching(/^sha256:[0-9a-f]{64}$/), sent[0]]);
    expect(sim.orders.get(created.id)!.subscriptionStatus).toBe('Активен');
  });

  it('puts an id with every kind of character an order id may have into the path', async () => {
    const { sim, client } = await setup();
    const order = await sim.createOrderAsUser({ userId: 'u', customer: request.customer }, { send: false });
    sim.orders.delete(order.id);
    sim.orders.set('Dm_09-z', { ...order, id: 'Dm_09-z' });
    expect((await client.getOrder('Dm_09-z')).id).toBe('Dm_09-z');
    expect(sim.stats.requests.map((r) => r.path)).toEqual(['/orders/Dm_09-z']);
  });
});

describe('PartnerClient error classification', () => {
  it('404 is a permanent HttpError with the raw body', async () => {
    const { client } = await setup();
    const error = await caught(client.getOrder('DM-missing'), HttpError);
    expect(error).toMatchObject({ service: 'partner', method: 'GET', path: '/orders/DM-missing', status: 404 });
    expect(JSON.parse(error.body)).toEqual({ error: 'order DM-missing not found' });
    expect(error.retryable).toBe(false);
    expect(parseConflict(error)).toBeUndefined();
  });

  it('409 carries the conflict for parseConflict', async () => {
    const { sim, client } = await setup();
    const order = await sim.createOrderAsUser({ userId: 'u', customer: request.customer }, { send: false });
    const error = await caught(client.patchOrder(order.id, { status: 'executed' }, 'k'), HttpError);
    expect(error.status).toBe(409);
    expect(parseConflict(error)).toEqual({ error: expect.stringMatching(/on_approval/), currentStatus: 'on_approval' });
  });

  it('parseConflict ignores a 409 whose body is not the contract', () => {
    expect(parseConflict(new HttpError('partner', 'PATCH', '/orders/1', 409, '<html>busy</html>'))).toBeUndefined();
    expect(parseConflict(new HttpError('partner', 'PATCH', '/orders/1', 409, '{"error":"x","currentStatus":"nope"}'))).toBeUndefined();
  });

  it('401 for a wrong token', async () => {
    const { client } = await setup('wrong-token');
    const error = await caught(client.listOrders('u'), HttpError);
    expect(error.status).toBe(401);
    expect(isRetryable(error)).toBe(false);
  });

  it('400 from the server keeps its details', async () => {
    const { client } = await setup();
    const bad = { ...request, customer: { ...request.customer, phone: '' } };
    const error = await caught(client.createOrder(bad, 'k'), HttpError);
    expect(error.status).toBe(400);
    expect(error.body).toContain('customer.phone');
  });

  it('503 is retryable and passes Retry-After on', async () => {
    const { sim, client } = await setup();
    sim.faults.outage = true;
    const error = await caught(client.getOrder('x'), HttpError);
    expect(error).toMatchObject({ status: 503, retryAfterMs: 1000, retryable: true });
  });

  it('a server that accepts and never answers is a TransportError after timeoutMs', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const client = new PartnerClient({ baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, token: 't', timeoutMs: 150 });
    const started = Date.now();
    const error = await caught(client.patchOrder('1', { paid: true }, 'k'), TransportError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(error).toMatchObject({ service: 'partner', method: 'PATCH', path: '/orders/1', retryable: true });
    expect(error.reason).toMatch(/150 ms/);
  });

  it('the hang fault times out too', async () => {
    const { sim, client } = await setup(DEFAULT_PARTNER_API_TOKEN, 100);
    sim.faults.hang = true;
    const error = await caught(client.getOrder('1'), TransportError);
    expect(error.reason).toMatch(/100 ms/);
  });

  it('a refused connection is a TransportError with the cause', async () => {
    const client = new PartnerClient({ baseUrl: 'http://127.0.0.1:1', token: 't', timeoutMs: 2000 });
    const error = await caught(client.getOrder('1'), TransportError);
    expect(error.reason).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('a 2xx that breaks the contract is a permanent PartnerResponseError', async () => {
    const fake: typeof fetch = async () => new Response(JSON.stringify({ id: 1 }), { status: 200 });
    const client = new PartnerClient({ baseUrl: 'http://partner.test', token: 't', fetch: fake });
    const error = await caught(client.getOrder('1'), PartnerResponseError);
    expect(error.message).toMatch(/id/);
    expect(isRetryable(error)).toBe(false);

    const noCursor: typeof fetch = async () => new Response(JSON.stringify({ items: [] }), { status: 200 });
    const page = await caught(new PartnerClient({ baseUrl: 'http://partner.test', token: 't', fetch: noCursor }).listOrdersChangedSince({ since: new Date() }), PartnerResponseError);
    expect(page.message).toMatch(/nextCursor/);

    const notJson: typeof fetch = async () => new Response('<html>ok</html>', { status: 200 });
    await caught(new PartnerClient({ baseUrl: 'http://partner.test', token: 't', fetch: notJson }).getOrder('1'), PartnerResponseError);
  });

  it('keeps a path prefix of the base URL and sends the expected headers', async () => {
    const seen: Array<{ url: string; headers: Headers; body: unknown }> = [];
    const fake: typeof fetch = async (input, init) => {
      seen.push({ url: String(input), headers: new Headers(init?.headers), body: init?.body });
      return new Response(JSON.stringify({ items: [] }), { status: 200 });
    };
    for (const baseUrl of ['https://partner.test/api/v1', 'https://partner.test/api/v1/']) {
      await new PartnerClient({ baseUrl, token: 'secret', fetch: fake }).listOrders('u 1&x');
    }
    expect(seen.map((s) => s.url)).toEqual([
      'https://partner.test/api/v1/orders?userId=u+1%26x',
      'https://partner.test/api/v1/orders?userId=u+1%26x',
    ]);
    expect(seen[0].headers.get('authorization')).toBe('Bearer secret');
    expect(seen[0].headers.get('content-type')).toBeNull();
  });

  it('refuses an empty idempotency key', async () => {
    const client = new PartnerClient({ baseUrl: 'http://partner.test', token: 't', fetch: async () => new Response('{}') });
    await expect(client.patchOrder('1', { paid: true }, '')).rejects.toThrow(TypeError);
  });
});

