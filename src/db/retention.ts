import { type RawBuilder, sql } from 'kysely';
import { REDACTED } from '../lib/redact.js';
import type { Db } from './connect.js';
import type { Database } from './schema.js';

/**
 * Retention: what the bridge no longer needs, or may no longer keep, goes.
 *
 * - inbox: a body older than RETENTION is emptied; the row, whose dedupe key absorbs
 *   repeats, is deleted once older than both RETENTION and the de-duplication window.
 *   Jobs keep their inbox_id: its one reader (the webview timeline's Company 1 reports)
 *   joins it and skips a missing or empty row, so older reports drop out of the timeline.
 * - jobs: `done` ones older than RETENTION are deleted. Dead jobs stay whatever their age:
 *   they wait for a person (`amobridge dead list`), and their last_error is redacted.
 * - webview_tokens and webview_sessions (names and phone) are deleted once expired, as are
 *   admin_sessions (the admin page's).
 * - orders: a final order untouched for RETENTION keeps its ids, status and times; its
 *   snapshot loses the customer (replaced by a redacted one, so the snapshot still reads
 *   as an order) and its webview comment is cleared, as is the comment of a webview
 *   create older than RETENTION that never got its order.
 * - rate_slots: slots long past (the limiter prunes its own, but only while it is used).
 * - contacts (the directory: a name and the phone's last four digits): the name goes once
 *   the entry is unused for RETENTION and none of the user's orders still keeps its
 *   customer (the directory keeps a name no longer than the orders do); the entry goes
 *   once no order has used it for six months. Safe for a returning user: intake finds the
 *   contact again through its create claim (amo_creates) or by detmirUserId in amoCRM,
 *   and records it anew.
 * - peer_calls: calls older than 8 days (GET /admin/quota looks back 7).
 * - order_log: entries older than RETENTION (they hold ids, statuses and costs; the
 *   admin timeline of an older order shows what the other tables still keep).
 * - orders' search fields (name, phone digits) go with the customer of a purged order.
 * amo_creates, kv and api_keys hold ids and settings, no personal data.
 *
 * Every statement touches at most one batch of rows and commits on its own, and the
 * process yields to waiting I/O between batches, so intake is never held up for long.
 */
export interface RetentionOptions {
  db: Db;
  /** RETENTION, in ms. */
  retentionMs: number;
  /** How long an inbox row's dedupe key must be kept (INBOX_KEY_WINDOW_MS). */
  keyWindowMs: number;
  /** Company 1's statuses with no way out (finalStatuses of the mappings' transitions). */
  finalStatuses: readonly string[];
  /** Rows per statement (default 500). */
  batchSize?: number;
  /** Statements per rule and run (default 20): a larger backlog takes several runs. */
  maxBatches?: number;
  /** How long a directory entry is kept unused (default DIRECTORY_KEEP_MS). */
  directoryKeepMs?: number;
}

export interface RetentionCounts {
  inboxBodiesEmptied: number;
  inboxRowsDeleted: number;
  jobsDeleted: number;
  ordersPurged: number;
  abandonedCommentsCleared: number;
  /** Used webview sign-in tokens (not named "tokens": the logger masks such fields). */
  signInsDeleted: number;
  sessionsDeleted: number;
  adminSessionsDeleted: number;
  rateSlotsDeleted: number;
  directoryNamesCleared: number;
  directoryEntriesDeleted: number;
  peerCallsDeleted: number;
  /** Order log entries (the admin timeline's own record) older than RETENTION. */
  orderLogDeleted: number;
}

/** Six months: a user silent that long is looked up again when they come back. */
export const DIRECTORY_KEEP_MS = 183 * 24 * 3600_000;
/** GET /admin/quota reports 7 days; one more covers any clock skew between instances. */
export const PEER_CALLS_KEEP_MS = 8 * 24 * 3600_000;

/**
 * Rate slots are stamped by the database's clock and counted over the last second; ten
 * minutes leaves room for any skew between that clock and this process's.
 */
