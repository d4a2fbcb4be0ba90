import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { orderWebhookSchema } from '../partner/schema.js';

/**
 * An order's timeline for the admin console, oldest first, derived from what the bridge
 * keeps anyway: webhooks (inbox rows, through the jobs they made), the jobs, the pictures
 * of the order (order_history), what each deal was given (deal_updates), and the order
 * log (job attempts, calls and what they changed, decisions). Nothing is written twice.
 * Each source is kept for RETENTION, so an older order shows what is left.
 */
export interface TimelineEntry {
  /** ISO 8601. */
  at: string;
  source: 'partner' | 'amocrm' | 'bridge' | 'webview' | 'admin';
  event: string;
  detail: Record<string, unknown>;
}

/** Facts read from the tables, in the shape the pure assembly takes. */
export interface TimelineFacts {
  jobs: Array<{ id: number; kind: string; payload: string; created_at: number; inbox_id: number | null }>;
  inbox: Array<{ id: number; source: 'partner' | 'amocrm'; dedupe_key: string; received_at: number; body: string }>;
  history: Array<{ partner_updated_at: number; recorded_at: number; source: string; status: string; cost: number | null; paid: number; subscription_status: string | null }>;
  dealUpdates: Array<{ kind: string; deal_id: number; noted_at: number | null; moved_at: number | null }>;
  log: Array<{ id: number; at: number; source: string; event: string; detail: string }>;
}

/**
 * Entries at the same millisecond read in cause-and-effect order: a webhook and the picture
 * it brought, what was decided (an admin's resume), then the job it queued.
 */
const RANK = { webhook: 0, picture: 1, log: 2, job: 3, deal: 4 } as const;

/** Assembles the timeline from its facts. Pure. */
export function assembleTimeline(facts: TimelineFacts): TimelineEntry[] {
  const out: Array<{ at: number; rank: number; seq: number; entry: Omit<TimelineEntry, 'at'> }> = [];
  const push = (at: number, rank: number, entry: Omit<TimelineEntry, 'at'>) => out.push({ at, rank, seq: out.length, entry });

  const inboxById = new Map(facts.inbox.map((row) => [row.id, row]));
  for (const job of facts.jobs) {
    const inbox = job.inbox_id === null ? undefined : inboxById.get(job.inbox_id);
    if (inbox) push(inbox.received_at, RANK.webhook, webhookEntry(inbox, job));
    push(job.created_at, RANK.job, { source: 'bridge', event: 'job.queued', detail: { jobId: job.id, kind: job.kind, ...(job.inbox_id !== null ? { inboxId: job.inbox_id } : {}) } });
  }

  // Pictures Company 1 (or the user, in the webview) showed; the bridge's own PATCHes are in the log with before → after.
  let previous: TimelineFacts['history'][number] | undefined;
  for (const picture of [...facts.history].sort((a, b) => a.partner_updated_at - b.partner_updated_at)) {
    const source = picture.source === 'webview' ? 'webview' : 'partner';
    if (picture.source !== 'bridge') {
      const state = (p: typeof picture) => ({ status: p.status, cost: p.cost === null ? null : Number(p.cost), paid: p.paid === 1, subscriptionStatus: p.subscription_status });
      const after = state(picture);
      const updatedAt = new Date(picture.partner_updated_at).toISOString();
      if (!previous) push(picture.recorded_at, RANK.picture, { source, event: 'order.recorded', detail: { updatedAt, ...after } });
      else {
        const before = state(previous);
        const changes = Object.fromEntries(
          (Object.keys(after) as Array<keyof typeof after>).filter((k) => after[k] !== before[k]).map((k) => [k, { before: before[k], after: after[k] }]),
        );
        push(picture.recorded_at, RANK.picture, { source, event: Object.keys(changes).length > 0 ? 'order.changed' : 'order.unchanged', detail: { updatedAt, changes } });
      }
    }
    previous = picture;
  }

  for (const update of facts.dealUpdates) {
    if (update.noted_at !== null) push(update.noted_at, RANK.deal, { source: 'amocrm', event: 'deal.noted', detail: { dealId: update.deal_id, kind: update.kind } });
    if (update.moved_at !== null) push(update.moved_at, RANK.deal, { source: 'amocrm', event: 'deal.moved', detail: { dealId: update.deal_id, kind: update.kind } });
  }

  for (const row of facts.log) {
    push(row.at, RANK.log, { source: sourceOf(row.source), event: row.event, detail: parseDetail(row.detail) });
  }

  return out
    .sort((a, b) => a.at - b.at || a.rank - b.rank || a.seq - b.seq)
    .map(({ at, entry }) => ({ at: new Date(at).toISOString(), ...entry }));
}

/** A webhook as received: its kind and what it said, without the customer. */
function webhookEntry(inbox: TimelineFacts['inbox'][number], job: TimelineFacts['jobs'][number]): Omit<TimelineEntry, 'at'> {
  const viaSweep = inbox.dedupe_key.startsWith('partner-sweep:');
  const detail: Record<string, unknown> = { inboxId: inbox.id };
  if (inbox.source === 'partner') {
    const parsed = inbox.body === '' ? undefined : orderWebhookSchema.safeParse(safeJson(inbox.body));
    if (parsed?.success) Object.assign(detail, { type: parsed.data.type, status: parsed.data.data.status, updatedAt: parsed.data.data.updatedAt });
    else if (inbox.body === '') detail.body = 'emptied by retention';
  } else {
    const payload = safeJson(job.payload);
    if (typeof payload === 'object' && payload !== null && 'dealId' in payload) detail.dealId = payload.dealId;
  }
  return { source: inbox.source, event: viaSweep ? 'sweep.found' : 'webhook.received', detail };
}

const SOURCES = new Set<TimelineEntry['source']>(['partner', 'amocrm', 'bridge', 'webview', 'admin']);
const sourceOf = (source: string): TimelineEntry['source'] => (SOURCES.has(source as TimelineEntry['source']) ? (source as TimelineEntry['source']) : 'bridge');

function parseDetail(text: string): Record<string, unknown> {
  const json = safeJson(text);
  return typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads an order's timeline facts and assembles them. */
export async function orderTimeline(db: Kysely<Database>, order: { order_id: string; deal_id: number | null }): Promise<TimelineEntry[]> {
  const keys = [`order:${order.order_id}`, ...(order.deal_id !== null ? [`deal:${order.deal_id}`] : [])];
  const jobs = await db.selectFrom('jobs').select(['id', 'kind', 'payload', 'created_at', 'inbox_id']).where('job_key', 'in', keys).orderBy('id').execute();
  const inboxIds = jobs.map((j) => j.inbox_id).filter((id): id is number => id !== null);
  const [inbox, history, dealUpdates, log] = await Promise.all([
    inboxIds.length === 0
      ? Promise.resolve([])
      : db.selectFrom('inbox').select(['id', 'source', 'dedupe_key', 'received_at', 'body']).where('id', 'in', inboxIds).execute(),
    db.selectFrom('order_history').selectAll().where('order_id', '=', order.order_id).execute(),
    db.selectFrom('deal_updates').selectAll().where('order_id', '=', order.order_id).execute(),
    db.selectFrom('order_log').selectAll().where('order_id', '=', order.order_id).orderBy('id').execute(),
  ]);
  return assembleTimeline({ jobs, inbox, history, dealUpdates, log });
}
