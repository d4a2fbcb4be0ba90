/**
 * What limits a figure whose goal is missed, and what it would take. Written from the
 * profiles, query plans and counts the harness gathers (they are printed under "Evidence
 * gathered in this run" in the same report, with this run's numbers); kept here so the
 * generated report carries them. A note appears only when its figure misses its goal.
 */

const INGEST_CPU = [
  'What limits it: the bridge\'s one JavaScript thread, and on a shared machine the cores it gets. Under the closed loop throughput is 1 ÷ (CPU per webhook) while the profile below shows the thread busy; a busy share well under 100% means the machine (the load generator, PostgreSQL, other processes) kept it waiting, and the ratio measures that too. The bare handler pays for express, reading the body and answering; on top of that the bridge pays for the signature (standardwebhooks, fast-sha256), zod, the winston log line and the durable write. The write is the accept transaction as statements prepared once per connection (src/inbox/accept-statements.ts: four on SQLite, one data-modifying CTE per group on PostgreSQL) and shared among the webhooks that arrive together (group commit, src/inbox/group-commit.ts; the facts above give the webhooks per commit): its lines are better-sqlite3 (`sqliteTransaction`, SQLite\'s own work and the commit), src/inbox/accept-statements.ts, and pg/pg-protocol. Express, router, etag and raw-body, the same code as the bare handler\'s, and `writev` (the answer\'s write) are most of the rest.',
  'What it would take: less CPU per webhook beyond the bare handler\'s. Of the product\'s own share, the log line (winston, redact) and the signature are what is left to trim once the write is prepared and grouped; express\'s own per-request cost is the same as the baseline\'s. On a machine whose cores are busy with other work, the ratio also depends on how the scheduler shares them between the bridge, its database and the load generator: measure on a quiet machine before concluding.',
];

