import { setTimeout as sleep } from 'node:timers/promises';
import type { Order } from '../src/partner/schema.js';
import { DEFAULT_MARGIN_MS } from '../src/amo/rate-limiter.js';
import type { RequestRecord } from '../src/sandbox/amo/index.js';
import type { BenchConfig } from './config.js';
import { startBridgeProcess } from './lib/bridge-process.js';
import { benchDir, freshDatabase } from './lib/databases.js';
import { figure, type Figure, type SectionResult } from './lib/report.js';
import { type Simulators, startSimulators } from './lib/simulators.js';
import { summarize, waitUntil } from './lib/stats.js';
import { naiveCounts } from './naive-amo.js';

/**
 * Figures 2 and 3: how many amoCRM calls the bridge spends, and how much of amoCRM's rate
 * limit it uses without crossing it. The bridge runs as operators run it (its own process,
 * worker on, SQLite) against both simulators in this process; the amoCRM simulator
 * enforces the limit and counts every call it receives.
 *
 * 1. new-user burst: `orders` orders of users amoCRM has never seen, sent at once;
 * 2. returning burst: one more order of each of those users;
 * 3. stage burst: each first order's deal moved to "Recorded for trial" by staff, which
 *    fires amoCRM webhooks at the bridge; done when every order is approved.
 */

const API = '/api/v4';
/** Figure 3a's goal: share of amoCRM's limit used in the new-user burst. */
const RATE_USE_GOAL = 0.97;

/** Sends the partner's order webhooks with a few in flight at once (a burst, not a trickle). */
async function placeOrders(sims: Simulators, users: string[], tag: string): Promise<Order[]> {
  const out: Order[] = new Array(users.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < users.length) {
        const i = next++;
        out[i] = await sims.partner.createOrderAsUser({
          userId: users[i]!,
          customer: { firstName: 'Ольга', lastName: `Смирнова ${tag}${i}`, phone: `+7903${String(i).padStart(7, '0')}` },
        });
      }
    }),
  );
  const refused = sims.partner.deliveries.filter((d) => d.status !== 202);
  if (refused.length > 0) throw new Error(`the bridge refused ${refused.length} order webhooks: ${JSON.stringify(refused.slice(0, 3))}`);
  return out;
}

interface Burst {
  calls: number;
  byEndpoint: Record<string, number>;
  tooMany: number;
  /** First to last call, ms. */
  spanMs: number;
  wallMs: number;
}

function burstOf(records: readonly RequestRecord[], wallMs: number): Burst {
  const api = records.filter((r) => r.path.startsWith(API));
  const byEndpoint: Record<string, number> = {};
  for (const r of api) {
    const key = `${r.method} ${r.path.replace(/\/\d+/g, '/{id}')}`;
    byEndpoint[key] = (byEndpoint[key] ?? 0) + 1;
  }
  const times = api.map((r) => r.at).sort((a, b) => a - b);
  return {
    calls: api.length,
    byEndpoint,
    tooMany: api.filter((r) => r.status === 429).length,
    spanMs: times.length > 1 ? times[times.length - 1]! - times[0]! : 0,
    wallMs,
  };
}

