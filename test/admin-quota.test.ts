import { sql } from 'kysely';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/admin/api-keys.js';
import { MemoryRateLimiter, PostgresRateLimiter, type RateLimiter } from '../src/amo/rate-limiter.js';
import type { Db } from '../src/db/connect.js';
import { PeerCallRecorder, routeTemplate } from '../src/db/peer-calls.js';
import { PEER_CALLS_KEEP_MS, retentionOnce } from '../src/db/retention.js';
import { INBOX_KEY_WINDOW_MS } from '../src/inbox/dedupe-window.js';
import { onBehalfOf } from '../src/lib/call-context.js';
import { createTestLogger } from '../src/logger.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES, dropDb, freshDb } from './support/databases.js';
import { captureLogs } from './support/logs.js';
import { drained, testStack, waitFor } from './support/stack.js';

interface EndpointCalls {
  endpoint: string;
  outcome: string;
  calls: number;
}

const callsOf = (rows: EndpointCalls[], endpoint: string, outcome: string) =>
  rows.filter((r) => r.endpoint === endpoint && r.outcome === outcome).reduce((n, r) => n + r.calls, 0);

describe.each(DATABASES)('GET /admin/quota on %s', (kind) => {
  let stack: (Stack & { databaseUrl: string }) | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('counts every call to amoCRM and Company 1 by endpoint and outcome, the 429s, and the calls per order', async () => {
    // amoCRM lets 2 requests a second through, the bridge allows itself 20: a burst meets 429s.
    stack = await testStack(kind, `admin-quota-${kind}`, { amo: { rateLimitRps: 2 }, rateLimitRps: 20 });
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'ops', ['quota:read']);
    const other = await createApiKey(db, 'support', ['contacts:read', 'jobs:read', 'jobs:replay', 'orders:read', 'orders:write']);
    const app = stack.bridge.app;

    const orders = await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        stack!.partner.createOrderAsUser({ userId: `quota-u${i}`, customer: { firstName: 'Q', lastName: `U${i}`, phone: `+7903555000${i}` } }),
      ),
    );
    for (const order of orders) await waitFor(`order ${order.id} linked`, () => stack!.partner.orders.get(order.id)?.additionalInfo ?? undefined);
    await drained(stack);

    const res = await request(app).get('/admin/quota').set('authorization', `Bearer ${reader.key}`);
    expect(res.status).toBe(200);
    const { amocrm, partner } = res.body;

    // Every request the simulators saw, each counted once, as it ended: amoCRM's 429s too.
    const amoSeen = stack.amo.stats.requests;
    const amo429 = amoSeen.filter((r) => r.status === 429).length;
    expect(amo429).toBeGreaterThan(0);
    expect(amocrm.calls.lastMinute.total).toBe(amoSeen.length);
    expect(amocrm.calls.lastHour.total).toBe(amoSeen.length);
    expect(amocrm.calls.lastDay.total).toBe(amoSeen.length);
    expect(amocrm.rateLimited).toEqual({ lastMinute: amo429, lastHour: amo429, lastDay: amo429 });
    const rows: EndpointCalls[] = amocrm.calls.lastMinute.byEndpoint;
    for (const r of rows) expect(r.endpoint).toMatch(/^(GET|POST|PATCH) \/api\/v4\/[a-z_/{}]+$/);
    expect(callsOf(rows, 'GET /api/v4/contacts', '2xx') + callsOf(rows, 'GET /api/v4/contacts', '429')).toBe(
      amoSeen.filter((r) => r.method === 'GET' && r.path === '/api/v4/contacts').length,
    );
    expect(callsOf(rows, 'POST /api/v4/leads/complex', '2xx')).toBeGreaterThan(0);
    expect(rows.reduce((n, r) => n + (r.outcome === '429' ? r.calls : 0), 0)).toBe(amo429);

    // Company 1: one additionalInfo PATCH per order, by route template, never by id.
    const partnerSeen = stack.partner.stats.requests;
    expect(partner.calls.lastMinute.total).toBe(partnerSeen.length);
    expect(callsOf(partner.calls.lastDay.byEndpoint, 'PATCH /orders/{id}', '2xx')).toBe(orders.length);
    expect(JSON.stringify(partner.calls)).not.toMatch(new RegExp(orders[0]!.id));
    expect(partner.rateLimited).toEqual({ lastMinute: 0, lastHour: 0, lastDay: 0 });

    // Per order over 7 days: each order's own calls (its contact search, its PATCH).
    expect(partner.perOrder).toMatchObject({ days: 7, orders: orders.length, calls: orders.length, average: 1 });
    expect(partner.perOrder.top.map((t: { orderId: string }) => t.orderId).sort()).toEqual(orders.map((o) => o.id).sort());
    expect(amocrm.perOrder.orders).toBe(orders.length);
    expect(amocrm.perOrder.calls + amocrm.perOrder.shared).toBe(amoSeen.length);
    for (const order of orders) {
      const searches = await db.selectFrom('peer_calls').select('id').where('order_id', '=', order.id).where('endpoint', '=', 'GET /api/v4/contacts').execute();
      expect(searches.length).toBeGreaterThanOrEqual(1);
    }
    expect(amocrm.perOrder.top[0].calls).toBeGreaterThanOrEqual(amocrm.perOrder.top.at(-1).calls);

    expect(amocrm.limiterWaitMs).toEqual(expect.any(Number));
    expect(amocrm.limiterWaitMs).toBeGreaterThanOrEqual(0);
    expect(partner.limiterWaitMs).toBeNull();

    const anonymous = await request(app).get('/admin/quota');
    expect(anonymous.status).toBe(401);
    const forbidden = await request(app).get('/admin/quota').set('authorization', `Bearer ${other.key}`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.type).toBe('application/problem+json');
    expect(forbidden.body.detail).toMatch(/quota:read/);
  });
});

