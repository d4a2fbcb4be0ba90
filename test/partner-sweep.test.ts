import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/connect.js';
import { readKv, writeKv } from '../src/db/kv.js';
import { recordOrder } from '../src/inbox/accept-partner-event.js';
import { createTestLogger } from '../src/logger.js';
import { PartnerClient } from '../src/partner/client.js';
import type { Order } from '../src/partner/schema.js';
import { createPartnerSimulator, DEFAULT_PARTNER_API_TOKEN, type PartnerSimulator } from '../src/sandbox/partner/index.js';
import type { Stack } from '../src/sandbox/stack.js';
import {
  ordersToTakeIn,
  PARTNER_SWEEP_FIRST_SPAN_MS,
  PARTNER_SWEEP_OVERLAP_MS,
  partnerSweepHandler,
  partnerSweepOnce,
  type PartnerSweepDeps,
} from '../src/sync/partner-sweep.js';
import { DATABASES, dropDb, freshDb } from './support/databases.js';
import { captureLogs } from './support/logs.js';
import { loadMappingsFile } from '../src/mappings/load.js';
import { PARTNER_SWEEP } from '../src/sync/jobs.js';
import { editedMappings } from './support/mappings.js';
import { restartBridge, testStack, waitFor } from './support/stack.js';

const DETMIR_USER_ID = 932790;
const DETMIR_ORDER_ID = 932792;
const TAG_ID = 499278;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const STATE_KEY = 'partner_sweep.state';
/** A valid secret that is not the one Company 1 signs with: every webhook is refused. */
const WRONG_WEBHOOK_SECRET = `whsec_${Buffer.from('not-the-secret-company-1-signs-with').toString('base64')}`;
/** Where nobody listens: a webhook sent there is lost. */
const NOWHERE = 'http://127.0.0.1:1/webhooks/partner';
const customer = { firstName: 'Мария', lastName: 'Кузнецова', phone: '+79161234567' };

function fieldValue(entity: { custom_fields_values?: Array<{ field_id: number; values: Array<{ value?: unknown }> }> | null }, id: number) {
  return entity.custom_fields_values?.find((f) => f.field_id === id)?.values[0]?.value;
}

/** The order's deal and contact in amoCRM, once its additionalInfo names them. */
function inAmo(stack: Stack, order: Order) {
  const info = stack.partner.orders.get(order.id)?.additionalInfo;
  if (!info) return undefined;
  const deal = stack.amo.state.leads.get(info.externalId);
  const contact = stack.amo.state.contacts.get(info.contactId);
  if (!deal || !contact) return undefined;
  return { info, deal, contact };
}

/** Every job but the sweeps' own finished: the bridge has done all it was given. */
async function settled(db: Db) {
  await waitFor('the queue to drain', async () => {
    const open = await db.kysely.selectFrom('jobs').select('id').where('status', '<>', 'done').where('kind', 'not in', [PARTNER_SWEEP, 'deals.sweep']).execute();
    return open.length === 0;
  });
}

const orderSyncJobs = (db: Db) => db.kysely.selectFrom('jobs').select(['id', 'job_key', 'inbox_id']).where('kind', '=', 'order.sync').orderBy('id').execute();
const inboxKeys = async (db: Db) => (await db.kysely.selectFrom('inbox').select('dedupe_key').orderBy('id').execute()).map((r) => r.dedupe_key);
const sweepQueries = (partner: PartnerSimulator) =>
  partner.stats.requests.filter((r) => r.path === '/orders' && r.query?.includes('updatedSince')).map((r) => new URLSearchParams(r.query));
const partnerClient = (url: string) => new PartnerClient({ baseUrl: url, token: DEFAULT_PARTNER_API_TOKEN });

