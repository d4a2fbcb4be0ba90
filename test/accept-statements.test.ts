import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type Db } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { acceptAmoEvents, type AcceptAmoEventsInput } from '../src/inbox/accept-amo-event.js';
import { amoAcceptStatementsPrepared } from '../src/inbox/accept-amo-statements.js';
import { acceptPartnerEvent, type AcceptResult, createPartnerAcceptor, recordOrder } from '../src/inbox/accept-partner-event.js';
import { acceptStatementsPrepared, PG_ACCEPT_PARTNER_NAME } from '../src/inbox/accept-statements.js';
import type { Order, OrderWebhook } from '../src/partner/schema.js';
import { DATABASES, type DatabaseKind, dropDb, freshDatabaseUrl, freshDb } from './support/databases.js';
import { anOrder } from './support/orders.js';

/**
 * The webhook route's accept path (prepared statements, ./src/inbox/accept-statements.ts)
 * against the query-builder one it replaced (acceptPartnerEvent, still the reference): the
 * same webhooks leave the same rows, and the statements are prepared once, not per webhook.
 */

const T0 = Date.parse('2026-03-01T10:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

function webhook(webhookId: string, order: Order): { webhookId: string; rawBody: string; event: OrderWebhook } {
  const event: OrderWebhook = { type: 'order.updated', timestamp: order.updatedAt, data: order };
  return { webhookId, rawBody: JSON.stringify(event), event };
}

type Step =
  | { webhook: ReturnType<typeof webhook>; now: number }
  | { run: (db: Db) => Promise<void> };

/** Every rule of the accept transaction, in one history: repeats, out-of-order pictures, a running job, a webview order. */
const steps: Step[] = [
  { webhook: webhook('w1', anOrder('on_approval', { id: 'A', updatedAt: at(1) })), now: T0 + 1 },
  { webhook: webhook('w1', anOrder('on_approval', { id: 'A', updatedAt: at(1) })), now: T0 + 2 }, // a repeat
  { webhook: webhook('w2', anOrder('approved', { id: 'A', updatedAt: at(3), cost: 4900 })), now: T0 + 3 }, // newer: replaces, joins the waiting job
  { webhook: webhook('w3', anOrder('on_approval', { id: 'A', updatedAt: at(0) })), now: T0 + 4 }, // older: kept out of the snapshot, in the history
  { webhook: webhook('w3b', anOrder('approved', { id: 'A', updatedAt: at(3), cost: 5000 })), now: T0 + 5 }, // same picture again: first one stays
  { run: (db) => db.kysely.updateTable('jobs').set({ status: 'running', attempts: 1 }).where('job_key', '=', 'order:A').execute().then(() => undefined) },
  { webhook: webhook('w4', anOrder('in_work', { id: 'A', updatedAt: at(5), paid: true })), now: T0 + 6 }, // its job runs: a new one behind it
  { webhook: webhook('w5', anOrder('on_approval', { id: 'B', userId: 'u2', updatedAt: 'not a date' })), now: T0 + 7 }, // updatedAt falls back to now
  { webhook: webhook('w6', anOrder('executed', { id: 'C', cost: 12.5, paid: true, subscriptionStatus: 'active', updatedAt: at(2) })), now: T0 + 8 },
  { run: (db) => db.kysely.transaction().execute((trx) => recordOrder(trx, anOrder('on_approval', { id: 'D', updatedAt: at(4) }), { origin: 'webview' }, T0 + 9)) },
  { webhook: webhook('w7', anOrder('on_approval', { id: 'D', updatedAt: at(4) })), now: T0 + 10 }, // the webview's echo: origin stays
  { webhook: webhook('w8', anOrder('approved', { id: 'D', updatedAt: at(6) })), now: T0 + 11 },
];

/** Plays the steps; the answers, and the tables after each step (a later step must not hide an earlier difference). */
async function play(db: Db, accept: (w: ReturnType<typeof webhook>, now: number) => Promise<AcceptResult>) {
  const results: AcceptResult[] = [];
  const states: Array<Awaited<ReturnType<typeof tables>>> = [];
  for (const step of steps) {
    if ('run' in step) await step.run(db);
    else results.push(await accept(step.webhook, step.now));
    states.push(await tables(db));
  }
  return { results, states };
}

/** The tables the accept writes, every column, in key order. */
async function tables(db: Db) {
  const k = db.kysely;
  return {
    inbox: await k.selectFrom('inbox').selectAll().orderBy('id').execute(),
    orders: await k.selectFrom('orders').selectAll().orderBy('order_id').execute(),
    history: await k.selectFrom('order_history').selectAll().orderBy('order_id').orderBy('partner_updated_at').execute(),
    jobs: await k.selectFrom('jobs').selectAll().orderBy('id').execute(),
  };
}

describe.each(DATABASES)('the partner accept statements on %s', (kind: DatabaseKind) => {
  const opened: Db[] = [];
  afterAll(async () => {
    for (const db of opened) await dropDb(db);
  });
  const fresh = async (title: string, poolSize?: number) => {
    const { url, schema } = await freshDatabaseUrl(kind, title);
    const db = connect(url, { schema, poolSize });
    await migrate(db);
    opened.push(db);
    return db;
  };

  it('leave exactly the rows the query-builder transaction leaves', async () => {
    const reference = await freshDb(kind, `accept-reference-${kind}`);
    opened.push(reference);
    const prepared = await fresh(`accept-prepared-${kind}`);
    const acceptor = createPartnerAcceptor(prepared);

    const expected = await play(reference, (w, now) => acceptPartnerEvent(reference, w, now));
    const actual = await play(prepared, (w, now) => acceptor.accept(w, now));

    expect(actual.results).toEqual(expected.results);
    expect(expected.results.filter((r) => !r.accepted)).toHaveLength(1);
    actual.states.forEach((state, i) => expect(state, `after step ${i + 1}`).toEqual(expected.states[i]));
    const want = expected.states.at(-1)!;
    // The history really exercised every rule: A has four pictures, and two jobs (one behind the running one).
    expect(want.history.filter((h) => h.order_id === 'A').map((h) => h.cost)).toEqual([null, null, 4900, null]);
    expect(want.jobs.filter((j) => j.job_key === 'order:A').map((j) => j.status)).toEqual(['running', 'queued']);
    expect(want.orders.find((o) => o.order_id === 'D')).toMatchObject({ origin: 'webview', partner_status: 'approved' });
  });

  it('take a group in one transaction, leaving the rows of its webhooks taken one by one', async () => {
    const reference = await fresh(`group-reference-${kind}`);
    const grouped = await fresh(`group-grouped-${kind}`);
    const sizes: number[] = [];
    const acceptor = createPartnerAcceptor(grouped, { onCommit: (size) => sizes.push(size) });
    const earlier = [webhook('d-old', anOrder('approved', { id: 'D', updatedAt: at(9) })), webhook('e-old', anOrder('on_approval', { id: 'E', updatedAt: at(1) }))];
    const group = [
      webhook('a1', anOrder('on_approval', { id: 'A', userId: 'ua', updatedAt: at(1) })),
      webhook('b1', anOrder('on_approval', { id: 'B', updatedAt: at(1) })),
      webhook('a1', anOrder('on_approval', { id: 'A', userId: 'ua', updatedAt: at(1) })), // a repeat inside the group
      webhook('a2', anOrder('approved', { id: 'A', userId: 'ua-changed', updatedAt: at(3), cost: 100 })),
      webhook('a0', anOrder('on_approval', { id: 'A', updatedAt: at(0) })), // older: history only
      webhook('a2b', anOrder('approved', { id: 'A', updatedAt: at(3), cost: 200 })), // same updatedAt: snapshot yes, history no
      webhook('d1', anOrder('on_approval', { id: 'D', updatedAt: at(2) })), // older than the stored picture
      webhook('e2', anOrder('approved', { id: 'E', updatedAt: at(2) })), // newer than the stored one
      webhook('e-old', anOrder('on_approval', { id: 'E', updatedAt: at(1) })), // a repeat of one stored earlier
      webhook('c1', anOrder('executed', { id: 'C', cost: 12.5, paid: true, subscriptionStatus: 'it\'s "quoted" {x,y} \\ ok' })),
    ];
    for (const [i, w] of earlier.entries()) {
      await acceptPartnerEvent(reference, w, T0 + i);
      await acceptor.accept(w, T0 + i);
    }
    const expected: AcceptResult[] = [];
    for (const [i, w] of group.entries()) expected.push(await acceptPartnerEvent(reference, w, T0 + 100 + i));
    sizes.length = 0;
    const actual = await Promise.all(group.map((w, i) => acceptor.accept(w, T0 + 100 + i)));

    expect(sizes).toEqual([group.length]);
    expect(actual).toEqual(expected);
    expect(actual.filter((r) => !r.accepted)).toHaveLength(2);
    expect(await tables(grouped)).toEqual(await tables(reference));
  });

  it('are prepared once per connection and reused by every webhook', async () => {
    // One connection, so that PostgreSQL's per-session pg_prepared_statements shows them all.
    const db = await fresh(`accept-cache-${kind}`, 1);
    const acceptor = createPartnerAcceptor(db);
    const before = acceptStatementsPrepared();
    const order = (i: number) => anOrder('on_approval', { id: `P-${i}`, userId: `u-${i}`, updatedAt: at(i) });
    for (let i = 0; i < 20; i++) await acceptor.accept(webhook(`one-${i}`, order(i)));
    // Together, as the route sees them under load: they share transactions, and still the statements.
    await Promise.all(Array.from({ length: 20 }, (_, i) => acceptor.accept(webhook(`many-${i}`, order(100 + i)))));

    const inbox = await db.kysely.selectFrom('inbox').select((e) => e.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    expect(Number(inbox.n)).toBe(40);
    if (kind === 'sqlite') {
      // Four statements for this connection, whatever the number of webhooks.
      expect(acceptStatementsPrepared() - before).toBe(4);
      await acceptor.accept(webhook('one-more', order(999)));
      expect(acceptStatementsPrepared() - before).toBe(4);
    } else {
      const { rows } = await sql<{ name: string; runs: number }>`
        select name, (generic_plans + custom_plans)::int as runs from pg_prepared_statements`.execute(db.kysely);
      // One statement, parsed once on this connection and run for each webhook alone, then for the group of 20.
      expect(rows).toEqual([{ name: PG_ACCEPT_PARTNER_NAME, runs: 21 }]);
    }
  });
});

/** amoCRM's events about one deal, as parseAmoWebhookBody hands them over. */
function amoEvents(dealId: number, statusId: number): AcceptAmoEventsInput {
  const fragment = { id: String(dealId), status_id: String(statusId), pipeline_id: '7000001' };
  const events = [{ dealId, event: 'status' as const, statusId, pipelineId: 7_000_001, fragment }];
  return { events, rawBody: `leads[status][0][id]=${dealId}&leads[status][0][status_id]=${statusId}&account[id]=1`, account: { id: 1 }, gatherMs: 2000 };
}

describe.each(DATABASES)('the amoCRM accept statements on %s', (kind: DatabaseKind) => {
  const opened: Db[] = [];
  afterAll(async () => {
    for (const db of opened) await dropDb(db);
  });
  const fresh = async (title: string, poolSize?: number) => {
    const { url, schema } = await freshDatabaseUrl(kind, title);
    const db = connect(url, { schema, poolSize });
    await migrate(db);
    opened.push(db);
    return db;
  };

  /** Deliveries of every kind: new deals, a linked one, a repeat while its job waits, one after it ran, several deals in one body. */
  async function play(db: Db, accept: (input: AcceptAmoEventsInput, now: number) => Promise<unknown>) {
    await db.kysely.transaction().execute((trx) => recordOrder(trx, anOrder('approved', { id: 'L-1' }), { origin: 'webhook' }, T0));
    await db.kysely.updateTable('orders').set({ deal_id: 502 }).where('order_id', '=', 'L-1').execute();
    const answers: unknown[] = [];
    answers.push(await accept(amoEvents(501, 10), T0 + 1));
    answers.push(await accept(amoEvents(502, 10), T0 + 2));
    answers.push(await accept(amoEvents(501, 10), T0 + 3)); // a repeat: its job still waits
    await db.kysely.updateTable('jobs').set({ attempts: 1, status: 'retrying' }).where('job_key', '=', 'deal:501').execute();
    answers.push(await accept(amoEvents(501, 10), T0 + 4)); // the same words after the job ran: a new job
    const several = [amoEvents(503, 11), amoEvents(502, 12), amoEvents(504, 11)];
    answers.push(await accept({ ...several[0]!, events: several.flatMap((e) => e.events) }, T0 + 5));
    return answers;
  }

  /** The rows, with the random part of each amoCRM inbox key cut off. */
  async function rows(db: Db) {
    const t = await tables(db);
    return { ...t, inbox: t.inbox.map((r) => ({ ...r, dedupe_key: r.dedupe_key.replace(/:[0-9a-f]{8}$/, '') })) };
  }

  it('leave the rows of the query-builder path, and are prepared once per connection', async () => {
    const reference = await fresh(`amo-reference-${kind}`);
    // The same database kind without its driver handle: acceptAmoEvents falls back to kysely.
    const builder: Db = { ...reference, sqlite: undefined, pool: undefined };
    const db = await fresh(`amo-prepared-${kind}`, 1);
    const before = amoAcceptStatementsPrepared();

    const expected = await play(reference, (input, now) => acceptAmoEvents(builder, input, now));
    const actual = await play(db, (input, now) => acceptAmoEvents(db, input, now));

    expect(actual).toEqual(expected);
    expect(expected).toEqual([
      { accepted: 1, duplicates: 0 },
      { accepted: 1, duplicates: 0 },
      { accepted: 0, duplicates: 1 },
      { accepted: 1, duplicates: 0 },
      { accepted: 3, duplicates: 0 },
    ]);
    expect(await rows(db)).toEqual(await rows(reference));
    if (kind === 'sqlite') {
      expect(amoAcceptStatementsPrepared() - before).toBe(7); // the fallback prepared none
    } else {
      const { rows: statements } = await sql<{ name: string; runs: number }>`
        select name, (generic_plans + custom_plans)::int as runs from pg_prepared_statements order by name`.execute(db.kysely);
      // Five deliveries: each reads orders and waiting jobs once; six inbox rows and jobs.
      expect(statements).toEqual([
        { name: 'amobridge_amo_inbox_v1', runs: 6 },
        { name: 'amobridge_amo_job_v1', runs: 6 },
        { name: 'amobridge_amo_orders_v1', runs: 5 },
        { name: 'amobridge_amo_waiting_v1', runs: 5 },
      ]);
    }
  });
});