const RATE_SLOT_KEEP_MS = 10 * 60_000;

/** What a purged order's snapshot holds for its customer: still a valid Customer. */
const PURGED_CUSTOMER = { firstName: REDACTED, lastName: REDACTED, phone: REDACTED };

/** Applies every rule once, as of `now`; answers how many rows each changed. */
export async function retentionOnce(options: RetentionOptions, now = Date.now()): Promise<RetentionCounts> {
  const { db, retentionMs } = options;
  const k = db.kysely;
  const bodyCutoff = now - retentionMs;
  const keyCutoff = now - Math.max(retentionMs, options.keyWindowMs);
  const batches = (step: (limit: number) => Promise<number>) => inBatches(options, step);

  // Rows past the window go first, so only those still needed for their key are emptied.
  const inboxRowsDeleted = await batches((limit) => deleteBefore(db, 'inbox', 'id', 'received_at', keyCutoff, limit));
  const inboxBodiesEmptied = await batches(async (limit) => {
    const due = k.selectFrom('inbox').select('id').where(sql<boolean>`body <> ''`).where('received_at', '<', bodyCutoff).limit(limit);
    return Number((await k.updateTable('inbox').set({ body: '' }).where('id', 'in', due).executeTakeFirst()).numUpdatedRows);
  });
  const jobsDeleted = await batches((limit) => deleteBefore(db, 'jobs', 'id', 'updated_at', bodyCutoff, limit, sql`status = 'done'`));
  const ordersPurged = options.finalStatuses.length === 0 ? 0 : await batches((limit) => purgeFinalOrders(options, bodyCutoff, limit, now));
  // A webview create that never got its order (a crash between Company 1's answer and the record).
  const abandonedCommentsCleared = await batches(async (limit) => {
    const due = k
      .selectFrom('webview_orders')
      .select('idempotency_key')
      .where('order_id', 'is', null)
      .where('comment', 'is not', null)
      .where('started_at', '<', bodyCutoff)
      .limit(limit);
    return Number((await k.updateTable('webview_orders').set({ comment: null }).where('idempotency_key', 'in', due).executeTakeFirst()).numUpdatedRows);
  });
  const signInsDeleted = await batches((limit) => deleteBefore(db, 'webview_tokens', 'token_id', 'expires_at', now, limit));
  const sessionsDeleted = await batches((limit) => deleteBefore(db, 'webview_sessions', 'id_hash', 'expires_at', now, limit));
  const adminSessionsDeleted = await batches((limit) => deleteBefore(db, 'admin_sessions', 'id_hash', 'expires_at', now, limit));
  const rateSlotsDeleted = await batches((limit) => deleteBefore(db, 'rate_slots', 'id', 'at', now - RATE_SLOT_KEEP_MS, limit));
  const directoryNamesCleared = await batches(async (limit) => {
    const due = k
      .selectFrom('contacts as c')
      .select('c.user_id')
      .where('c.name', 'is not', null)
      .where('c.last_used_at', '<', bodyCutoff)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('orders as o')
              .select('o.order_id')
              .whereRef('o.user_id', '=', 'c.user_id')
              .where(sql<boolean>`(o.pii_purged_at is null or o.pii_purged_at < o.updated_at)`),
          ),
        ),
      )
      .limit(limit);
    return Number((await k.updateTable('contacts').set({ name: null, name_key: null }).where('user_id', 'in', due).executeTakeFirst()).numUpdatedRows);
  });
  const directoryCutoff = now - (options.directoryKeepMs ?? DIRECTORY_KEEP_MS);
  const directoryEntriesDeleted = await batches((limit) => deleteBefore(db, 'contacts', 'user_id', 'last_used_at', directoryCutoff, limit));
  const peerCallsDeleted = await batches((limit) => deleteBefore(db, 'peer_calls', 'id', 'at', now - PEER_CALLS_KEEP_MS, limit));
  const orderLogDeleted = await batches((limit) => deleteBefore(db, 'order_log', 'id', 'at', bodyCutoff, limit));
  return {
    inboxBodiesEmptied,
    inboxRowsDeleted,
    jobsDeleted,
    ordersPurged,
    abandonedCommentsCleared,
    signInsDeleted,
    sessionsDeleted,
    adminSessionsDeleted,
    rateSlotsDeleted,
    directoryNamesCleared,
    directoryEntriesDeleted,
    peerCallsDeleted,
    orderLogDeleted,
  };
}

