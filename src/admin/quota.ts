import { type Kysely, sql } from 'kysely';
import { type CallOutcome, type Database, type Peer, PEERS } from '../db/schema.js';

/**
 * GET /admin/quota: how hard the bridge leans on amoCRM and Company 1, from peer_calls
 * (src/db/peer-calls.ts). Per peer: calls in the last minute, hour and day by endpoint and
 * outcome, the 429s among them, calls per order over 7 days (and the orders that took the
 * most), and how long a request would wait for the rate limiter now (Company 1 has none).
 */

export interface QuotaSources {
  /** Writes the calls still buffered, so the report includes them. */
  flush(): Promise<void>;
  /** amoCRM's rate limiter: the wait an acquire would face now (ms). */
  amoLimiterWaitMs(): Promise<number>;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
export const PER_ORDER_DAYS = 7;
const TOP_ORDERS = 10;

const WINDOWS = { lastMinute: MINUTE, lastHour: HOUR, lastDay: DAY } as const;
type Window = keyof typeof WINDOWS;

export interface EndpointCalls {
  endpoint: string;
  outcome: CallOutcome;
  calls: number;
}

export interface PeerQuota {
  calls: Record<Window, { total: number; byEndpoint: EndpointCalls[] }>;
  /** Answers 429 (Too Many Requests) in each window. */
  rateLimited: Record<Window, number>;
  perOrder: {
    days: number;
    /** Orders that had calls made for them alone. */
    orders: number;
    /** Those calls. */
    calls: number;
    average: number | null;
    /** Calls made for several orders at once (batched creates and reads) or none (sweeps, probes). */
    shared: number;
    top: Array<{ orderId: string; calls: number }>;
  };
  /** How long a request would wait for the rate limiter now (ms); null: no limiter. */
  limiterWaitMs: number | null;
}

export type QuotaReport = { generatedAt: string } & Record<Peer, PeerQuota>;

export async function readQuota(db: Kysely<Database>, sources: QuotaSources, now = Date.now()): Promise<QuotaReport> {
  await sources.flush();
  const [windows, perOrder, top, amoWait] = await Promise.all([
    callsByWindow(db, now),
    ordersSummary(db, now),
    Promise.all(PEERS.map((peer) => topOrders(db, peer, now))),
    sources.amoLimiterWaitMs(),
  ]);
  const report = { generatedAt: new Date(now).toISOString() } as QuotaReport;
  PEERS.forEach((peer, i) => {
    const rows = windows.filter((r) => r.peer === peer);
    const summary = perOrder.find((r) => r.peer === peer);
    const calls = {} as PeerQuota['calls'];
    const rateLimited = {} as PeerQuota['rateLimited'];
    for (const window of Object.keys(WINDOWS) as Window[]) {
      const byEndpoint = rows
        .map((r) => ({ endpoint: r.endpoint, outcome: r.outcome, calls: Number(r[window]) }))
        .filter((r) => r.calls > 0)
        .sort((a, b) => b.calls - a.calls || a.endpoint.localeCompare(b.endpoint) || a.outcome.localeCompare(b.outcome));
      calls[window] = { total: byEndpoint.reduce((n, r) => n + r.calls, 0), byEndpoint };
      rateLimited[window] = byEndpoint.filter((r) => r.outcome === '429').reduce((n, r) => n + r.calls, 0);
    }
    const orders = Number(summary?.orders ?? 0);
    const attributed = Number(summary?.attributed ?? 0);
    report[peer] = {
      calls,
      rateLimited,
      perOrder: {
        days: PER_ORDER_DAYS,
        orders,
        calls: attributed,
        average: orders > 0 ? Math.round((attributed / orders) * 100) / 100 : null,
        shared: Number(summary?.shared ?? 0),
        top: top[i]!,
      },
      limiterWaitMs: peer === 'amocrm' ? amoWait : null,
    };
  });
  return report;
}

/** One pass over the last day: each window's count is a conditional sum. */
function callsByWindow(db: Kysely<Database>, now: number) {
  const within = (ms: number) => sql<number>`sum(case when at >= ${now - ms} then 1 else 0 end)`;
  return db
    .selectFrom('peer_calls')
    .select(['peer', 'endpoint', 'outcome', within(MINUTE).as('lastMinute'), within(HOUR).as('lastHour'), within(DAY).as('lastDay')])
    .where('at', '>=', now - DAY)
    .where('at', '<=', now)
    .groupBy(['peer', 'endpoint', 'outcome'])
    .execute();
}

function ordersSummary(db: Kysely<Database>, now: number) {
  return db
    .selectFrom('peer_calls')
    .select([
      'peer',
      sql<number>`count(distinct order_id)`.as('orders'),
      sql<number>`sum(case when order_id is null then 0 else 1 end)`.as('attributed'),
      sql<number>`sum(case when order_id is null then 1 else 0 end)`.as('shared'),
    ])
    .where('at', '>=', now - PER_ORDER_DAYS * DAY)
    .where('at', '<=', now)
    .groupBy('peer')
    .execute();
}

async function topOrders(db: Kysely<Database>, peer: Peer, now: number) {
  const rows = await db
    .selectFrom('peer_calls')
    .select(['order_id', sql<number>`count(*)`.as('calls')])
    .where('peer', '=', peer)
    .where('order_id', 'is not', null)
    .where('at', '>=', now - PER_ORDER_DAYS * DAY)
    .where('at', '<=', now)
    .groupBy('order_id')
    .orderBy(sql`count(*)`, 'desc')
    .orderBy('order_id')
    .limit(TOP_ORDERS)
    .execute();
  return rows.map((r) => ({ orderId: r.order_id!, calls: Number(r.calls) }));
}
