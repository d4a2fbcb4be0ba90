import type { Transaction } from 'kysely';
import { z } from 'zod';
import type { Db } from '../db/connect.js';
import { readKv, writeKv } from '../db/kv.js';
import type { Database } from '../db/schema.js';
import { takeInPartnerOrder } from '../inbox/accept-partner-event.js';
import { HttpError } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import { MAX_ORDER_PAGE_LIMIT, type Order, type OrderPage, type OrderWebhook } from '../partner/schema.js';
import { periodicRun, type Schedule, startSchedule } from '../queue/schedule.js';
import { PARTNER_SWEEP, type SyncJobHandler, syncJobs } from './jobs.js';
import type { PartnerPort } from './ports.js';

/**
 * The backstop for partner webhooks that were lost or refused (a wrong
 * PARTNER_WEBHOOK_SECRET, an outage): read Company 1's orders changed since the
 * high-water mark and take in every one the bridge does not know, or knows in an older
 * version, exactly as its webhook would have been taken in.
 */
const STATE_KEY = 'partner_sweep.state';

/**
 * Company 1 stamps updatedAt when it makes a change, and the change may become visible to
 * a reader later (a slow commit, a lagging replica, servers whose clocks disagree). So
 * each read starts this far before the newest change already taken in. Two minutes is
 * far beyond any of those; a change read again costs one lookup and makes no job.
 */
export const PARTNER_SWEEP_OVERLAP_MS = 2 * 60 * 1000;
/**
 * With no mark yet (the first run ever), the read starts a day back, or at the newest
 * order the bridge holds when that is older: webhooks refused before this sweep existed,
 * say for days of a wrong secret, are healed too, and a fresh install reads one day.
 */
export const PARTNER_SWEEP_FIRST_SPAN_MS = 24 * 60 * 60 * 1000;
/** A bound on one run, so a huge backlog is worked through over several (the next follows at once). */
const MAX_PAGES = 10;

/**
 * What is kept between runs. `mark`: Company 1's newest updatedAt (ms) taken in. `resume`:
 * the read a run left unfinished at its page bound, continued by the next run (a keyset
 * cursor stays valid; re-reading from the mark could loop forever on a burst of changes
 * larger than one run within the overlap).
 */
const stateSchema = z.object({
  mark: z.number().int(),
  resume: z.object({ since: z.iso.datetime(), cursor: z.string().min(1) }).nullable(),
});
type SweepState = z.infer<typeof stateSchema>;
/** Where a read starts: a time, and the cursor of the page to go on from, if any. */
type ReadFrom = { since: string; cursor?: string };

export interface PartnerSweepDeps {
  db: Db;
  partner: Pick<PartnerPort, 'listOrdersChangedSince'>;
  logger: Logger;
  /** Orders a page (default and maximum 100). */
  pageLimit?: number;
  /** Pages a run (default 10). */
  maxPages?: number;
}

export interface PartnerSweepResult {
  /** Orders read, taken in (inbox row and job), and pages read. */
  read: number;
  taken: number;
  pages: number;
  /** The run stopped at its page bound with orders left to read. */
  more: boolean;
}

/** One sweep. Progress is committed page by page, with what the page took in. */
export async function partnerSweepOnce(deps: PartnerSweepDeps, now = Date.now()): Promise<PartnerSweepResult> {
  const { db, partner, logger } = deps;
  const state = await loadState(deps, now);
  const fromMark = (): ReadFrom => ({ since: new Date(state.mark - PARTNER_SWEEP_OVERLAP_MS).toISOString() });
  let from: ReadFrom = state.resume ?? fromMark();
  /** Reading on from a cursor an earlier run kept. */
  let resumed = state.resume !== null;
  const result: PartnerSweepResult = { read: 0, taken: 0, pages: 0, more: false };

  while (result.pages < (deps.maxPages ?? MAX_PAGES)) {
    let page: OrderPage;
    try {
      page = await partner.listOrdersChangedSince({ since: new Date(from.since), limit: deps.pageLimit ?? MAX_ORDER_PAGE_LIMIT, cursor: from.cursor });
    } catch (error) {
      // A kept cursor may have expired (the contract calls it opaque): start again from
      // the mark rather than stay stuck on it.
      if (!(resumed && error instanceof HttpError && error.status === 400)) throw error;
      logger.warn('partner.sweep.cursor_refused', { since: from.since, status: error.status });
      resumed = false;
      from = fromMark();
      continue;
    }
    resumed = false;
    result.pages++;
    result.read += page.items.length;
    state.mark = Math.max(state.mark, ...page.items.map((o) => Date.parse(o.updatedAt)).filter(Number.isFinite));
    state.resume = page.nextCursor ? { since: from.since, cursor: page.nextCursor } : null;
    result.taken += await db.kysely.transaction().execute(async (trx) => {
      const taken = await takeInPage(trx, page.items, logger, now);
      await writeKv(trx, STATE_KEY, JSON.stringify(state), now);
      return taken;
    });
    if (!state.resume) break;
    from = state.resume;
  }

  result.more = state.resume !== null;
  logger.info('partner.sweep.done', { ...result, mark: new Date(state.mark).toISOString() });
  return result;
}