/**
 * One batch of final orders untouched since the cutoff: the customer leaves the snapshot
 * and the webview comment goes, in one short transaction. An order written meanwhile
 * (updated_at moved) is left for a later run.
 */
async function purgeFinalOrders(options: RetentionOptions, cutoff: number, limit: number, now: number): Promise<number> {
  const { db } = options;
  const due = await db.kysely
    .selectFrom('orders')
    .select(['order_id', 'snapshot', 'updated_at'])
    .where('partner_status', 'in', options.finalStatuses)
    .where('updated_at', '<', cutoff)
    .where(sql<boolean>`(pii_purged_at is null or pii_purged_at < updated_at)`)
    .limit(limit)
    .execute();
  if (due.length === 0) return 0;
  return db.kysely.transaction().execute(async (trx) => {
    const purged: string[] = [];
    for (const row of due) {
      const result = await trx
        .updateTable('orders')
        .set({ snapshot: withoutCustomer(row.snapshot), search_name: null, phone_digits: null, pii_purged_at: now })
        .where('order_id', '=', row.order_id)
        .where('updated_at', '=', row.updated_at)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) > 0) purged.push(row.order_id);
    }
    if (purged.length > 0) {
      await trx.updateTable('webview_orders').set({ comment: null }).where('order_id', 'in', purged).where('comment', 'is not', null).execute();
    }
    return purged.length;
  });
}

/** An order snapshot (JSON) with its customer replaced by the redacted one. */
function withoutCustomer(snapshot: string): string {
  let order: unknown;
  try {
    order = JSON.parse(snapshot);
  } catch {
    order = {};
  }
  const fields = typeof order === 'object' && order !== null && !Array.isArray(order) ? order : {};
  return JSON.stringify({ ...fields, customer: PURGED_CUSTOMER });
}

/** Runs a batch step until it comes back short or the run's share of batches is spent. */
async function inBatches(options: RetentionOptions, step: (limit: number) => Promise<number>): Promise<number> {
  const size = options.batchSize ?? 500;
  let total = 0;
  for (let i = 0; i < (options.maxBatches ?? 20); i++) {
    // better-sqlite3 runs each statement on this thread: let waiting requests in between.
    await new Promise((resolve) => setImmediate(resolve));
    const n = await step(size);
    total += n;
    if (n < size) break;
  }
  return total;
}

/**
 * Deletes at most `limit` rows of a table whose `column` lies before `cutoff` (and that
 * match `also`, a literal predicate that a partial index repeats), by primary key, oldest
 * first. The order makes the column's index the plan: without it PostgreSQL may scan the
 * table for the first `limit` matches, reading past every row an earlier batch deleted.
 */
async function deleteBefore(
  db: Db,
  table: keyof Database,
  key: string,
  column: string,
  cutoff: number,
  limit: number,
  also?: RawBuilder<boolean>,
): Promise<number> {
  const where = also ? sql`${also} and ${sql.ref(column)} < ${cutoff}` : sql`${sql.ref(column)} < ${cutoff}`;
  const result = await sql`delete from ${sql.table(table)} where ${sql.ref(key)} in (
    select ${sql.ref(key)} from ${sql.table(table)} where ${where} order by ${sql.ref(column)} limit ${limit})`.execute(db.kysely);
  return Number(result.numAffectedRows ?? 0);
}
