import type SQLite from 'better-sqlite3';
import type pg from 'pg';
import type { Order } from '../partner/schema.js';
import { DEFAULT_MAX_ATTEMPTS } from '../queue/enqueue.js';
import { ORDER_SYNC } from '../sync/jobs.js';
import { updatedAtOf } from '../sync/order-history.js';

/**
 * The partner webhook's accept transaction as fixed SQL, prepared once per connection and
 * reused. Built through kysely, every webhook paid for building and compiling four
 * statements and, on SQLite, for preparing each anew (kysely's SQLite driver caches no
 * statement): most of the bridge's CPU per webhook (docs/benchmarks.md, the ingest profile).
 *
 * The statements do exactly what takeInPartnerOrder does for a webhook (the kysely version,
 * still used by the sweep and, through recordOrder, the webview; test/accept-statements.test.ts
 * holds the two to the same rows): the inbox row under its dedupe key (a repeat changes
 * nothing), the order's snapshot replaced only by a newer one, one history point per
 * updatedAt, and the `order.sync` job, joined to the waiting one of its key if any.
 */

export interface PartnerAcceptInput {
  dedupeKey: string;
  rawBody: string;
  order: Order;
  now: number;
}

export type PartnerAcceptResult = { accepted: true; inboxId: number } | { accepted: false; reason: 'duplicate' };

/** The values the statements bind, by name on SQLite (each takes the ones it names) and by position on PostgreSQL. */
function bindings(input: PartnerAcceptInput) {
  const { order, now } = input;
  return {
    dedupe_key: input.dedupeKey,
    now,
    body: input.rawBody,
    order_id: order.id,
    user_id: order.userId,
    service_id: order.serviceId,
    status: order.status,
    snapshot: JSON.stringify(order),
    partner_updated_at: updatedAtOf(order, now),
    cost: order.cost,
    paid: order.paid ? 1 : 0,
    subscription_status: order.subscriptionStatus,
    kind: ORDER_SYNC,
    job_key: `order:${order.id}`,
    payload: JSON.stringify({ orderId: order.id }),
    max_attempts: DEFAULT_MAX_ATTEMPTS,
  };
}

// One text per table, shared by both databases where the syntax allows (SQLite ≥ 3.35 and
// PostgreSQL agree on ON CONFLICT … RETURNING). The jobs conflict target repeats the partial
// index's predicate literally: SQLite matches it by text (src/queue/enqueue.ts).
const ORDERS_CONFLICT = `on conflict (order_id) do update set
  snapshot = excluded.snapshot, partner_status = excluded.partner_status,
  partner_updated_at = excluded.partner_updated_at, updated_at = excluded.updated_at
  where orders.partner_updated_at <= excluded.partner_updated_at`;
const HISTORY_CONFLICT = 'on conflict (order_id, partner_updated_at) do nothing';
const JOBS_CONFLICT = "on conflict (kind, job_key) where status = 'queued' and attempts = 0 do nothing";

const SQLITE_TEXT = {
  inbox: `insert into inbox (source, dedupe_key, received_at, body) values ('partner', @dedupe_key, @now, @body)
    on conflict (dedupe_key) do nothing returning id`,
  order: `insert into orders (order_id, user_id, service_id, contact_id, deal_id, partner_status, snapshot,
      partner_updated_at, note, origin, closed_by_partner, info_pushed, created_at, updated_at)
    values (@order_id, @user_id, @service_id, null, null, @status, @snapshot, @partner_updated_at, null, 'webhook', 0, 0, @now, @now)
    ${ORDERS_CONFLICT}`,
  history: `insert into order_history (order_id, partner_updated_at, recorded_at, source, status, cost, paid, subscription_status)
    values (@order_id, @partner_updated_at, @now, 'partner', @status, @cost, @paid, @subscription_status)
    ${HISTORY_CONFLICT}`,
  job: `insert into jobs (kind, job_key, payload, status, attempts, max_attempts, run_at, inbox_id, created_at, updated_at)
    values (@kind, @job_key, @payload, 'queued', 0, @max_attempts, @now, @inbox_id, @now, @now)
    ${JOBS_CONFLICT}`,
} as const;

type SqliteStatements = { [K in keyof typeof SQLITE_TEXT]: SQLite.Statement };

/** Per connection handle: a statement belongs to the connection that prepared it. */
const sqliteCache = new WeakMap<SQLite.Database, SqliteStatements>();
let sqlitePrepared = 0;

/** How many statements this process has prepared for the accept path (observable reuse, for tests). */
export function acceptStatementsPrepared(): number {
  return sqlitePrepared;
}

function sqliteStatements(handle: SQLite.Database): SqliteStatements {
  let cached = sqliteCache.get(handle);
  if (!cached) {
    cached = {
      inbox: handle.prepare(SQLITE_TEXT.inbox),
      order: handle.prepare(SQLITE_TEXT.order),
      history: handle.prepare(SQLITE_TEXT.history),
      job: handle.prepare(SQLITE_TEXT.job),
    };
    sqlitePrepared += Object.keys(cached).length;
    sqliteCache.set(handle, cached);
  }
  return cached;
}

/**
 * Takes in one partner webhook on SQLite, synchronously, inside the caller's transaction
 * on `handle` (the caller holds kysely's connection, so no other transaction is open).
 */