/** Which listed orders the bridge must take in, and as what event: pure, so it is tested with a table. */
export function ordersToTakeIn(listed: Order[], knownUpdatedAt: ReadonlyMap<string, number>): Array<{ order: Order; type: OrderWebhook['type'] }> {
  const picked: Array<{ order: Order; type: OrderWebhook['type'] }> = [];
  for (const order of listed) {
    const known = knownUpdatedAt.get(order.id);
    // An unreadable updatedAt (NaN) never counts as known: taking it in again is harmless.
    if (known !== undefined && known >= Date.parse(order.updatedAt)) continue;
    picked.push({ order, type: known === undefined ? 'order.created' : 'order.updated' });
  }
  return picked;
}

async function takeInPage(trx: Transaction<Database>, orders: Order[], logger: Logger, now: number): Promise<number> {
  if (orders.length === 0) return 0;
  const rows = await trx
    .selectFrom('orders')
    .select(['order_id', 'partner_updated_at'])
    .where('order_id', 'in', [...new Set(orders.map((o) => o.id))])
    .execute();
  let taken = 0;
  for (const { order, type } of ordersToTakeIn(orders, new Map(rows.map((r) => [r.order_id, r.partner_updated_at])))) {
    // The inbox body is what the lost webhook would have carried, so the order's history reads the same.
    const body: OrderWebhook = { type, timestamp: new Date(now).toISOString(), data: order };
    const accepted = await takeInPartnerOrder(
      trx,
      { dedupeKey: `partner-sweep:${order.id}:${order.updatedAt}`, rawBody: JSON.stringify(body), order },
      now,
    );
    if (!accepted.accepted) continue;
    taken++;
    logger.info('partner.sweep.order_taken_in', { orderId: order.id, type, status: order.status, inboxId: accepted.inboxId });
  }
  return taken;
}

/** The kept state, or the first run's: see PARTNER_SWEEP_FIRST_SPAN_MS. */
async function loadState(deps: PartnerSweepDeps, now: number): Promise<SweepState> {
  const saved = await readKv(deps.db.kysely, STATE_KEY);
  if (saved !== undefined) {
    const parsed = stateSchema.safeParse(safeJson(saved));
    if (parsed.success) return parsed.data;
    deps.logger.warn('partner.sweep.state_unreadable', { key: STATE_KEY });
  }
  const newest = await deps.db.kysely.selectFrom('orders').select((eb) => eb.fn.max('partner_updated_at').as('at')).executeTakeFirst();
  const newestKnown = newest?.at == null ? Infinity : Number(newest.at);
  return { mark: Math.min(now - PARTNER_SWEEP_FIRST_SPAN_MS, newestKnown), resume: null };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * A periodic job (src/queue/schedule.ts): one key, so several instances never sweep at
 * once; each run queues the next, one interval on, or at once while a backlog remains,
 * sooner with backoff after a failure; none is ever dead.
 */
export function partnerSweepHandler(deps: PartnerSweepDeps & { intervalMs: number; retryBaseMs?: number }): SyncJobHandler<typeof PARTNER_SWEEP> {
  return syncJobs.handler(
    PARTNER_SWEEP,
    periodicRun(deps, partnerSweepSchedule(deps.intervalMs, deps.retryBaseMs), async () => ({ again: (await partnerSweepOnce(deps)).more })),
  );
}

/** The partner sweep's schedule; an interval of 0 turns it off. */
export function partnerSweepSchedule(intervalMs: number, retryBaseMs?: number): Schedule {
  return { kind: PARTNER_SWEEP, key: 'partner-sweep', intervalMs, retryBaseMs };
}

/** At start: the waiting partner sweep, created or re-timed (see startSchedule). */
export async function schedulePartnerSweep(db: Db, intervalMs: number, now = Date.now(), logger?: Logger): Promise<void> {
  await startSchedule(db, partnerSweepSchedule(intervalMs), logger, now);
}
