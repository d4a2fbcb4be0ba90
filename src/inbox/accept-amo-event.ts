import { createHash, randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import qs from 'qs';
import type { Db } from '../db/connect.js';
import type { Database } from '../db/schema.js';
import { DEFAULT_MAX_ATTEMPTS, enqueue } from '../queue/enqueue.js';
import { DEAL_RECONCILE, type PayloadOf } from '../sync/jobs.js';
import { type AmoAcceptStore, inAmoAcceptTransaction } from './accept-amo-statements.js';
import type { AmoWebhookAccount, AmoWebhookEvent } from './amo-webhook-body.js';

/**
 * Stage events wait this long before they run, and the first one due takes every event
 * due within the same span into its batch (the reconcile handler's gatherMs): a burst of
 * changes costs one GET /api/v4/leads per 50 deals, at the price of two seconds of latency.
 */
export const RECONCILE_GATHER_MS = 2000;

export interface AcceptAmoEventsInput {
  /** How long the events wait to gather into one batch (default RECONCILE_GATHER_MS). */
  gatherMs?: number;
  events: readonly AmoWebhookEvent[];
  /** The body as received; stored verbatim when it concerns one deal. */
  rawBody: string;
  /** The body's account, repeated in the per-deal excerpt of a body about several deals. */
  account?: AmoWebhookAccount;
}

export interface AcceptAmoEventsResult {
  /** Deals with a new inbox row (and a job, new or coalesced). */
  accepted: number;
  /** Deals whose events repeat what their still-waiting job will read anyway. */
  duplicates: number;
}

/** Keeps a statement's parameter count far below SQLite's and PostgreSQL's limits. */
const LOOKUP_CHUNK = 500;

/**
 * Persists a checked amoCRM webhook in one transaction: per deal it names, one inbox row
 * and a `deal.reconcile` job. Nothing here calls out; the HTTP answer follows the commit.
 *
 * The job key is `order:<orderId>` for a deal the bridge already linked to an order, so the
 * reconcile runs in line with that order's intake/sync jobs (same key), and `deal:<dealId>`
 * otherwise. A waiting job of the same key absorbs the new event (coalescing in enqueue):
 * the worker reads the deal's current state, so one run serves any number of events.
 */
export async function acceptAmoEvents(db: Db, input: AcceptAmoEventsInput, now = Date.now()): Promise<AcceptAmoEventsResult> {
  const byDeal = groupByDeal(input.events);
  if (byDeal.size === 0) return { accepted: 0, duplicates: 0 };
  const work = (store: AmoAcceptStore) => acceptInto(store, byDeal, input, now);
  return inAmoAcceptTransaction(db, work, () => db.kysely.transaction().execute((trx) => work(kyselyStore(trx))));
}

/** The decisions of acceptAmoEvents, in the caller's transaction through `store`. */
async function acceptInto(
  store: AmoAcceptStore,
  byDeal: Map<number, AmoWebhookEvent[]>,
  input: AcceptAmoEventsInput,
  now: number,
): Promise<AcceptAmoEventsResult> {
  const dealIds = [...byDeal.keys()];
  const orderOfDeal = new Map<number, string>();
  for (let i = 0; i < dealIds.length; i += LOOKUP_CHUNK) {
    const rows = await store.ordersOfDeals(dealIds.slice(i, i + LOOKUP_CHUNK));
    // One deal belongs to one order; should two rows claim it, the first by id wins, always the same.
    for (const row of rows) if (row.deal_id !== null && !orderOfDeal.has(row.deal_id)) orderOfDeal.set(row.deal_id, row.order_id);
  }

  const jobKeyOf = (dealId: number) => {
    const orderId = orderOfDeal.get(dealId);
    return orderId !== undefined ? `order:${orderId}` : `deal:${dealId}`;
  };
  const digests = new Map([...byDeal].map(([dealId, events]) => [dealId, digestOf(dealId, events)]));
  const waiting = await waitingDigests(store, dealIds.map(jobKeyOf));

  let accepted = 0;
  let duplicates = 0;
  for (const [dealId, events] of byDeal) {
    const digest = digests.get(dealId)!;
    if (waiting.get(jobKeyOf(dealId))?.has(digest)) {
      duplicates++;
      continue;
    }
    const inboxId = await store.insertInbox({
      dedupeKey: `amocrm:${digest}:${now}:${randomUUID().slice(0, 8)}`,
      receivedAt: now,
      body: byDeal.size === 1 ? input.rawBody : excerpt(events, input.account),
    });
    accepted++;
    const payload: PayloadOf<typeof DEAL_RECONCILE> = { dealId };
    await store.enqueue({
      kind: DEAL_RECONCILE,
      key: jobKeyOf(dealId),
      payload: JSON.stringify(payload),
      maxAttempts: DEFAULT_MAX_ATTEMPTS,
      runAt: now + (input.gatherMs ?? RECONCILE_GATHER_MS),
      inboxId,
      now,
    });
  }
  return { accepted, duplicates };
}

/** The same storage through the query builder, for a Db without a driver handle. */
function kyselyStore(trx: Transaction<Database>): AmoAcceptStore {
  return {
    ordersOfDeals: (dealIds) => trx.selectFrom('orders').select(['order_id', 'deal_id']).where('deal_id', 'in', [...dealIds]).orderBy('order_id').execute(),
    waitingDeliveries: (kind, jobKeys) =>
      trx
        .selectFrom('jobs')
        .innerJoin('inbox', 'inbox.id', 'jobs.inbox_id')
        .select(['jobs.job_key', 'inbox.dedupe_key'])
        .where('jobs.kind', '=', kind)
        .where('jobs.job_key', 'in', [...jobKeys])
        .where('jobs.status', '=', 'queued')
        .where('jobs.attempts', '=', 0)
        .execute(),
    insertInbox: async (row) =>
      (
        await trx
          .insertInto('inbox')
          .values({ source: 'amocrm', dedupe_key: row.dedupeKey, received_at: row.receivedAt, body: row.body })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id,
    enqueue: async (job) =>
      void (await enqueue(
        trx,
        { kind: job.kind, key: job.key, payload: JSON.parse(job.payload), maxAttempts: job.maxAttempts, runAt: job.runAt, inboxId: job.inboxId },
        job.now,
      )),
  };
}

/** Events per deal, deals in ascending id order (a stable lock order for concurrent bodies). */
function groupByDeal(events: readonly AmoWebhookEvent[]): Map<number, AmoWebhookEvent[]> {
  const groups = new Map<number, AmoWebhookEvent[]>();
  for (const e of [...events].sort((a, b) => a.dealId - b.dealId)) {
    const list = groups.get(e.dealId);
    if (list) list.push(e);
    else groups.set(e.dealId, [e]);
  }
  return groups;
}

/**
 * What a deal's events say, as a digest independent of key order (amoCRM promises none).
 *
 * A repeat of the same words is absorbed only while the job of the earlier delivery still
 * waits: that job reads the deal's current state when it runs, so it serves the repeat
 * too (a resent body, a flood, amoCRM's retry of a delivery it thinks failed). Once that
 * job has run, the same words may describe a new change: a compact body has no time at
 * all, and a full one's `last_modified`/`updated_at` has one-second resolution, so a price
 * that goes 100 → 200 → 100 within a second reads the same as before. It gets a new job,
 * which costs a fiftieth of a batched read; losing it would leave the order out of step.
 */
function digestOf(dealId: number, events: readonly AmoWebhookEvent[]): string {
  const canonical = canonicalJson({ dealId, events: events.map((e) => ({ event: e.event, fragment: e.fragment })) });
  return createHash('sha256').update(canonical).digest('hex');
}

/** For each job key, the digests of the deliveries whose reconcile jobs have not run yet. */
async function waitingDigests(store: AmoAcceptStore, jobKeys: string[]): Promise<Map<string, Set<string>>> {
  const found = new Map<string, Set<string>>();
  for (let i = 0; i < jobKeys.length; i += LOOKUP_CHUNK) {
    for (const row of await store.waitingDeliveries(DEAL_RECONCILE, jobKeys.slice(i, i + LOOKUP_CHUNK))) {
      const digest = row.dedupe_key.split(':')[1];
      if (digest) (found.get(row.job_key) ?? found.set(row.job_key, new Set()).get(row.job_key)!).add(digest);
    }
  }
  return found;
}

/** JSON with object keys sorted at every level: amoCRM promises no key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * A body about several deals is stored as one excerpt per deal, in the same form encoding
 * as amoCRM's own, so each inbox row reads as "what amoCRM said about this deal" and the
 * stored total stays the size of the body (not the body times the number of deals).
 */
function excerpt(events: readonly AmoWebhookEvent[], account: AmoWebhookAccount | undefined): string {
  const leads: Record<string, Array<Record<string, unknown>>> = {};
  for (const e of events) (leads[e.event] ??= []).push(e.fragment);
  return qs.stringify({ leads, ...(account ? { account } : {}) }, { format: 'RFC1738' });
}
