import type { KyselyPlugin } from 'kysely';
import qs from 'qs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/connect.js';
import { type RetentionCounts, type RetentionOptions, retentionOnce } from '../src/db/retention.js';
import { acceptAmoEvents } from '../src/inbox/accept-amo-event.js';
import { acceptPartnerEvent } from '../src/inbox/accept-partner-event.js';
import { parseAmoWebhookBody } from '../src/inbox/amo-webhook-body.js';
import { INBOX_KEY_WINDOW_MS } from '../src/inbox/dedupe-window.js';
import { REDACTED } from '../src/lib/redact.js';
import { createTestLogger } from '../src/logger.js';
import { loadMappingsFile } from '../src/mappings/load.js';
import { finalStatuses } from '../src/mappings/schema.js';
import { type Order, type OrderStatus, orderSchema } from '../src/partner/schema.js';
import { enqueue } from '../src/queue/enqueue.js';
import { type JobResult, Worker } from '../src/queue/worker.js';
import { DEAL_RECONCILE, ORDER_SYNC, RETENTION_JOB, syncJobs } from '../src/sync/jobs.js';
import { retentionJob } from '../src/sync/retention-job.js';
import { DATABASES, dropDb, freshDb, refuseWrites } from './support/databases.js';
import { captureLogs } from './support/logs.js';

const T = 1_750_000_000_000;
const RETENTION = 60 * 60_000;
const OLD = T - RETENTION - 1;
const YOUNG = T - RETENTION + 1_000;
const TRANSITIONS = loadMappingsFile('mappings/default.yaml').partner.transitions;
const FINAL = finalStatuses(TRANSITIONS);
const PHONE = '+79035550177';

function order(id: string, status: OrderStatus, updatedAt: number, customer = { firstName: 'Зоя', lastName: 'Кудрявцева', phone: PHONE, email: 'zoya@example.ru' }): Order {
  return {
    id,
    userId: `user-${id}`,
    serviceId: 'trial-lesson',
    status,
    cost: null,
    paid: false,
    subscriptionStatus: null,
    customer,
    additionalInfo: null,
    createdAt: new Date(updatedAt - 1000).toISOString(),
    updatedAt: new Date(updatedAt).toISOString(),
  };
}

const partnerEvent = (o: Order) => ({ type: 'order.updated' as const, timestamp: o.updatedAt, data: o });

/** An amoCRM status event as a webhook body; `last_modified` makes it a full-shape one. */
function amoEvents(shape: 'compact' | 'full', dealId = 501) {
  const lead = { id: dealId, status_id: 61_000_002, pipeline_id: 7_000_001, old_status_id: 61_000_001, old_pipeline_id: 7_000_001 };
  const rawBody = qs.stringify({
    leads: { status: [shape === 'full' ? { ...lead, name: `Deal ${dealId}`, last_modified: 1_700_000_100 } : lead] },
    account: { id: 31_234_567, subdomain: 'company2' },
  });
  const parsed = parseAmoWebhookBody(rawBody);
  if (!parsed.ok) throw new Error(parsed.error);
  return { events: parsed.body.events, rawBody };
}

describe('finalStatuses', () => {
  it('reads the statuses with no way out from the mappings’ transitions', () => {
    expect(FINAL).toEqual(['executed', 'rejected', 'cancelled']);
    // An operator who lets staff reopen executed orders: executed is no longer final.
    expect(finalStatuses({ ...TRANSITIONS, executed: ['in_work'] })).toEqual(['rejected', 'cancelled']);
  });
});