export function acceptPartnerOnSqlite(handle: SQLite.Database, input: PartnerAcceptInput): PartnerAcceptResult {
  const st = sqliteStatements(handle);
  const values = bindings(input);
  const row = st.inbox.get(values) as { id: number } | undefined;
  if (!row) return { accepted: false, reason: 'duplicate' };
  st.order.run(values);
  st.history.run(values);
  st.job.run({ ...values, inbox_id: row.id });
  return { accepted: true, inboxId: row.id };
}

/**
 * PostgreSQL: a whole group of webhooks as one statement (data-modifying CTEs run as one,
 * atomically, in one round trip), its values passed as arrays, under a fixed name, so pg
 * parses and plans it once per connection and afterwards sends only Bind/Execute. Where
 * the query builder's transaction took five round trips per webhook (BEGIN, three
 * INSERTs, COMMIT), a group of any size takes one, and needs no BEGIN/COMMIT of its own.
 *
 * It does what the webhooks would do one after another, in their order (`n`):
 * - inbox: a key already stored, or repeated in the group, is a duplicate (the first wins);
 * - orders: one upsert per order (PostgreSQL's ON CONFLICT DO UPDATE may touch a row once
 *   per statement), by the picture one-by-one upserts would leave: the newest updatedAt,
 *   the later of equals, with the first webhook's creation values for a new row;
 * - history and jobs: in order, the first of equals kept (DO NOTHING within one statement
 *   sees the rows inserted before it), so an order's job carries its first webhook's inbox id.
 * test/accept-statements.test.ts holds this to the rows of the webhooks taken one by one.
 */
export const PG_ACCEPT_PARTNER_NAME = 'amobridge_accept_partners_v1';
const PG_ACCEPT_PARTNER_TEXT = `with input as (
  select * from unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::text[], $9::bigint[], $10::double precision[], $11::integer[], $12::text[], $13::text[], $14::text[])
    with ordinality as i(dedupe_key, now, body, order_id, user_id, service_id, status, snapshot, partner_updated_at,
                         cost, paid, subscription_status, job_key, payload, n)
), ins as (
  insert into inbox (source, dedupe_key, received_at, body)
  select 'partner', dedupe_key, now, body from input order by n
  on conflict (dedupe_key) do nothing
  returning id, dedupe_key
), taken as (
  select distinct on (i.dedupe_key) i.*, ins.id as inbox_id,
    first_value(i.now) over per_order as first_now,
    first_value(i.user_id) over per_order as first_user_id,
    first_value(i.service_id) over per_order as first_service_id
  from input i join ins on ins.dedupe_key = i.dedupe_key
  window per_order as (partition by i.order_id order by i.n)
  order by i.dedupe_key, i.n
), ord as (
  insert into orders (order_id, user_id, service_id, contact_id, deal_id, partner_status, snapshot,
    partner_updated_at, note, origin, closed_by_partner, info_pushed, created_at, updated_at)
  select distinct on (order_id) order_id, first_user_id, first_service_id, null, null, status, snapshot,
    partner_updated_at, null, 'webhook', 0, 0, first_now, now
  from taken order by order_id, partner_updated_at desc, n desc
  ${ORDERS_CONFLICT}
), hist as (
  insert into order_history (order_id, partner_updated_at, recorded_at, source, status, cost, paid, subscription_status)
  select order_id, partner_updated_at, now, 'partner', status, cost, paid, subscription_status from taken order by n
  ${HISTORY_CONFLICT}
), job as (
  insert into jobs (kind, job_key, payload, status, attempts, max_attempts, run_at, inbox_id, created_at, updated_at)
  select $15::text, job_key, payload, 'queued', 0, $16::integer, now, inbox_id, now, now from taken order by n
  ${JOBS_CONFLICT}
)
select n, inbox_id from taken`;

/**
 * Takes in a group of partner webhooks on PostgreSQL in one statement on `client`; the
 * answers in the items' order. Throws, having written nothing, if any of them is refused.
 */
export async function acceptPartnersOnPostgres(client: pg.ClientBase, inputs: readonly PartnerAcceptInput[]): Promise<PartnerAcceptResult[]> {
  const columns = {
    dedupe_key: [] as string[],
    now: [] as number[],
    body: [] as string[],
    order_id: [] as string[],
    user_id: [] as string[],
    service_id: [] as string[],
    status: [] as string[],
    snapshot: [] as string[],
    partner_updated_at: [] as number[],
    cost: [] as Array<number | null>,
    paid: [] as number[],
    subscription_status: [] as Array<string | null>,
    job_key: [] as string[],
    payload: [] as string[],
  };
  for (const input of inputs) {
    const v = bindings(input);
    for (const key of Object.keys(columns) as Array<keyof typeof columns>) (columns[key] as unknown[]).push(v[key]);
  }
  const result = await client.query<{ n: number; inbox_id: number }>({
    name: PG_ACCEPT_PARTNER_NAME,
    text: PG_ACCEPT_PARTNER_TEXT,
    values: [...Object.values(columns), ORDER_SYNC, DEFAULT_MAX_ATTEMPTS],
  });
  const inboxIdAt = new Map(result.rows.map((r) => [Number(r.n), Number(r.inbox_id)]));
  return inputs.map((_, i) => {
    const inboxId = inboxIdAt.get(i + 1);
    return inboxId !== undefined ? { accepted: true, inboxId } : { accepted: false, reason: 'duplicate' };
  });
}