describe.each(DATABASES)('peer_calls on %s', (kind) => {
  let db: Db | undefined;
  afterEach(async () => {
    if (db) await dropDb(db);
    db = undefined;
  });

  it('buffers calls in memory, writes them in batches, tags the one order they were made for, and retention drops them after 8 days', async () => {
    db = await freshDb(kind, `peer-calls-${kind}`);
    const recorder = new PeerCallRecorder({ db, logger: createTestLogger(), batchSize: 3, flushMs: 60_000 });
    const call = { peer: 'amocrm' as const, endpoint: 'GET /api/v4/leads/{id}', outcome: '2xx' as const, durationMs: 12.4 };
    recorder.record(call);
    onBehalfOf(['DM-1'], () => recorder.record(call));
    onBehalfOf(['DM-1', 'DM-2'], () => {
      recorder.record(call);
      onBehalfOf(['DM-2'], () => recorder.record({ ...call, outcome: '429' }));
    });
    await Promise.all([0, 1, 2].map(() => Promise.resolve().then(() => recorder.record(call))));
    // Nothing written yet: the call path never waits for the database.
    expect(await db.kysely.selectFrom('peer_calls').select('id').execute()).toEqual([]);
    await recorder.stop();
    const rows = await db.kysely.selectFrom('peer_calls').select(['order_id', 'outcome', 'duration_ms']).orderBy('id').execute();
    expect(rows.map((r) => r.order_id)).toEqual([null, 'DM-1', null, 'DM-2', null, null, null]);
    expect(rows[3]!.outcome).toBe('429');
    expect(rows[0]!.duration_ms).toBe(12);

    const old = Date.now() - PEER_CALLS_KEEP_MS - 1000;
    await db.kysely.updateTable('peer_calls').set({ at: old }).where('order_id', 'is', null).execute();
    const counts = await retentionOnce({ db, retentionMs: 30 * 24 * 3600_000, keyWindowMs: INBOX_KEY_WINDOW_MS, finalStatuses: [], batchSize: 2 });
    expect(counts.peerCallsDeleted).toBe(5);
    expect((await db.kysely.selectFrom('peer_calls').select('order_id').orderBy('id').execute()).map((r) => r.order_id)).toEqual(['DM-1', 'DM-2']);
  });

  it('keeps calls the database refused for the next flush, up to a cap, and says how many went unrecorded', async () => {
    db = await freshDb(kind, `peer-calls-down-${kind}`);
    const logs = captureLogs();
    const recorder = new PeerCallRecorder({ db, logger: logs.logger, maxBuffered: 3, flushMs: 60_000 });
    const call = { peer: 'partner' as const, endpoint: 'PATCH /orders/{id}', outcome: '5xx' as const, durationMs: 3 };
    await sql`alter table peer_calls rename to peer_calls_away`.execute(db.kysely);
    for (let i = 0; i < 5; i++) recorder.record(call);
    await recorder.flush();
    await recorder.flush();
    expect(logs.events().filter((e) => e.message === 'peer_calls.write_failed')).toHaveLength(1);
    await sql`alter table peer_calls_away rename to peer_calls`.execute(db.kysely);
    await recorder.stop();
    expect(await db.kysely.selectFrom('peer_calls').select('id').execute()).toHaveLength(3);
    expect(logs.events().filter((e) => e.message === 'peer_calls.write_recovered')).toEqual([expect.objectContaining({ dropped: 2 })]);
  });

  it("the rate limiter's current wait: 0 with a slot free, up to a window once they are taken, without taking one", async () => {
    db = await freshDb(kind, `limiter-wait-${kind}`);
    const limiter: RateLimiter = kind === 'postgres' ? new PostgresRateLimiter(db, { rps: 2, bucket: 'wait-test' }) : new MemoryRateLimiter({ rps: 2 });
    expect(await limiter.currentWaitMs()).toBe(0);
    expect(await limiter.currentWaitMs()).toBe(0);
    const first = await limiter.acquire();
    expect(await limiter.currentWaitMs()).toBe(0);
    const second = await limiter.acquire();
    first();
    second();
    const wait = await limiter.currentWaitMs();
    expect(wait).toBeGreaterThan(500);
    expect(wait).toBeLessThanOrEqual(1100);
    // A queued acquire adds to what the next one would wait.
    const queued = limiter.acquire();
    await new Promise((r) => setTimeout(r, 20));
    expect(await limiter.currentWaitMs()).toBeGreaterThan(wait);
    (await queued)();
  });

  it('names endpoints by route template, never by id or query', () => {
    expect(routeTemplate('get', '/api/v4/leads/123?with=contacts')).toBe('GET /api/v4/leads/{id}');
    expect(routeTemplate('POST', '/api/v4/leads/123/notes')).toBe('POST /api/v4/leads/{id}/notes');
    expect(routeTemplate('GET', '/api/v4/contacts?query=%2B7903')).toBe('GET /api/v4/contacts');
  });
});
