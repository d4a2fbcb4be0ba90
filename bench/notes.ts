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
  '2d': [
    'What limits it: a new user\'s order needs one contact search (amoCRM cannot look up several users\' contacts by detmirUserId in one call: `query` is a full-text search for one term), and a search that fails must be made again. With a share p of the answers failing, independently of each other, the search alone costs 1 ÷ (1 − p) calls on average — 1.25 at 20 % — and the order\'s share of the creates (1/50 each, retried too) comes on top: about 1.28 calls per order is the floor of this design, above the goal. The facts above give the calls by endpoint: contact searches near 1.25 per order, the creates, and, per batch whose create failed, one listing of the deals created since (and one of the contacts, when the deals show the create made nothing: src/sync/intake.ts, findLostCreates). Before those listings such a batch cost a contact search and a deal search per order, twice when the search index had not caught up: 1.86 calls per order in a run of this figure before them (200 orders, the same faults). No duplicates: the create claims (src/sync/claims.ts) hold under 503s, timeouts and lost answers.',
    'What it would take: fewer than one contact search per new user — a local directory of amoCRM\'s contacts kept current by listing the contacts updated since the last listing (250 a call, read from the records, not the search index), so that a user absent from it needs no search — or failures that are not independent per request (an outage is retried as a whole, not call by call).',
  ],
  '3a': [
    'What limits it: the limiter\'s guarantee. src/amo/rate-limiter.ts keeps a slot busy from a request\'s start until one window plus a 15 ms margin after its answer arrived, which makes "never more than the limit in any one-second window" hold whatever the latencies. Every group of `limit` consecutive calls therefore spans at least 1015 ms plus a request\'s duration, so the best possible use is 1000 ÷ (1015 + duration) of the limit: 0.985 with instant answers, less with real ones. The pacing line and the evidence below show the measured spans and durations; if requests waited for slots throughout, the limiter, not the work, set the pace, and a group that spans more than 1015 ms plus the mean duration shows the extra time spent between an answer and the next request (timers, the worker\'s own turns).',
    'What it would take: counting a slot from the moment the answer\'s headers arrive instead of its last byte trims a little; a margin below 15 ms gains at most 1.5%. Anything beyond gives up part of the guarantee that amoCRM never sees more than the limit in a window, which the design chose over the last few percent of throughput.',
  ],
  '3b': [
    'What limits it: see the calls listed under "Evidence gathered in this run": the requests amoCRM (the simulator) counted in the one-second window before each 429, by arrival. If more than the limit of them are the bridge\'s own, its limiter let them through closer together than a window plus its margin, as the simulator saw them (a delay between the limiter\'s clock and the server\'s that the 15 ms margin did not cover); a call by any other client of the same integration in that window takes a slot the bridge does not know about.',
    'What it would take: for the first, a wider margin in src/amo/rate-limiter.ts (at the cost of figure 3a); for the second, every client of the integration drawing on the one shared limiter (rate_slots on PostgreSQL).',
  ],
  '4c': [
    'What limits it: not the lease\'s plan any more, whatever the statistics say. leaseJobs (src/queue/lease.ts) walks jobs_lease_order, an index of leasable jobs in id order (migration 012), for a window cut by a LIMIT, then leases those by primary key with one jobs_key probe each (the per-key FIFO test); the other terms are written so that no other index can answer them, so the planner has no cheaper-looking plan to choose even when it believes the queue empty (a VACUUM or ANALYZE taken while it was idle). The plans of both statements are under "Evidence gathered in this run": each reads about the window, with 1,000 waiting and with 100,000. test/queue-lease-order.test.ts pins those plans on both databases under exactly those statistics. A ratio below the goal with these plans comes from elsewhere: see the CPU profile (the per-job statements of completeJob and the worker\'s own work) and the load average of the run.',
  ],
  '4d': [
    'What limits it: the lease reads no finished job: its window comes from jobs_lease_order, whose rows are the leasable jobs only, and the per-key FIFO probe reads jobs_key, whose rows are the unfinished ones; completeJob and the lease\'s update reach their rows by primary key, whose depth grows with the logarithm of the table. The plans are under "Evidence gathered in this run". Retention (src/db/retention.ts) deletes finished jobs older than RETENTION oldest first through jobs_done, 500 a statement. A ratio below the goal with these plans comes from elsewhere: see the load average of the run and compare the time of one lease in the facts above.',
  ],
  '5a': [
    'What limits it: mostly what any Node.js process of this size holds before its first request. The evidence below lists the idle process\'s resident memory by mapping: the node binary\'s pages (file-backed, shared with every node process on the machine; a bare Node.js HTTP server, the baseline, already has most of them), then the anonymous memory — V8\'s heap with every module loaded at start (express, kysely, both database drivers, zod\'s schemas, winston, prom-client, amocrm-js, the webview), their compiled code, and what start-up (migrations, mappings) left in the heap. `npm start`\'s V8 flags (the facts above compare them with none) take the young generation and start-up garbage out; what remains is the modules.',
    'What it would take: loading less at start — only the database driver in use (src/db/connect.ts imports both pg and better-sqlite3), the amoCRM and webview modules only where they are used — each worth a few MB, as the RSS of importing each package alone shows; V8 flags beyond these (a smaller old space) trade a crash on a large answer for little.',
  ],
  '5b': [
    'What limits it: V8\'s heap under a burst, not the waiting jobs: after a full garbage collection the heap holds about what it held idle (the facts above), the 10,000 jobs being rows in the database. What stays resident is the heap V8 grew to while absorbing the burst and has not handed back yet. `npm start` caps the young generation (--max-semi-space-size=2), which is most of that growth without the cap (the facts above compare them).',
    'What it would take: a cap on the old generation too (--max-old-space-size), at the risk of an out-of-memory crash on an unusually large answer, or fewer objects per webhook (the ingest work of figure 1a).',
  ],
};
NOTES['1b'] = INGEST_CPU;
// The same lease serves every backlog and both databases.
NOTES['4a'] = NOTES['4c']!;
NOTES['4b'] = NOTES['4c']!;

export function notesFor(id: string): string[] {
  return NOTES[id] ?? ['No analysis recorded for this figure: see the evidence gathered in this run below.'];
}
