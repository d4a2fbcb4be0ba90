import type SQLite from 'better-sqlite3';
import type { Db } from '../db/connect.js';

/**
 * The amoCRM webhook's accept transaction as fixed SQL, prepared once per connection (as
 * ./accept-statements.ts does for Company 1's, and for the same reason: kysely rebuilt and,
 * on SQLite, re-prepared every statement of every webhook). The lists of deal ids and job
 * keys go in as one JSON array (SQLite's json_each) or one PostgreSQL array, so the text
 * never depends on their length. acceptAmoEvents (./accept-amo-event.ts) decides; this is
 * the storage it decides with, in one transaction.
 */
export interface AmoAcceptStore {
  /** The orders linked to these deals, by order id. */
  ordersOfDeals(dealIds: readonly number[]): Promise<Array<{ order_id: string; deal_id: number | null }>>;
  /** The inbox keys of the deliveries whose deal.reconcile jobs of these keys have not run yet. */
  waitingDeliveries(kind: string, jobKeys: readonly string[]): Promise<Array<{ job_key: string; dedupe_key: string }>>;
  insertInbox(row: { dedupeKey: string; receivedAt: number; body: string }): Promise<number>;
  /** enqueue's insert (src/queue/enqueue.ts): a new job, or none where one of its kind and key waits. */
  enqueue(job: { kind: string; key: string; payload: string; maxAttempts: number; runAt: number; inboxId: number; now: number }): Promise<void>;
}

const SQLITE_TEXT = {
  begin: 'begin immediate',
  commit: 'commit',
  rollback: 'rollback',
  orders: 'select order_id, deal_id from orders where deal_id in (select value from json_each(?)) order by order_id',
  waiting: `select jobs.job_key, inbox.dedupe_key from jobs inner join inbox on inbox.id = jobs.inbox_id
    where jobs.kind = ? and jobs.job_key in (select value from json_each(?)) and jobs.status = 'queued' and jobs.attempts = 0`,
  inbox: "insert into inbox (source, dedupe_key, received_at, body) values ('amocrm', ?, ?, ?) returning id",
  // The conflict target repeats the partial index's predicate literally: SQLite matches it by text.
  job: `insert into jobs (kind, job_key, payload, status, attempts, max_attempts, run_at, inbox_id, created_at, updated_at)
    values (?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)
    on conflict (kind, job_key) where status = 'queued' and attempts = 0 do nothing`,
} as const;

type SqliteStatements = { [K in keyof typeof SQLITE_TEXT]: SQLite.Statement };
const sqliteCache = new WeakMap<SQLite.Database, SqliteStatements>();
let prepared = 0;

/** Statements this process has prepared for the amoCRM accept path (observable reuse, for tests). */
export function amoAcceptStatementsPrepared(): number {
  return prepared;
}

function sqliteStatements(handle: SQLite.Database): SqliteStatements {
  let cached = sqliteCache.get(handle);
  if (!cached) {
    const entries = Object.entries(SQLITE_TEXT).map(([k, text]) => [k, handle.prepare(text)]);
    cached = Object.fromEntries(entries) as SqliteStatements;
    prepared += entries.length;
    sqliteCache.set(handle, cached);
  }
  return cached;
}

const PG = {
  orders: { name: 'amobridge_amo_orders_v1', text: 'select order_id, deal_id from orders where deal_id = any($1::bigint[]) order by order_id' },
  waiting: {
    name: 'amobridge_amo_waiting_v1',
    text: `select jobs.job_key, inbox.dedupe_key from jobs inner join inbox on inbox.id = jobs.inbox_id
      where jobs.kind = $1::text and jobs.job_key = any($2::text[]) and jobs.status = 'queued' and jobs.attempts = 0`,
  },
  inbox: {
    name: 'amobridge_amo_inbox_v1',
    text: "insert into inbox (source, dedupe_key, received_at, body) values ('amocrm', $1::text, $2::bigint, $3::text) returning id",
  },
  job: {
    name: 'amobridge_amo_job_v1',
    text: `insert into jobs (kind, job_key, payload, status, attempts, max_attempts, run_at, inbox_id, created_at, updated_at)
      values ($1::text, $2::text, $3::text, 'queued', 0, $4::integer, $5::bigint, $6::bigint, $7::bigint, $7::bigint)
      on conflict (kind, job_key) where status = 'queued' and attempts = 0 do nothing`,
  },
} as const;

/**
 * Runs `work` in one transaction on the database's own driver, with the store's statements;
 * `fallback` when the Db carries no driver handle (a test's stand-in).
 */
export async function inAmoAcceptTransaction<T>(db: Db, work: (store: AmoAcceptStore) => Promise<T>, fallback: () => Promise<T>): Promise<T> {
  const { sqlite, pool } = db;
  if (sqlite) {
    // Under kysely's connection mutex: nothing else runs on the handle until the commit.
    return db.kysely.connection().execute(async () => {
      const st = sqliteStatements(sqlite);
      st.begin.run();
      try {
        const result = await work({
          ordersOfDeals: async (ids) => st.orders.all(JSON.stringify(ids)) as Array<{ order_id: string; deal_id: number | null }>,
          waitingDeliveries: async (kind, keys) => st.waiting.all(kind, JSON.stringify(keys)) as Array<{ job_key: string; dedupe_key: string }>,
          insertInbox: async (r) => (st.inbox.get(r.dedupeKey, r.receivedAt, r.body) as { id: number }).id,
          enqueue: async (j) => void st.job.run(j.kind, j.key, j.payload, j.maxAttempts, j.runAt, j.inboxId, j.now, j.now),
        });
        st.commit.run();
        return result;
      } catch (error) {
        if (sqlite.inTransaction) st.rollback.run();
        throw error;
      }
    });
  }
  if (pool) {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('begin');
      try {
        const result = await work({
          ordersOfDeals: async (ids) => (await client.query<{ order_id: string; deal_id: number | null }>({ ...PG.orders, values: [ids] })).rows,
          waitingDeliveries: async (kind, keys) => (await client.query<{ job_key: string; dedupe_key: string }>({ ...PG.waiting, values: [kind, keys] })).rows,
          insertInbox: async (r) => Number((await client.query<{ id: number }>({ ...PG.inbox, values: [r.dedupeKey, r.receivedAt, r.body] })).rows[0]!.id),
          enqueue: async (j) => void (await client.query({ ...PG.job, values: [j.kind, j.key, j.payload, j.maxAttempts, j.runAt, j.inboxId, j.now] })),
        });
        await client.query('commit');
        return result;
      } catch (error) {
        await client.query('rollback').catch((e: Error) => (broken = e));
        throw error;
      }
    } finally {
      // A connection that cannot roll back is dropped, not reused.
      client.release(broken);
    }
  }
  return fallback();
}