describe('which listed orders the sweep takes in', () => {
  const order = (id: string, updatedAt: string) => ({ id, updatedAt }) as Order;
  it.each([
    ['unknown', undefined, 'order.created'],
    ['known in an older version', Date.parse('2026-03-01T09:59:59.999Z'), 'order.updated'],
    ['known in the same version', Date.parse('2026-03-01T10:00:00.000Z'), undefined],
    ['known in a newer version (a late read)', Date.parse('2026-03-01T10:00:00.001Z'), undefined],
  ])('an order %s', (_what, known, type) => {
    const listed = order('DM-1', '2026-03-01T10:00:00.000Z');
    const picked = ordersToTakeIn([listed], new Map(known === undefined ? [] : [['DM-1', known]]));
    expect(picked).toEqual(type ? [{ order: listed, type }] : []);
  });

  it('an updatedAt that is not a time counts as news', () => {
    const listed = order('DM-1', 'yesterday');
    expect(ordersToTakeIn([listed], new Map([['DM-1', Date.now()]]))).toEqual([{ order: listed, type: 'order.updated' }]);
  });
});

describe.each(DATABASES)('partner sweep through the bridge on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('an order whose webhook was refused reaches amoCRM within one interval', async () => {
    stack = await testStack(kind, `psweep-refused-${kind}`, { env: { PARTNER_WEBHOOK_SECRET: WRONG_WEBHOOK_SECRET, PARTNER_SWEEP_INTERVAL: '1' } });
    await stack.bridge.ready;
    const order = await stack.partner.createOrderAsUser({ userId: 'u-refused', customer });
    expect(stack.partner.deliveries.map((d) => d.status)).toEqual([401]);

    const { info, deal, contact } = await waitFor('the order to reach amoCRM', () => inAmo(stack!, order), 5_000);
    expect(fieldValue(contact, DETMIR_USER_ID)).toBe('u-refused');
    expect(contact).toMatchObject({ first_name: 'Мария', last_name: 'Кузнецова' });
    expect(fieldValue(deal, DETMIR_ORDER_ID)).toBe(order.id);
    expect(deal.pipeline_id).toBe(stack.amo.pipelineIdByName('Company 2'));
    expect(deal.status_id).toBe(stack.amo.statusIdByName('New lead', 'Company 2'));
    expect(deal._embedded.tags.map((t) => t.id)).toContain(TAG_ID);
    expect(deal._embedded.contacts.map((c) => c.id)).toEqual([contact.id]);
    expect(info).toStrictEqual({ contactId: contact.id, externalId: deal.id, closedByDetmir: false });
    expect(stack.amo.state.leads.size).toBe(1);

    // Taken in as a webhook would have been: an inbox row, whose key says where it came
    // from, and the order.sync job that did the intake.
    await settled(stack.bridge.db);
    const inbox = await stack.bridge.db.kysely.selectFrom('inbox').selectAll().execute();
    expect(inbox.map((r) => [r.source, r.dedupe_key])).toEqual([['partner', `partner-sweep:${order.id}:${order.updatedAt}`]]);
    expect(JSON.parse(inbox[0]!.body)).toMatchObject({ type: 'order.created', data: order });
    const jobs = await stack.bridge.db.kysely.selectFrom('jobs').select(['kind', 'inbox_id', 'status']).where('kind', '=', 'order.sync').execute();
    expect(jobs).toEqual([{ kind: 'order.sync', inbox_id: inbox[0]!.id, status: 'done' }]);
  });

  it('an order known in an older version is taken in again; one known as it is makes no job', async () => {
    stack = await testStack(kind, `psweep-versions-${kind}`);
    await stack.bridge.ready;
    const deps: PartnerSweepDeps = { db: stack.bridge.db, partner: partnerClient(stack.partnerUrl), logger: createTestLogger() };
    const a = await stack.partner.createOrderAsUser({ userId: 'u-a', customer });
    const b = await stack.partner.createOrderAsUser({ userId: 'u-b', customer });
    await waitFor('both linked', () => inAmo(stack!, a) && inAmo(stack!, b));
    await settled(stack.bridge.db);
    const jobsBefore = await orderSyncJobs(stack.bridge.db);
    const inboxBefore = await inboxKeys(stack.bridge.db);

    // Both orders as the bridge knows them, additionalInfo it wrote back included.
    expect(await partnerSweepOnce(deps)).toEqual({ read: 2, taken: 0, pages: 1, more: false });
    expect(await orderSyncJobs(stack.bridge.db)).toEqual(jobsBefore);

    // The user cancels order A in Company 1's app, and that webhook is lost.
    const res = await fetch(`${stack.partnerUrl}/orders/${a.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${DEFAULT_PARTNER_API_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': 'user-cancels' },
      body: JSON.stringify({ status: 'cancelled' }),
    });
    const cancelled = (await res.json()) as Order;
    expect(cancelled.status).toBe('cancelled');

    expect(await partnerSweepOnce(deps)).toMatchObject({ taken: 1, more: false });
    const row = await stack.bridge.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', a.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ partner_status: 'cancelled', partner_updated_at: Date.parse(cancelled.updatedAt) });
    expect(JSON.parse(row.snapshot)).toEqual(cancelled);
    expect(await inboxKeys(stack.bridge.db)).toEqual([...inboxBefore, `partner-sweep:${a.id}:${cancelled.updatedAt}`]);
    const jobsAfter = await orderSyncJobs(stack.bridge.db);
    expect(jobsAfter.slice(jobsBefore.length).map((j) => j.job_key)).toEqual([`order:${a.id}`]);
    await settled(stack.bridge.db);

    // Read again: nothing is news any more.
    expect(await partnerSweepOnce(deps)).toMatchObject({ taken: 0 });
    expect(await orderSyncJobs(stack.bridge.db)).toEqual(jobsAfter);
    expect(stack.amo.state.leads.size).toBe(2);
  });

  it('stage 1: Company 1 closing an order, its webhook lost, is recorded and noted on the deal', async () => {
    let now = Date.now();
    stack = await testStack(kind, `psweep-stage1-${kind}`, {
      mappingsPath: editedMappings((y) => y.replace('integrationStage: 3', 'integrationStage: 1')),
      partner: { autoClose: true, now: () => now },
      env: { PARTNER_SWEEP_INTERVAL: '1' },
    });
    await stack.bridge.ready;
    const order = await stack.partner.createOrderAsUser({ userId: 'u-stage1', customer });
    const { info } = await waitFor('the order to reach amoCRM', () => inAmo(stack!, order));

    stack.partner.setBridgeWebhookUrl(NOWHERE);
    now += 4 * HOUR + 1000;
    await stack.partner.advanceClock(0);
    expect(stack.partner.deliveries.at(-1)).toMatchObject({ type: 'order.updated', orderId: order.id, status: 0 });

    await waitFor(
      'the closure to be recorded',
      async () => {
        const row = await stack!.bridge.db.kysely.selectFrom('orders').select('closed_by_partner').where('order_id', '=', order.id).executeTakeFirst();
        return row?.closed_by_partner === 1;
      },
    );
    const notes = [...stack.amo.state.notes.values()].filter((n) => n.entity_id === info.externalId);
    // The reverse table's note for Company 1's own closure (mappings/default.yaml, orderEvents).
    expect(notes.map((n) => n.params.text)).toEqual([loadMappingsFile('mappings/default.yaml').orderEvents.executedByPartner.note]);
    expect(stack.partner.orders.get(order.id)).toMatchObject({ status: 'executed', additionalInfo: { ...info, closedByDetmir: true } });
    expect(await inboxKeys(stack.bridge.db)).toContain(`partner-sweep:${order.id}:${stack.partner.orders.get(order.id)!.updatedAt}`);
  });

  it('keeps its high-water mark across a restart and reads on from it', async () => {
    stack = await testStack(kind, `psweep-restart-${kind}`, { env: { PARTNER_WEBHOOK_SECRET: WRONG_WEBHOOK_SECRET, PARTNER_SWEEP_INTERVAL: '1' } });
    await stack.bridge.ready;
    const first = await stack.partner.createOrderAsUser({ userId: 'u-before', customer });
    await waitFor('the first order to reach amoCRM', () => inAmo(stack!, first));
    // The mark reaches the order's newest version, the one with the bridge's additionalInfo.
    const newest = Date.parse(stack.partner.orders.get(first.id)!.updatedAt);
    await waitFor('the mark to reach the order', async () => {
      const saved = await readKv(stack!.bridge.db.kysely, STATE_KEY);
      return saved !== undefined && (JSON.parse(saved) as { mark: number }).mark === newest;
    });

    let second: Awaited<ReturnType<typeof stack.partner.createOrderAsUser>> | undefined;
    let readsBefore = 0;
    stack = await restartBridge(stack, {}, {
      whileDown: async () => {
        second = await stack!.partner.createOrderAsUser({ userId: 'u-while-down', customer });
        expect(stack!.partner.deliveries.at(-1)!.status).toBe(0);
        readsBefore = sweepQueries(stack!.partner).length;
      },
    });
    await waitFor('the order made while the bridge was down to reach amoCRM', () => inAmo(stack!, second!));
    const afterRestart = sweepQueries(stack.partner)[readsBefore]!;
    expect(afterRestart.get('updatedSince')).toBe(new Date(newest - PARTNER_SWEEP_OVERLAP_MS).toISOString());
    expect(afterRestart.has('cursor')).toBe(false);
    expect(stack.amo.state.leads.size).toBe(2);
  });
});

describe.each(DATABASES)('partner sweep runs on %s', (kind) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  async function setUp(title: string, options: { now?: () => number } = {}) {
    const db = await freshDb(kind, title);
    const partner = createPartnerSimulator(options);
    const url = await partner.listen();
    cleanups.push(() => dropDb(db), () => partner.close());
    const logs = captureLogs();
    return { db, partner, url, logs, deps: { db, partner: partnerClient(url), logger: logs.logger } satisfies PartnerSweepDeps };
  }

  it('pages with a small limit, stops at its page bound, and the next run resumes where it stopped, at once', async () => {
    const T0 = Date.now() - HOUR;
    let now = T0;
    const { db, partner, deps } = await setUp(`psweep-pages-${kind}`, { now: () => now });
    const orders: Order[] = [];
    for (let i = 0; i < 7; i++) {
      orders.push(await partner.createOrderAsUser({ userId: `u-${i}`, customer }, { send: false }));
      now += 1000;
    }
    const handler = partnerSweepHandler({ ...deps, pageLimit: 3, maxPages: 2, intervalMs: 10 * MINUTE });

    const before = Date.now();
    await handler.run([]);
    expect(await inboxKeys(db)).toEqual(orders.slice(0, 6).map((o) => `partner-sweep:${o.id}:${o.updatedAt}`));
    // A backlog is left: the next run is queued to start at once, not an interval later.
    const next = await db.kysely.selectFrom('jobs').selectAll().where('kind', '=', PARTNER_SWEEP).executeTakeFirstOrThrow();
    expect(next.run_at).toBeLessThanOrEqual(Date.now());
    expect(next.run_at).toBeGreaterThanOrEqual(before);

    expect(await partnerSweepOnce({ ...deps, pageLimit: 3, maxPages: 2 })).toEqual({ read: 1, taken: 1, pages: 1, more: false });
    expect((await orderSyncJobs(db)).map((j) => j.job_key)).toEqual(orders.map((o) => `order:${o.id}`));

    const queries = sweepQueries(partner).map((q) => Object.fromEntries(q));
    const since = new Date(Date.now() - PARTNER_SWEEP_FIRST_SPAN_MS - PARTNER_SWEEP_OVERLAP_MS);
    expect(queries).toHaveLength(3);
    expect(queries.map((q) => q.limit)).toEqual(['3', '3', '3']);
    expect(queries[0]!.cursor).toBeUndefined();
    expect(queries[1]!.cursor).toEqual(expect.any(String));
    expect(queries[2]!.cursor).toEqual(expect.any(String));
    expect(queries[2]!.cursor).not.toBe(queries[1]!.cursor);
    // The first run ever reads a day back (and two minutes for skew).
    expect(new Set(queries.map((q) => q.updatedSince))).toEqual(new Set([queries[0]!.updatedSince]));
    expect(Math.abs(Date.parse(queries[0]!.updatedSince!) - since.getTime())).toBeLessThan(MINUTE);

    // Done: the mark is the newest change, and the next read starts two minutes before it.
    expect(await partnerSweepOnce(deps)).toEqual({ read: 7, taken: 0, pages: 1, more: false });
    expect(sweepQueries(partner).at(-1)!.get('updatedSince')).toBe(new Date(Date.parse(orders[6]!.updatedAt) - PARTNER_SWEEP_OVERLAP_MS).toISOString());
    // With nothing left, the next run is one interval away. (The worker would hold the
    // queued run while it ran; here it is taken off by hand, or the new one joins it.)
    await db.kysely.deleteFrom('jobs').where('kind', '=', PARTNER_SWEEP).execute();
    await partnerSweepHandler({ ...deps, intervalMs: 10 * MINUTE }).run([]);
    const scheduled = await db.kysely.selectFrom('jobs').select('run_at').where('kind', '=', PARTNER_SWEEP).execute();
    expect(scheduled).toHaveLength(1);
    expect(scheduled[0]!.run_at).toBeGreaterThanOrEqual(Date.now() + 9 * MINUTE);
  });

  it('a failure on a later page keeps what the earlier pages took in; the next run goes on from there', async () => {
    const { db, partner, url, deps } = await setUp(`psweep-fail-${kind}`);
    const orders: Order[] = [];
    for (let i = 0; i < 3; i++) orders.push(await partner.createOrderAsUser({ userId: `u-${i}`, customer }, { send: false }));
    let calls = 0;
    const flaky = new PartnerClient({
      baseUrl: url,
      token: DEFAULT_PARTNER_API_TOKEN,
      fetch: (input, init) => (++calls === 2 ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init)),
    });

    await expect(partnerSweepOnce({ ...deps, partner: flaky, pageLimit: 2 })).rejects.toThrow(/fetch failed/);
    expect(await inboxKeys(db)).toEqual(orders.slice(0, 2).map((o) => `partner-sweep:${o.id}:${o.updatedAt}`));
    expect(await partnerSweepOnce({ ...deps, pageLimit: 2 })).toEqual({ read: 1, taken: 1, pages: 1, more: false });
    expect((await orderSyncJobs(db)).map((j) => j.job_key)).toEqual(orders.map((o) => `order:${o.id}`));
  });

  it('starts again from its mark when Company 1 refuses a kept cursor, and says so', async () => {
    const { db, partner, deps, logs } = await setUp(`psweep-cursor-${kind}`);
    const order = await partner.createOrderAsUser({ userId: 'u-1', customer }, { send: false });
    const mark = Date.parse(order.updatedAt) - HOUR;
    await writeKv(db.kysely, STATE_KEY, JSON.stringify({ mark, resume: { since: new Date(mark).toISOString(), cursor: 'expired-cursor' } }));

    expect(await partnerSweepOnce(deps)).toEqual({ read: 1, taken: 1, pages: 1, more: false });
    expect(sweepQueries(partner).map((q) => [q.get('updatedSince'), q.get('cursor')])).toEqual([
      [new Date(mark).toISOString(), 'expired-cursor'],
      [new Date(mark - PARTNER_SWEEP_OVERLAP_MS).toISOString(), null],
    ]);
    expect(logs.events().filter((e) => e.message === 'partner.sweep.cursor_refused')).toHaveLength(1);
    expect(await inboxKeys(db)).toEqual([`partner-sweep:${order.id}:${order.updatedAt}`]);
  });

  it('the first run reaches back to the newest order the bridge knows when that is more than a day old', async () => {
    let now = Date.now() - 3 * 24 * HOUR;
    const { db, partner, deps } = await setUp(`psweep-first-${kind}`, { now: () => now });
    const known = await partner.createOrderAsUser({ userId: 'u-known', customer }, { send: false });
    // Its webhook came through (the bridge has heard nothing since).
    await db.kysely.transaction().execute((trx) => recordOrder(trx, known, { origin: 'webhook' }));
    now += HOUR;
    const lost = await partner.createOrderAsUser({ userId: 'u-lost', customer }, { send: false });
    now = Date.now();

    expect(await partnerSweepOnce(deps)).toEqual({ read: 2, taken: 1, pages: 1, more: false });
    expect(sweepQueries(partner)[0]!.get('updatedSince')).toBe(new Date(Date.parse(known.updatedAt) - PARTNER_SWEEP_OVERLAP_MS).toISOString());
    expect(await inboxKeys(db)).toEqual([`partner-sweep:${lost.id}:${lost.updatedAt}`]);
  });
});
