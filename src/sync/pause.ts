import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { DEAL_RECONCILE, ORDER_SYNC, syncJobs } from './jobs.js';
import { appendOrderLog } from './order-log.js';

/**
 * Pausing (the admin API): a paused order, or any order of a paused user, gets no writes
 * to amoCRM or Company 1. Its webhooks are still accepted and its jobs still run, but each
 * finishes at once as "skipped: paused" in the order's log. Resuming queues the jobs that
 * bring both sides to the current state: order.sync (intake, additionalInfo, the deal's
 * notes and move) and, for an order with a deal, deal.reconcile (the deal's stage).
 */

/** Which of these orders are paused, by themselves or through their user. */
export async function pausedAmong(
  db: Kysely<Database>,
  rows: ReadonlyArray<{ order_id: string; user_id: string; paused_at: number | null }>,
): Promise<Set<string>> {
  const paused = new Set(rows.filter((r) => r.paused_at !== null).map((r) => r.order_id));
  const users = [...new Set(rows.filter((r) => r.paused_at === null).map((r) => r.user_id))];
  if (users.length === 0) return paused;
  const pausedUsers = new Set((await db.selectFrom('paused_users').select('user_id').where('user_id', 'in', users).execute()).map((u) => u.user_id));
  for (const row of rows) if (pausedUsers.has(row.user_id)) paused.add(row.order_id);
  return paused;
}

export async function isUserPaused(db: Kysely<Database>, userId: string): Promise<boolean> {
  return (await db.selectFrom('paused_users').select('user_id').where('user_id', '=', userId).executeTakeFirst()) !== undefined;
}

/** Whether the order is paused (by itself or through its user); undefined when it is not known. */
export async function isOrderPaused(db: Kysely<Database>, orderId: string): Promise<boolean | undefined> {
  const row = await db.selectFrom('orders').select(['order_id', 'user_id', 'paused_at']).where('order_id', '=', orderId).executeTakeFirst();
  return row ? (await pausedAmong(db, [row])).has(orderId) : undefined;
}

/** The log entry of a job that finished without writing because its order is paused. */
export const skippedPaused = (orderId: string, job: { id: number; kind: string }) => ({
  orderId,
  source: 'bridge' as const,
  event: 'job.skipped',
  detail: { jobId: job.id, kind: job.kind, reason: 'paused' },
});

export interface PauseState {
  orderId: string;
  userId: string;
  /** Paused by itself. */
  orderPaused: boolean;
  /** Paused through its user. */
  userPaused: boolean;
  /** Jobs queued to bring it to the current state (on a resume that unpaused it). */
  queued: string[];
}

/** Pauses one order (again is harmless); undefined when the order is not known. */
export async function pauseOrder(db: Kysely<Database>, orderId: string, keyId: string, now = Date.now()): Promise<PauseState | undefined> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('orders').select(['order_id', 'user_id', 'paused_at']).where('order_id', '=', orderId).executeTakeFirst();
    if (!row) return undefined;
    if (row.paused_at === null) {
      await trx.updateTable('orders').set({ paused_at: now }).where('order_id', '=', orderId).execute();
      await appendOrderLog(trx, [{ orderId, source: 'admin', event: 'order.paused', detail: { keyId } }], now);
    }
    return { orderId, userId: row.user_id, orderPaused: true, userPaused: await isUserPaused(trx, row.user_id), queued: [] };
  });
}

/**
 * Resumes one order. Unless its user is still paused, the catch-up jobs are queued at once
 * (joining any that wait). Undefined when the order is not known.
 */
export async function resumeOrder(db: Kysely<Database>, orderId: string, keyId: string, now = Date.now()): Promise<PauseState | undefined> {
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('orders').select(['order_id', 'user_id', 'paused_at', 'deal_id']).where('order_id', '=', orderId).executeTakeFirst();
    if (!row) return undefined;
    const userPaused = await isUserPaused(trx, row.user_id);
    let queued: string[] = [];
    if (row.paused_at !== null) {
      await trx.updateTable('orders').set({ paused_at: null }).where('order_id', '=', orderId).execute();
      await appendOrderLog(trx, [{ orderId, source: 'admin', event: 'order.resumed', detail: { keyId, userPaused } }], now);
      if (!userPaused) queued = await catchUp(trx, row, now);
    }
    return { orderId, userId: row.user_id, orderPaused: false, userPaused, queued };
  });
}

export interface UserPauseState {
  userId: string;
  paused: boolean;
  /** The user's orders known now. */
  orders: number;
  /** Orders whose catch-up jobs were queued (a resume; orders paused by themselves stay paused). */
  resumed: number;
}

/** Pauses a user: every order of theirs, and any that arrives later, until resumed. */
export async function pauseUser(db: Kysely<Database>, userId: string, keyId: string, now = Date.now()): Promise<UserPauseState> {
  return db.transaction().execute(async (trx) => {
    const inserted = await trx
      .insertInto('paused_users')
      .values({ user_id: userId, paused_at: now })
      .onConflict((oc) => oc.column('user_id').doNothing())
      .executeTakeFirst();
    const orders = await trx.selectFrom('orders').select('order_id').where('user_id', '=', userId).execute();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) {
      await appendOrderLog(trx, orders.map((o) => ({ orderId: o.order_id, source: 'admin' as const, event: 'user.paused', detail: { keyId, userId } })), now);
    }
    return { userId, paused: true, orders: orders.length, resumed: 0 };
  });
}

/** Resumes a user: each of their orders not paused by itself catches up at once. */
export async function resumeUser(db: Kysely<Database>, userId: string, keyId: string, now = Date.now()): Promise<UserPauseState> {
  return db.transaction().execute(async (trx) => {
    const deleted = await trx.deleteFrom('paused_users').where('user_id', '=', userId).executeTakeFirst();
    const orders = await trx.selectFrom('orders').select(['order_id', 'paused_at', 'deal_id']).where('user_id', '=', userId).orderBy('order_id').execute();
    let resumed = 0;
    if (Number(deleted.numDeletedRows) > 0) {
      await appendOrderLog(trx, orders.map((o) => ({ orderId: o.order_id, source: 'admin' as const, event: 'user.resumed', detail: { keyId, userId } })), now);
      for (const order of orders.filter((o) => o.paused_at === null)) {
        await catchUp(trx, order, now);
        resumed++;
      }
    }
    return { userId, paused: false, orders: orders.length, resumed };
  });
}

/**
 * The jobs that bring a resumed order to the current state, in this order under its key:
 * order.sync acts on Company 1's latest picture (kept while paused), then deal.reconcile
 * re-reads the deal and drives the order from its current stage.
 */
async function catchUp(db: Kysely<Database>, row: { order_id: string; deal_id: number | null }, now: number): Promise<string[]> {
  const key = `order:${row.order_id}`;
  await syncJobs.enqueue(db, ORDER_SYNC, { orderId: row.order_id }, { key }, now);
  if (row.deal_id === null) return [ORDER_SYNC];
  await syncJobs.enqueue(db, DEAL_RECONCILE, { dealId: row.deal_id }, { key }, now);
  return [ORDER_SYNC, DEAL_RECONCILE];
}