export async function amoSection(config: BenchConfig): Promise<SectionResult> {
  const started = Date.now();
  const { orders, limitRps, rateFactor, naiveOrders } = config.amo;
  const limit = limitRps * rateFactor;
  const facts: string[] = [];

  // The naive baseline, against a simulator of its own with no limit to wait for.
  // Its returning users come back at once; their contacts must be findable, as they would
  // be hours later, or the baseline would count creates of duplicates, not lookups.
  const naiveSims = await startSimulators({ rateLimitRps: 1_000_000, searchIndexDelayMs: 0 });
  const naive = await naiveCounts(naiveSims, naiveOrders).finally(() => naiveSims.close());

  const sims = await startSimulators({ rateLimitRps: limit });
  const db = await freshDatabase('sqlite', 'amo');
  const dir = benchDir('amo');
  const bridge = await startBridgeProcess({
    databaseUrl: db.url,
    amoUrl: sims.amoUrl,
    partnerUrl: sims.partnerUrl,
    dir,
    worker: true,
    env: { AMO_RATE_LIMIT_RPS: String(limit), LOG_LEVEL: 'warn' },
  }).catch(async (error: unknown) => {
    await Promise.all([sims.close(), db.drop()]);
    throw error;
  });
  let first: Burst;
  let returning: Burst;
  let stage: Burst;
  let stageLeadReads: number;
  let firstRecords: RequestRecord[] = [];
  let bridgeMetrics = '';
  let metricsBefore = '';
  try {
    sims.partner.setBridgeWebhookUrl(`${bridge.url}/webhooks/partner`);
    await sims.subscribe(bridge.url);
    // That call was ours, not the bridge's: let it leave amoCRM's one-second window first.
    await sleep(1200);
    const { amo, partner } = sims;
    // Minimum time the bursts need at the limit, and room for everything else.
    const boundMs = (calls: number) => Math.ceil((calls / limit) * 1000 * 2) + 60_000;
    const linked = (list: Order[]) => () => list.every((o) => partner.orders.get(o.id)?.additionalInfo);

    const users = Array.from({ length: orders }, (_, i) => `bench-user-${i}`);
    metricsBefore = await fetch(`${bridge.url}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());
    amo.stats.reset();
    let t = Date.now();
    const firstOrders = await placeOrders(sims, users, 'a');
    await waitUntil('every new-user order to be linked', linked(firstOrders), boundMs(orders * 1.1), 100);
    first = burstOf(amo.stats.requests, Date.now() - t);
    firstRecords = [...amo.stats.requests];
    bridgeMetrics = await fetch(`${bridge.url}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text());

    amo.stats.reset();
    t = Date.now();
    const secondOrders = await placeOrders(sims, users, 'b');
    await waitUntil('every returning-user order to be linked', linked(secondOrders), boundMs(orders * 0.1), 100);
    returning = burstOf(amo.stats.requests, Date.now() - t);

    amo.stats.reset();
    t = Date.now();
    const approved = () => firstOrders.every((o) => partner.orders.get(o.id)?.status === 'approved');
    const deals = firstOrders.map((o) => partner.orders.get(o.id)!.additionalInfo!.externalId);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < deals.length) await amo.moveLead(deals[next++]!, { statusName: 'Recorded for trial' });
      }),
    );
    await amo.webhooksIdle();
    await waitUntil('every order to be approved', approved, boundMs(orders * 0.1), 100);
    stage = burstOf(amo.stats.requests, Date.now() - t);
    stageLeadReads = amo.stats.count({ method: 'GET', pathPrefix: '/api/v4/leads' });
    if (amo.state.contacts.size !== orders || amo.state.leads.size !== orders * 2) {
      throw new Error(`expected ${orders} contacts and ${orders * 2} deals, amoCRM holds ${amo.state.contacts.size} and ${amo.state.leads.size}`);
    }
  } finally {
    await bridge.process.stop();
    await sims.close();
    await db.drop();
  }

  // n calls in a window-limited stream: n ÷ (first-to-last span + one interval).
  const achieved = first.calls / (first.spanMs / 1000 + 1 / limit);
  const pacing = pacingOf(firstRecords, limit, metricsBefore, bridgeMetrics);
  const evidence: string[] = [];
  const figures: Figure[] = [
    figure({
      id: '2a',
      title: `amoCRM calls per new-user order (${orders}-order burst)`,
      measured: { value: first.calls / orders, unit: 'calls' },
      baseline: { value: naive.newUser, unit: 'calls', label: 'naive client' },
      goal: { text: '≤ 1.05', met: first.calls / orders <= 1.05 },
    }),
    figure({
      id: '2b',
      title: `amoCRM calls per returning-user order (${orders}-order burst)`,
      measured: { value: returning.calls / orders, unit: 'calls' },
      baseline: { value: naive.returning, unit: 'calls', label: 'naive client' },
      goal: { text: 'report', met: null },
    }),
    figure({
      id: '2c',
      title: `amoCRM calls per stage event (${orders} stage changes)`,
      measured: { value: stage.calls / orders, unit: 'calls' },
      baseline: { value: naive.stageEvent, unit: 'calls', label: 'naive client' },
      goal: { text: '≤ 0.1', met: stage.calls / orders <= 0.1 },
    }),
    figure({
      id: '3a',
      title: `Rate-limit use in the new-user burst (limit ${limitRps}×${rateFactor})`,
      measured: { value: achieved, unit: 'calls/s' },
      baseline: { value: limit, unit: 'calls/s', label: 'the limit' },
      goal: { text: `ratio ≥ ${RATE_USE_GOAL}`, met: achieved / limit >= RATE_USE_GOAL },
    }),
    figure({
      id: '3b',
      title: '429 answers in the new-user burst',
      measured: { value: first.tooMany, unit: '' },
      baseline: { value: first.calls, unit: 'calls', label: 'calls made' },
      goal: { text: '0', met: first.tooMany === 0 },
    }),
  ];
  facts.push(
    `Bridge: \`node --import tsx src/main.ts\` (worker on, SQLite, LOG_LEVEL warn, AMO_RATE_LIMIT_RPS=${limit}); amoCRM simulator limit ${limit} requests in any one-second window (${limitRps} × factor ${rateFactor}).`,
    `New-user burst: ${orders} orders sent at once, all linked in ${(first.wallMs / 1000).toFixed(1)} s; ${first.calls} calls (${endpoints(first)}); calls from first to last over ${(first.spanMs / 1000).toFixed(1)} s. Achieved rate = calls ÷ (that span + 1/limit s).`,
    `Returning burst: a second order for each of the ${orders} users, linked in ${(returning.wallMs / 1000).toFixed(1)} s; ${returning.calls} calls (${endpoints(returning)}).`,
    `Stage burst: ${orders} deals moved by staff (amoCRM webhooks to the bridge), all orders approved in ${(stage.wallMs / 1000).toFixed(1)} s; ${stage.calls} calls, ${stageLeadReads} of them GET /api/v4/leads (${endpoints(stage)}).`,
    pacing.spacing.count > 0
      ? `Pacing in the new-user burst: call i and call i+${limit} arrived ${pacing.spacing.p10.toFixed(0)} / ${pacing.spacing.p50.toFixed(0)} / ${pacing.spacing.p90.toFixed(0)} ms apart (p10 / median / p90; at the limit it would be 1000 ms). The bridge's own metrics: ${pacing.requests} amoCRM requests, ${pacing.meanRequestMs.toFixed(1)} ms mean duration, ${pacing.meanWaitMs.toFixed(0)} ms mean wait for the limiter.`
      : `Pacing: fewer than ${limit + 1} calls, too few to fill one window.`,
    `Naive baseline (${naiveOrders} orders on a simulator of its own): search contact, create contact if absent, create deal — ${naive.newUser.toFixed(2)} calls per new-user order, ${naive.returning.toFixed(2)} per returning one; one GET /api/v4/leads/{id} per stage event.`,
  );
  if (first.tooMany > 0) evidence.push(tooManyEvidence(firstRecords, limit));
  if (achieved / limit < RATE_USE_GOAL) {
    const span = 1000 + DEFAULT_MARGIN_MS;
    evidence.push(
      `Rate-limit use: in the new-user burst every ${limit} consecutive calls spanned ${pacing.spacing.p50.toFixed(0)} ms at the median (p10 ${pacing.spacing.p10.toFixed(0)} ms), not 1000 ms. src/amo/rate-limiter.ts keeps each slot busy from the request's start until one window plus a ${DEFAULT_MARGIN_MS} ms margin after its answer arrived (the guarantee that amoCRM never sees more than the limit in any window, whatever the latencies), so ${limit} calls need at least 1000 + ${DEFAULT_MARGIN_MS} ms + the request's duration (${pacing.meanRequestMs.toFixed(1)} ms mean here, from amobridge_amo_request_seconds): at most ${limit} ÷ ${((span + pacing.meanRequestMs) / 1000).toFixed(3)} s = ${(limit / ((span + pacing.meanRequestMs) / 1000)).toFixed(2)} calls/s, ${(1000 / (span + pacing.meanRequestMs)).toFixed(3)} of the limit. Requests waited ${pacing.meanWaitMs.toFixed(0)} ms on average for a slot: the limiter, not the work, set the pace.`,
    );
  }
  const faulty = await faultyBurst(config);
  const faultyCalls = faulty.calls / faulty.orders;
  figures.push(
    figure({
      id: '2d',
      title: `amoCRM calls per new-user order with ${Math.round(faulty.rate * 100)} % of answers failing (${faulty.orders}-order burst)`,
      measured: { value: faultyCalls, unit: 'calls' },
      baseline: { value: first.calls / orders, unit: 'calls', label: 'no failures (2a)' },
      goal: { text: `≤ ${FAULTY_GOAL}, 0 duplicates`, met: faultyCalls <= FAULTY_GOAL && faulty.duplicates === 0 },
    }),
  );
  facts.push(
    `Failing burst (2d): a bridge and simulators of their own (same settings, AMO_SEARCH_SETTLE_SECONDS=${FAULTY_SETTLE_SECONDS}, the simulator's search index trailing by 2 s); ${faulty.orders} orders of new users sent at once while ${Math.round(faulty.rate * 100)} % of amoCRM's /api/v4 answers fail at random, each as a 503 (the gateway's page, nothing done), a timeout (never answered; the bridge gives up after 15 s) or, for a write, a connection cut after the write was carried out. All linked in ${(faulty.wallMs / 1000).toFixed(1)} s; ${faulty.calls} calls (${faulty.failed} of them failed: ${faulty.byFailure}; by endpoint: ${faulty.endpoints}); ${faulty.contacts} contacts and ${faulty.leads} deals in amoCRM for ${faulty.orders} users and orders: ${faulty.duplicates} duplicates.`,
  );
  return { name: 'amoCRM call efficiency and rate-limit use', seconds: (Date.now() - started) / 1000, figures, facts, evidence };
}

