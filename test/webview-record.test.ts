import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/connect.js';
import { acceptPartnerEvent, OUTSIDE_WEBVIEW_NOTE, recordOrder } from '../src/inbox/accept-partner-event.js';
import type { Order } from '../src/partner/schema.js';
import { DATABASES, dropDb, freshDb } from './support/databases.js';
import { aCustomerOrder } from './support/orders.js';

const order = (patch: Partial<Order> = {}): Order => aCustomerOrder({ id: 'DM-000042', ...patch });

const webhook = (db: Db, o: Order, id: string) =>
  acceptPartnerEvent(db, { webhookId: id, rawBody: JSON.stringify({ type: 'order.created', data: o }), event: { type: 'order.created', timestamp: o.updatedAt, data: o } });

const recordFromWebview = (db: Db, o: Order) => db.kysely.transaction().execute((trx) => recordOrder(trx, o, { origin: 'webview' }));

const rowOf = (db: Db) => db.kysely.selectFrom('orders').selectAll().where('order_id', '=', 'DM-000042').executeTakeFirstOrThrow();
const jobsOf = (db: Db) => db.kysely.selectFrom('jobs').select(['kind', 'job_key', 'status']).execute();

describe.each(DATABASES)('recording a webview order on %s', (kind) => {
  let db: Db | undefined;
  afterEach(async () => {
    if (db) await dropDb(db);
    db = undefined;
  });

  it('an order.created webhook that raced in first still ends as the webview’s, without the outside note', async () => {
    db = await freshDb(kind, `webview-record-race-${kind}`);
    const created = order();
    const newer = order({ updatedAt: '2025-03-01T10:00:05.000Z', additionalInfo: { contactId: 1, externalId: 2, closedByDetmir: false } });
    await webhook(db, newer, 'msg_1');
    // The worker, seeing no webview create, marked it before the webview's record landed.
    await db.kysely.updateTable('orders').set({ note: OUTSIDE_WEBVIEW_NOTE }).execute();

    await recordFromWebview(db, created);
    const row = await rowOf(db);
    expect(row).toMatchObject({ origin: 'webview', note: null, partner_updated_at: Date.parse(newer.updatedAt) });
    // The webview's answer was older than the webhook's picture: the newer snapshot stays.
    expect(JSON.parse(row.snapshot)).toEqual(newer);
    // One waiting job: the two events coalesce into one intake.
    expect(await jobsOf(db)).toEqual([{ kind: 'order.sync', job_key: 'order:DM-000042', status: 'queued' }]);
  });

  it('the webview first, then the echo: origin stays webview; a newer picture replaces the snapshot', async () => {
    db = await freshDb(kind, `webview-record-first-${kind}`);
    await recordFromWebview(db, order());
    const newer = order({ status: 'approved', updatedAt: '2025-03-01T11:00:00.000Z' });
    await webhook(db, newer, 'msg_2');
    const row = await rowOf(db);
    expect(row).toMatchObject({ origin: 'webview', note: null, partner_status: 'approved' });
    expect(JSON.parse(row.snapshot)).toEqual(newer);
  });

  it('keeps a note that is not the outside-the-webview one', async () => {
    db = await freshDb(kind, `webview-record-note-${kind}`);
    await webhook(db, order(), 'msg_3');
    await db.kysely.updateTable('orders').set({ note: 'something else a person must see' }).execute();
    await recordFromWebview(db, order({ updatedAt: '2025-03-01T10:00:01.000Z' }));
    expect(await rowOf(db)).toMatchObject({ origin: 'webview', note: 'something else a person must see', partner_updated_at: Date.parse('2025-03-01T10:00:01.000Z') });
  });
});
