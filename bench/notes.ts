/**
 * What limits a figure whose goal is missed, and what it would take. Written from the
 * profiles, query plans and counts the harness gathers (they are printed under "Evidence
 * gathered in this run" in the same report, with this run's numbers); kept here so the
 * generated report carries them. A note appears only when its figure misses its goal.
 */

const INGEST_CPU = [
  'What limits it: the bridge\'s one JavaScript thread. Under the closed loop the profile below shows it busy almost all the time, so throughput is 1 ÷ (CPU per webhook). The bare handler pays for express, reading the body and answering too; on top of that the bridge pays, per webhook, for the durable write — kysely building and compiling the five statements of the accept transaction (BEGIN, INSERT inbox, INSERT orders … ON CONFLICT, INSERT jobs … ON CONFLICT, COMMIT), better-sqlite3 preparing each of them anew (`prepare`: kysely\'s SQLite driver keeps no statement cache) and SQLite running them (`executeQuery`\'s self time) — then the signature (standardwebhooks, fast-sha256), zod and the winston log line, a few percent each. The per-owner lines of the profile give each share in microseconds per webhook.',
  'What it would take: the ratio is the bare handler\'s CPU per request over the bridge\'s CPU per webhook, so 0.5 leaves the bridge one bare request\'s worth of CPU for everything beyond the bare handler: signature, validation, logging and the durable write together. The profile shows the write alone (kysely and better-sqlite3, SQLite\'s own work included) costs several times that. Bringing it near zero needs (1) cached prepared statements — the accept transaction as three statements prepared once and run in one better-sqlite3 transaction, not rebuilt by the query builder and re-prepared per webhook (the `prepare` line and most of kysely\'s share) — and (2) group commit: the webhooks that arrive within a millisecond or two written in one transaction and each answered after that commit (still persist, then acknowledge), which shares BEGIN/COMMIT and the per-call overhead. Whether (1) and (2) together reach 0.5 on this machine is an estimate from these shares, not a measurement; (1) alone does not.',
];

const NOTES: Record<string, string[]> = {
  '1a': INGEST_CPU,
  '1d': [
    'What limits it: queueing behind CPU. At 500 webhooks/s the bridge\'s thread is busy for the share of each second given by the profile below (CPU per webhook × 500); a request that arrives while earlier ones are being handled waits for them, and garbage collection (its line in the profile) pauses everything in turn. The bare handler, measured the same way, shows the floor of this machine (server and load generator share its cores).',
    'What it would take: the same reduction of CPU per webhook as for figure 1a: at half the CPU per webhook, 500/s keeps the thread half as busy and the queueing tail shrinks accordingly.',
  ],
  '1f': [
    'What limits it: at 500 webhooks/s the bridge on PostgreSQL works close to or beyond its throughput (figure 1b): each webhook costs five round trips to the server (BEGIN, three INSERTs, COMMIT) on a pooled connection plus the commit\'s WAL flush, and the PostgreSQL backends share the machine\'s cores with the bridge and the load generator. When arrivals outpace it, requests queue for the whole run and the latency is that queue.',
    'What it would take: fewer round trips per webhook — the three INSERTs as one statement (data-modifying CTEs, `with inbox as (insert … returning id), … insert into jobs …`), which PostgreSQL runs as its own transaction in one round trip — and the group commit described for 1a, which shares one commit among concurrent webhooks.',
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