/** Figure 2d's goal: calls per new-user order with a fifth of the answers failing. */
const FAULTY_GOAL = 1.15;
/** The bridge's search settle time in the failing burst: a little over the simulator's index delay (2 s). */
const FAULTY_SETTLE_SECONDS = 3;

interface FaultyBurst {
  orders: number;
  rate: number;
  calls: number;
  failed: number;
  byFailure: string;
  endpoints: string;
  contacts: number;
  leads: number;
  duplicates: number;
  wallMs: number;
}

/**
 * Figure 2d: new users' orders while a share of amoCRM's answers fail (503s, timeouts and
 * writes whose answer is lost). Every call counts, answered or not; a duplicate is a
 * second contact for a user or a second deal for an order.
 */
async function faultyBurst(config: BenchConfig): Promise<FaultyBurst> {
  const { faultOrders: orders, faultRate: rate, limitRps, rateFactor } = config.amo;
  const limit = limitRps * rateFactor;
  const sims = await startSimulators({ rateLimitRps: limit });
  const db = await freshDatabase('sqlite', 'amo_faults');
  const bridge = await startBridgeProcess({
    databaseUrl: db.url,
    amoUrl: sims.amoUrl,
    partnerUrl: sims.partnerUrl,
    dir: benchDir('amo-faults'),
    worker: true,
    env: { AMO_RATE_LIMIT_RPS: String(limit), LOG_LEVEL: 'warn', AMO_SEARCH_SETTLE_SECONDS: String(FAULTY_SETTLE_SECONDS) },
  }).catch(async (error: unknown) => {
    await Promise.all([sims.close(), db.drop()]);
    throw error;
  });
  try {
    const { amo, partner } = sims;
    sims.partner.setBridgeWebhookUrl(`${bridge.url}/webhooks/partner`);
    await sleep(1200);
    amo.stats.reset();
    amo.faults.flakyRate = rate;
    const t = Date.now();
    const users = Array.from({ length: orders }, (_, i) => `faulty-user-${i}`);
    const placed = await placeOrders(sims, users, 'f');
    await waitUntil('every order of the failing burst to be linked', () => placed.every((o) => partner.orders.get(o.id)?.additionalInfo), 600_000, 200);
    const wallMs = Date.now() - t;
    amo.faults.flakyRate = 0;
    const answered = amo.stats.requests.filter((r) => r.path.startsWith(API));
    const lost = amo.stats.unanswered.filter((r) => r.path.startsWith(API));
    const all = [...answered, ...lost];
    const unavailable = answered.filter((r) => r.status === 503).length;
    const timeouts = lost.filter((r) => r.method === 'GET').length;
    const cut = lost.length - timeouts;
    const contacts = amo.state.contacts.size;
    const leads = amo.state.leads.size;
    return {
      orders,
      rate,
      calls: all.length,
      failed: unavailable + lost.length,
      byFailure: `${unavailable} × 503, ${lost.length} unanswered (${timeouts} reads, ${cut} writes)`,
      endpoints: endpoints(burstOf(all, wallMs)),
      contacts,
      leads,
      duplicates: Math.max(0, contacts - orders) + Math.max(0, leads - orders),
      wallMs,
    };
  } finally {
    await bridge.process.stop();
    await sims.close();
    await db.drop();
  }
}