const NOTES: Record<string, string[]> = {
  '1a': INGEST_CPU,
  '1d': [
    'What limits it: queueing behind CPU. At 500 webhooks/s the bridge\'s thread is busy for the share of each second given by the profile below (CPU per webhook × 500); a request that arrives while earlier ones are being handled waits for them, and garbage collection (its line in the profile) pauses everything in turn. Paced evenly, webhooks mostly arrive alone, so group commit shares little here: each pays its own commit, a WAL write of every page the transaction changed (the durability fact above counts them; with synchronous=NORMAL no fsync), on the event loop, as better-sqlite3 is synchronous. The bare handler, measured the same way, shows the floor of this machine (server and load generator share its cores): when its own p99 is several milliseconds, the machine, not the bridge, sets the tail.',
    'What it would take: less CPU per webhook, as for figure 1a (at half the CPU per webhook, 500/s keeps the thread half as busy and the queueing tail shrinks accordingly), and a machine whose cores are not shared with other work.',
  ],
  '1f': [
    'What limits it: the bridge\'s thread and the PostgreSQL backend share the machine\'s cores with the load generator. Each group of webhooks is one statement and one round trip (src/inbox/accept-statements.ts), one group written at a time; a webhook waits for the group being written, then for its own, so its latency is about two round trips plus the commit\'s WAL flush, plus whatever queue forms when arrivals outpace the bridge\'s throughput (figure 1b).',
    'What it would take: the round trip and the WAL flush are PostgreSQL\'s (synchronous_commit on); on a quiet machine they are well under a millisecond each. Beyond that, the CPU per webhook of figure 1b.',
  ],
  '2a': [
    'What limits it: batch size. A new user\'s order costs one contact search plus its share of a POST /api/v4/leads/complex; that share is 1/50 only when the worker takes 50 orders at once. The worker wakes on every accepted webhook and leases what has arrived so far, and order.sync jobs have no gathering window (only deal.reconcile does), so orders that trickle in (or a small burst) get small batches. See the endpoint counts in "How each figure is measured".',
    'What it would take: a short gathering window for order.sync (as deal.reconcile has, RECONCILE_GATHER_MS) so a batch waits up to a second to fill.',
  ],
  '2c': [
    'What limits it: batch size, as for 2a: stage events share one GET /api/v4/leads per batch of up to 50 deals, gathered for one second (RECONCILE_GATHER_MS). See the endpoint counts in "How each figure is measured".',
  ],
  '3a': [
    'What limits it: the limiter\'s guarantee. src/amo/rate-limiter.ts keeps a slot busy from a request\'s start until one window plus a 50 ms margin after its answer arrived, which makes "never more than the limit in any one-second window" hold whatever the latencies. Every group of `limit` consecutive calls therefore spans at least 1050 ms plus a request\'s duration, so the best possible use is 1000 ÷ (1050 + duration) of the limit: 0.952 with instant answers, less with real ones. The pacing line and the evidence below show the measured spans and durations; requests waited for slots throughout, so the limiter, not the work, set the pace.',
    'What it would take: a smaller margin (10–20 ms; it covers timer granularity and clock rate, not latency) would allow up to 0.98–0.99; counting a slot from the moment the answer\'s headers arrive instead of its last byte trims a little more. Anything beyond gives up part of the guarantee that amoCRM never sees more than the limit in a window, which the design chose over the last few percent of throughput.',
  ],
  '3b': [
    'What limits it: see the calls listed under "Evidence gathered in this run": the requests amoCRM (the simulator) counted in the one-second window before each 429, by arrival. If more than the limit of them are the bridge\'s own, its limiter let them through closer together than a window plus its margin, as the simulator saw them (a delay between the limiter\'s clock and the server\'s that the 50 ms margin did not cover); a call by any other client of the same integration in that window takes a slot the bridge does not know about.',
    'What it would take: for the first, a wider margin in src/amo/rate-limiter.ts (at the cost of figure 3a); for the second, every client of the integration drawing on the one shared limiter (rate_slots on PostgreSQL).',
  ],
  '4b': [
    'What limits it: see the lease statement\'s plan under "Evidence gathered in this run".',
  ],
  '4c': [
    'What limits it: the planner\'s statistics. Right after a backlog forms (here a bulk insert; in production a burst or an outage), PostgreSQL still plans the lease statement with the statistics of the small table: the plan below estimates a few hundred candidate rows, then reads all 100,000 waiting jobs through jobs_due, probes jobs_key once for each of them (the "no earlier unfinished job of this key" test) and sorts them all by id (on disk) to keep 50 — hundreds of milliseconds per lease instead of a few. Once ANALYZE has run (autovacuum does it after about 10% of the table changed, checking every autovacuum_naptime, 1 minute by default) the same statement walks jobs_pkey in id order and stops after 50 (figure 4b: no slowdown). So the slowdown lasts until the next autoanalyze, and recurs each time the backlog jumps.',
    'What it would take: a lease whose cost does not depend on statistics or on how many jobs wait — an index in the lease\'s own order, `create index … on jobs (id) where status in (\'queued\', \'retrying\')`, with the statement written so the planner has no cheaper-looking alternative (candidates taken by id through that index with a LIMIT first, the per-key test applied to those only); or `ANALYZE jobs` when a large backlog appears. The plan of 4b also walks jobs_pkey from the lowest id, reading every finished job older than the oldest waiting one, and finished jobs are never deleted: a long-lived database needs that index (or a purge of done jobs) for 4b to stay flat too.',
  ],
  '5a': [
    'What limits it: V8\'s heap, not the waiting jobs. After a full garbage collection the bridge\'s V8 heap holds about what it held idle: the 10,000 waiting jobs are rows in the database, not objects in memory. What stays resident is the heap V8 grew to while absorbing the burst (committed semi-spaces and old space): garbage collected, but not handed back to the operating system. The evidence below measures the same compiled bridge with smaller V8 heap limits.',
    'What it would take: cap V8\'s heap (`node --max-semi-space-size=4 --max-old-space-size=96 dist/main.js`, or the same flags in NODE_OPTIONS of the service unit), as measured below, with the rate at which it accepted webhooks beside the uncapped one.',
  ],
};
NOTES['1b'] = INGEST_CPU;
NOTES['5b'] = ['As for 5a: the heap V8 keeps after the burst, whatever the database; see 5a and its evidence.'];

export function notesFor(id: string): string[] {
  return NOTES[id] ?? ['No analysis recorded for this figure: see the evidence gathered in this run below.'];
}