describe.each(DATABASES)('retention on %s', (kind) => {
  let db: Db;
  beforeEach(async (ctx) => {
    db = await freshDb(kind, ctx.task.name);
  });
  afterEach(async () => {
    await dropDb(db);
  });

  const options = (over: Partial<RetentionOptions> = {}): RetentionOptions => ({
    db,
    retentionMs: RETENTION,
    keyWindowMs: INBOX_KEY_WINDOW_MS,
    finalStatuses: FINAL,
    ...over,
  });
  const inbox = () => db.kysely.selectFrom('inbox').select(['dedupe_key', 'body']).orderBy('id').execute();

  it('empties webhook bodies older than RETENTION, keeps their keys for the de-duplication window, then deletes them', async () => {
    const oldOrder = order('IN-1', 'on_approval', OLD);
    const oldBody = JSON.stringify(partnerEvent(oldOrder));
    const youngBody = JSON.stringify(partnerEvent(order('IN-2', 'on_approval', YOUNG)));
    await acceptPartnerEvent(db, { webhookId: 'msg_old', rawBody: oldBody, event: partnerEvent(oldOrder) }, OLD);
    await acceptPartnerEvent(db, { webhookId: 'msg_young', rawBody: youngBody, event: partnerEvent(order('IN-2', 'on_approval', YOUNG)) }, YOUNG);
    const full = amoEvents('full');
    expect(await acceptAmoEvents(db, full, OLD)).toEqual({ accepted: 1, duplicates: 0 });

    expect(await retentionOnce(options(), T)).toMatchObject({ inboxBodiesEmptied: 2, inboxRowsDeleted: 0 });
    expect(await inbox()).toEqual([
      { dedupe_key: 'partner:msg_old', body: '' },
      { dedupe_key: 'partner:msg_young', body: youngBody },
      { dedupe_key: expect.stringMatching(/^amocrm:[0-9a-f]{64}:/), body: '' },
    ]);

    // Repeats inside the window are still absorbed: a partner webhook-id, an amoCRM redelivery.
    const repeatAt = OLD + 4 * 60_000;
    expect(await acceptPartnerEvent(db, { webhookId: 'msg_old', rawBody: oldBody, event: partnerEvent(oldOrder) }, repeatAt)).toEqual({ accepted: false, reason: 'duplicate' });
    expect(await acceptAmoEvents(db, full, OLD + 95 * 60_000)).toEqual({ accepted: 0, duplicates: 1 });
    expect(await inbox()).toHaveLength(3);

    // Past the window the rows go; the jobs that point at them still run.
    expect(await retentionOnce(options(), YOUNG + INBOX_KEY_WINDOW_MS + 1)).toMatchObject({ inboxRowsDeleted: 3 });
    expect(await inbox()).toEqual([]);
    const ran: string[] = [];
    const record = (jobKind: typeof ORDER_SYNC | typeof DEAL_RECONCILE) =>
      syncJobs.handler(jobKind, {
        run: (jobs: Array<{ id: number; inbox_id: number | null }>) => {
          ran.push(...jobs.map((j) => `${jobKind}:${j.inbox_id !== null}`));
          return Promise.resolve(new Map<number, JobResult>(jobs.map((j) => [j.id, { type: 'done' }])));
        },
      });
    const worker = new Worker({ db, logger: createTestLogger(), handlers: [record(ORDER_SYNC), record(DEAL_RECONCILE)] });
    await db.kysely.updateTable('jobs').set({ run_at: 0 }).execute();
    await worker.drain();
    expect(ran.sort()).toEqual(['deal.reconcile:true', `${ORDER_SYNC}:true`, `${ORDER_SYNC}:true`]);
    expect(await db.kysely.selectFrom('jobs').select('status').where('status', '<>', 'done').execute()).toEqual([]);
  });

  it('deletes a webhook outright once older than a RETENTION longer than the window', async () => {
    const retentionMs = 30 * 86_400_000;
    const body = (id: string, at: number) => JSON.stringify(partnerEvent(order(id, 'on_approval', at)));
    await acceptPartnerEvent(db, { webhookId: 'a', rawBody: body('L-1', T - retentionMs - 1), event: partnerEvent(order('L-1', 'on_approval', T - retentionMs - 1)) }, T - retentionMs - 1);
    await acceptPartnerEvent(db, { webhookId: 'b', rawBody: body('L-2', T - retentionMs + 1), event: partnerEvent(order('L-2', 'on_approval', T - retentionMs + 1)) }, T - retentionMs + 1);
    expect(await retentionOnce(options({ retentionMs }), T)).toMatchObject({ inboxRowsDeleted: 1, inboxBodiesEmptied: 0 });
    expect(await inbox()).toEqual([{ dedupe_key: 'partner:b', body: body('L-2', T - retentionMs + 1) }]);
  });

  it('absorbs a compact amoCRM event repeated while its job waits, after its body was emptied', async () => {
    const compact = amoEvents('compact', 777);
    const t0 = T - 20_000;
    expect(await acceptAmoEvents(db, compact, t0)).toEqual({ accepted: 1, duplicates: 0 });
    expect(await retentionOnce(options({ retentionMs: 5_000 }), t0 + 10_000)).toMatchObject({ inboxBodiesEmptied: 1, inboxRowsDeleted: 0 });
    expect(await acceptAmoEvents(db, compact, t0 + 20_000)).toEqual({ accepted: 0, duplicates: 1 });
    expect(await inbox()).toEqual([{ dedupe_key: expect.stringMatching(/^amocrm:/), body: '' }]);
  });

  it('deletes done jobs older than RETENTION; dead, waiting and running ones stay', async () => {
    const job = async (key: string, status: 'queued' | 'running' | 'done' | 'dead', updatedAt: number) => {
      await enqueue(db.kysely, { kind: 'k', key }, updatedAt);
      await db.kysely.updateTable('jobs').set({ status, attempts: status === 'queued' ? 0 : 1, updated_at: updatedAt }).where('job_key', '=', key).execute();
    };
    await job('done-old', 'done', OLD);
    await job('done-young', 'done', YOUNG);
    await job('dead-old', 'dead', OLD);
    await job('queued-old', 'queued', OLD);
    await job('running-old', 'running', OLD);
    expect(await retentionOnce(options(), T)).toMatchObject({ jobsDeleted: 1 });
    const left = await db.kysely.selectFrom('jobs').select('job_key').orderBy('job_key').execute();
    expect(left.map((j) => j.job_key)).toEqual(['dead-old', 'done-young', 'queued-old', 'running-old']);
  });

  it('takes the customer out of a final order untouched for RETENTION, keeping its ids, status and times', async () => {
    const record = async (o: Order, at: number, ids: { contact: number; deal: number }) => {
      await acceptPartnerEvent(db, { webhookId: `${o.id}-${at}`, rawBody: JSON.stringify(partnerEvent(o)), event: partnerEvent(o) }, at);
      await db.kysely.updateTable('orders').set({ contact_id: ids.contact, deal_id: ids.deal }).where('order_id', '=', o.id).execute();
    };
    await record(order('F-rejected', 'rejected', OLD), OLD, { contact: 11, deal: 21 });
    await record(order('F-cancelled', 'cancelled', OLD), OLD, { contact: 12, deal: 22 });
    await record(order('F-young', 'executed', YOUNG), YOUNG, { contact: 13, deal: 23 });
    await record(order('N-old', 'in_work', OLD), OLD, { contact: 14, deal: 24 });
    const comment = (orderId: string, text: string) => ({ idempotency_key: `key-${orderId}`, user_id: `user-${orderId}`, service_id: 'trial-lesson', comment: text, started_at: OLD, order_id: orderId, recorded_at: OLD });
    await db.kysely.insertInto('webview_orders').values([comment('F-cancelled', `Позвоните на ${PHONE}`), comment('F-young', 'после шести')]).execute();
    const rows = () => db.kysely.selectFrom('orders').selectAll().orderBy('order_id').execute();
    const before = await rows();

    expect(await retentionOnce(options(), T)).toMatchObject({ ordersPurged: 2 });
    const after = await rows();
    for (const [i, row] of after.entries()) {
      const was = before[i]!;
      const purged = row.order_id === 'F-rejected' || row.order_id === 'F-cancelled';
      // Ids, status and times stay; only the snapshot's customer changes.
      expect({ ...row, snapshot: undefined, pii_purged_at: undefined }, row.order_id).toEqual({ ...was, snapshot: undefined, pii_purged_at: undefined });
      expect(row.pii_purged_at, row.order_id).toBe(purged ? T : null);
      const snapshot = orderSchema.parse(JSON.parse(row.snapshot));
      expect(snapshot, row.order_id).toEqual({
        ...orderSchema.parse(JSON.parse(was.snapshot)),
        ...(purged ? { customer: { firstName: REDACTED, lastName: REDACTED, phone: REDACTED } } : {}),
      });
      expect(row.snapshot.includes(PHONE) || row.snapshot.includes('Кудрявцева') || row.snapshot.includes('zoya@'), row.order_id).toBe(!purged);
    }
    const comments = await db.kysely.selectFrom('webview_orders').select(['order_id', 'comment']).orderBy('order_id').execute();
    expect(comments).toEqual([
      { order_id: 'F-cancelled', comment: null },
      { order_id: 'F-young', comment: 'после шести' },
    ]);

    // Done once: the next run finds nothing to do.
    expect(await retentionOnce(options(), T + 1_000)).toMatchObject({ ordersPurged: 0 });
    // A later snapshot (Company 1 wrote the order again) brings the customer back: due in its turn.
    const rewritten = order('F-rejected', 'rejected', T + 2_000, { firstName: 'Зоя', lastName: 'Кудрявцева', phone: PHONE, email: 'zoya@example.ru' });
    await acceptPartnerEvent(db, { webhookId: 'again', rawBody: JSON.stringify(partnerEvent(rewritten)), event: partnerEvent(rewritten) }, T + 2_000);
    const rejected = () => db.kysely.selectFrom('orders').select(['snapshot', 'pii_purged_at']).where('order_id', '=', 'F-rejected').executeTakeFirstOrThrow();
    expect(await retentionOnce(options(), T + 2_000 + RETENTION - 1)).toMatchObject({ ordersPurged: 1 }); // F-young's turn
    expect((await rejected()).snapshot).toContain(PHONE);
    expect(await retentionOnce(options(), T + 2_000 + RETENTION + 1)).toMatchObject({ ordersPurged: 1 });
    const again = await rejected();
    expect(again.snapshot).not.toContain(PHONE);
    expect(again.pii_purged_at).toBe(T + 2_000 + RETENTION + 1);
  });

  it('clears the comment of a webview create that never got its order, once older than RETENTION', async () => {
    const create = (key: string, startedAt: number) => ({ idempotency_key: key, user_id: 'u1', service_id: 'trial-lesson', comment: `Звоните на ${PHONE}`, started_at: startedAt, order_id: null, recorded_at: null });
    await db.kysely.insertInto('webview_orders').values([create('old', OLD), create('young', YOUNG)]).execute();
    expect(await retentionOnce(options(), T)).toMatchObject({ abandonedCommentsCleared: 1 });
    const rows = await db.kysely.selectFrom('webview_orders').select(['idempotency_key', 'comment']).orderBy('idempotency_key').execute();
    expect(rows).toEqual([
      { idempotency_key: 'old', comment: null },
      { idempotency_key: 'young', comment: `Звоните на ${PHONE}` },
    ]);
  });

  it('deletes used sign-in tokens and sessions once they expire', async () => {
    await db.kysely
      .insertInto('webview_tokens')
      .values([
        { token_id: 'jti:expired', user_id: 'u1', used_at: T - 600_000, expires_at: T - 1 },
        { token_id: 'jti:live', user_id: 'u1', used_at: T - 60_000, expires_at: T + 60_000 },
      ])
      .execute();
    const session = (id: string, expiresAt: number) => ({ id_hash: id, user_id: 'u1', given_name: 'Зоя', family_name: 'Кудрявцева', phone: PHONE, created_at: T - 1000, expires_at: expiresAt });
    await db.kysely.insertInto('webview_sessions').values([session('expired', T - 1), session('live', T + 60_000)]).execute();
    expect(await retentionOnce(options(), T)).toMatchObject({ signInsDeleted: 1, sessionsDeleted: 1 });
    expect(await db.kysely.selectFrom('webview_tokens').select('token_id').execute()).toEqual([{ token_id: 'jti:live' }]);
    expect(await db.kysely.selectFrom('webview_sessions').select('id_hash').execute()).toEqual([{ id_hash: 'live' }]);
  });

  it('deletes rate slots ten minutes past', async () => {
    await db.kysely.insertInto('rate_slots').values([{ bucket: 'amocrm', at: T - 10 * 60_000 - 1 }, { bucket: 'amocrm', at: T - 1_000 }]).execute();
    expect(await retentionOnce(options(), T)).toMatchObject({ rateSlotsDeleted: 1 });
    expect(await db.kysely.selectFrom('rate_slots').select('at').execute()).toEqual([{ at: T - 1_000 }]);
  });

  it('works through more rows than a batch over several runs, no statement touching more than a batch', async () => {
    for (let i = 0; i < 7; i++) {
      const o = order(`B-${i}`, 'executed', OLD);
      await acceptPartnerEvent(db, { webhookId: `b-${i}`, rawBody: JSON.stringify(partnerEvent(o)), event: partnerEvent(o) }, OLD);
    }
    await db.kysely.updateTable('jobs').set({ status: 'done', updated_at: OLD }).execute();
    await db.kysely
      .insertInto('webview_tokens')
      .values(Array.from({ length: 7 }, (_, i) => ({ token_id: `jti:${i}`, user_id: 'u', used_at: OLD, expires_at: T - 1 })))
      .execute();

    // Every statement's rows, as the database reports them.
    const touched: number[] = [];
    const counter: KyselyPlugin = {
      transformQuery: (args) => args.node,
      transformResult: (args) => {
        if (args.result.numAffectedRows !== undefined) touched.push(Number(args.result.numAffectedRows));
        return Promise.resolve(args.result);
      },
    };
    const batched = options({ db: { ...db, kysely: db.kysely.withPlugin(counter) }, batchSize: 3, maxBatches: 2 });
    const runs: Array<Partial<RetentionCounts>> = [];
    for (let run = 0; run < 3; run++) {
      const { inboxBodiesEmptied, jobsDeleted, ordersPurged, signInsDeleted } = await retentionOnce(batched, T);
      runs.push({ inboxBodiesEmptied, jobsDeleted, ordersPurged, signInsDeleted });
    }
    expect(runs).toEqual([
      { inboxBodiesEmptied: 6, jobsDeleted: 6, ordersPurged: 6, signInsDeleted: 6 },
      { inboxBodiesEmptied: 1, jobsDeleted: 1, ordersPurged: 1, signInsDeleted: 1 },
      { inboxBodiesEmptied: 0, jobsDeleted: 0, ordersPurged: 0, signInsDeleted: 0 },
    ]);
    expect(touched.length).toBeGreaterThan(0);
    expect(Math.max(...touched)).toBeLessThanOrEqual(3);
  });

  it('runs as a job that logs its counts and schedules the next run, even when a run fails', async () => {
    const logs = captureLogs();
    const job = retentionJob({ ...options(), logger: logs.logger, intervalMs: 2_000 });
    const worker = new Worker({ db, logger: createTestLogger(), handlers: [job.handler] });
    const retentionJobs = () => db.kysely.selectFrom('jobs').select(['status', 'run_at']).where('kind', '=', RETENTION_JOB).orderBy('id').execute();
    await db.kysely.insertInto('webview_tokens').values({ token_id: 'jti:x', user_id: 'u', used_at: 0, expires_at: 1 }).execute();

    await job.schedule(Date.now() - 2_000);
    await job.schedule(Date.now() - 2_000); // a restart: the waiting run absorbs it
    expect(await retentionJobs()).toHaveLength(1);
    const started = Date.now();
    expect(await worker.runOnce()).toBe(1);
    expect(logs.events().find((e) => e.message === 'retention.done')).toMatchObject({ level: 'info', signInsDeleted: 1, inboxRowsDeleted: 0, ordersPurged: 0 });
    const [first, next] = await retentionJobs();
    expect(first!.status).toBe('done');
    expect(next!.status).toBe('queued');
    expect(next!.run_at).toBeGreaterThanOrEqual(started + 2_000);

    // A failing run is logged and left to the next one, not retried into the dead letter.
    await db.kysely.insertInto('rate_slots').values({ bucket: 'amocrm', at: 0 }).execute();
    await refuseWrites(db, 'rate_slots', ['delete']);
    await db.kysely.updateTable('jobs').set({ run_at: 0 }).where('status', '=', 'queued').execute();
    expect(await worker.runOnce()).toBe(1);
    expect(logs.events().find((e) => e.message === 'retention.failed')).toMatchObject({ level: 'error' });
    expect((await retentionJobs()).map((j) => j.status)).toEqual(['done', 'done', 'queued']);
  });

  it('schedules nothing with RETENTION_INTERVAL=0', async () => {
    await retentionJob({ ...options(), logger: createTestLogger(), intervalMs: 0 }).schedule();
    expect(await db.kysely.selectFrom('jobs').select('id').execute()).toEqual([]);
  });
});