/** How the calls were spaced, and what the bridge itself measured about them (between two scrapes of /metrics). */
function pacingOf(records: readonly RequestRecord[], limit: number, before: string, after: string) {
  const times = records.filter((r) => r.path.startsWith(API)).map((r) => r.at).sort((a, b) => a - b);
  const spans: number[] = [];
  for (let i = 0; i + limit < times.length; i++) spans.push(times[i + limit]! - times[i]!);
  const total = (metrics: string, name: string) =>
    [...metrics.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
  const sum = (name: string) => total(after, name) - total(before, name);
  const requests = sum('amobridge_amo_request_seconds_count');
  const waits = sum('amobridge_amo_rate_limit_wait_seconds_count');
  return {
    spacing: summarize(spans),
    requests,
    meanRequestMs: requests ? (sum('amobridge_amo_request_seconds_sum') / requests) * 1000 : Number.NaN,
    meanWaitMs: waits ? (sum('amobridge_amo_rate_limit_wait_seconds_sum') / waits) * 1000 : Number.NaN,
  };
}

/** The calls amoCRM counted in the window before each 429, as the simulator saw them. */
function tooManyEvidence(records: readonly RequestRecord[], limit: number): string {
  const api = records.filter((r) => r.path.startsWith(API)).sort((a, b) => a.at - b.at);
  const out = [`429 answers in the new-user burst (limit ${limit} in any 1000 ms window, counted by arrival at the simulator):`, ''];
  for (const hit of api.filter((r) => r.status === 429)) {
    const window = api.filter((r) => r.at > hit.at - 1000 && r.at <= hit.at);
    out.push(`- at +${hit.at - api[0]!.at} ms: ${window.map((r) => `${r.method} ${r.path.replace(/\/\d+/g, '/{id}')} ${r.status} at −${hit.at - r.at} ms`).join('; ')}`);
  }
  return out.join('\n');
}

function endpoints(burst: Burst): string {
  const list = Object.entries(burst.byEndpoint).sort((a, b) => b[1] - a[1]);
  return list.length ? list.map(([k, v]) => `${v} × ${k}`).join(', ') : 'none';
}
