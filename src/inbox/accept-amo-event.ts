import { createHash } from 'node:crypto';
import type { Transaction } from 'kysely';
import qs from 'qs';
import type { Db } from '../db/connect.js';
import type { Database } from '../db/schema.js';
import { DEAL_RECONCILE, syncJobs } from '../sync/jobs.js';
import type { AmoWebhookAccount, AmoWebhookEvent } from './amo-webhook-body.js';

/**
 * Stage events wait this long before they run, and the first one due takes every event
 * due within the same span into its batch (the reconcile handler's gatherMs): a burst of
 * changes costs one GET /api/v4/leads per 50 deals, at the price of two seconds of latency.
 */
export const RECONCILE_GATHER_MS = 2000;

/**
 * A compact event (no timestamp) repeated within this span is taken as the same event:
 * a resent body adds no inbox row and no job. amoCRM's own retries come 5 minutes or more
 * apart, so the window is about bodies sent twice on the way (a proxy, a replay, a flood).
 * The price is a genuine A → B → A → B move of one deal inside the window, whose second
 * A → B is dropped: harmless when the job of B → A runs after it (the reconcile reads the
 * deal's current stage) or is still waiting; otherwise the periodic sweep of recently
 * updated deals (SWEEP_INTERVAL) brings the order to B.
 */
export const AMO_REPEAT_WINDOW_MS = 60_000;

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
  /** Deals whose events were already in the inbox: an identical redelivery. */
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

  return db.kysely.transaction().execute(async (trx) => {
    const dealIds = [...byDeal.keys()];
    const orderOfDeal = new Map<number, string>();
    for (let i = 0; i < dealIds.length; i += LOOKUP_CHUNK) {
      const rows = await trx
        .selectFrom('orders')
        .select(['order_id', 'deal_id'])
        .where('deal_id', 'in', dealIds.slice(i, i + LOOKUP_CHUNK))
        .orderBy('order_id')
        .execute();
      // One deal belongs to one order; should two rows claim it, the first by id wins, always the same.
      for (const row of rows) if (row.deal_id !== null && !orderOfDeal.has(row.deal_id)) orderOfDeal.set(row.deal_id, row.order_id);
    }

    const keys = new Map([...byDeal].map(([dealId, events]) => [dealId, dedupeKeys(dealId, events, now)]));
    const repeated = await recentKeys(trx, [...keys.values()].flatMap((k) => (k.previous ? [k.previous] : [])), now);

    let accepted = 0;
    let duplicates = 0;
    for (const [dealId, events] of byDeal) {
      const key = keys.get(dealId)!;
      if (key.previous && repeated.has(key.previous)) {
        duplicates++;
        continue;
      }
      const inbox = await trx
        .insertInto('inbox')
        .values({
          source: 'amocrm',
          dedupe_key: key.current,
          received_at: now,
          body: byDeal.size === 1 ? input.rawBody : excerpt(events, input.account),
        })
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .returning('id')
        .executeTakeFirst();
      if (!inbox) {
        duplicates++;
        continue;
      }
      accepted++;
      const orderId = orderOfDeal.get(dealId);
      await syncJobs.enqueue(
        trx,
        DEAL_RECONCILE,
        { dealId },
        { key: orderId !== undefined ? `order:${orderId}` : `deal:${dealId}`, inboxId: inbox.id, runAt: now + (input.gatherMs ?? RECONCILE_GATHER_MS) },
        now,
      );
    }
    return { accepted, duplicates };
  });
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

function hasTimestamp(fragment: Record<string, unknown>): boolean {
  return ['last_modified', 'updated_at'].some((k) => typeof fragment[k] === 'string' && fragment[k] !== '');
}

/**
 * A deal's inbox key, and for a compact event the key it had in the time bucket before.
 *
 * A full-shape fragment carries the lead's modification time (`last_modified`,
 * `updated_at`), so the same fragment again is a redelivery (amoCRM retries after 5 min,
 * 15 min, …, sometimes after a 2xx it did not see in time) and its digest absorbs it.
 * A compact fragment (`id`, `status_id`, `pipeline_id`, `old_*`) has no time: the same
 * fragment is one event only within AMO_REPEAT_WINDOW_MS, so its key carries the window's
 * time bucket. The same digest in the bucket before, received within the window, is a
 * repeat too (`previous`): the window is exact, not cut at bucket edges.
 */
function dedupeKeys(dealId: number, events: readonly AmoWebhookEvent[], now: number): { current: string; previous?: string } {
  const canonical = canonicalJson({ dealId, events: events.map((e) => ({ event: e.event, fragment: e.fragment })) });
  const digest = createHash('sha256').update(canonical).digest('hex');
  if (events.some((e) => hasTimestamp(e.fragment))) return { current: `amocrm:${digest}` };
  const bucket = Math.floor(now / AMO_REPEAT_WINDOW_MS);
  return { current: `amocrm:${digest}:${bucket}`, previous: `amocrm:${digest}:${bucket - 1}` };
}

/** Which of these inbox keys were received within the repeat window. */
async function recentKeys(trx: Transaction<Database>, keys: string[], now: number): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < keys.length; i += LOOKUP_CHUNK) {
    const rows = await trx
      .selectFrom('inbox')
      .select('dedupe_key')
      .where('dedupe_key', 'in', keys.slice(i, i + LOOKUP_CHUNK))
      .where('received_at', '>', now - AMO_REPEAT_WINDOW_MS)
      .execute();
    for (const row of rows) found.add(row.dedupe_key);
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
