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
    'What limits it: not the lease\'s plan any more, whatever the statistics say. leaseJobs (src/queue/lease.ts) walks jobs_lease_order, an index of leasable jobs in id order (migration 011), for a window cut by a LIMIT, then leases those by primary key with one jobs_key probe each (the per-key FIFO test); the other terms are written so that no other index can answer them, so the planner has no cheaper-looking plan to choose even when it believes the queue empty (a VACUUM or ANALYZE taken while it was idle). The plans of both statements are under "Evidence gathered in this run": each reads about the window, with 1,000 waiting and with 100,000. test/queue-lease-order.test.ts pins those plans on both databases under exactly those statistics. A ratio below the goal with these plans comes from elsewhere: see the CPU profile (the per-job statements of completeJob and the worker\'s own work) and the load average of the run.',
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
