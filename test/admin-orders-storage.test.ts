import { type Migration, Migrator } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { searchOrders } from '../src/admin/orders.js';
import { connect, type Db } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import * as m001 from '../src/db/migrations/001_initial.js';
import * as m002 from '../src/db/migrations/002_webview.js';
import * as m003 from '../src/db/migrations/003_api_keys.js';
import * as m004 from '../src/db/migrations/004_job_states.js';
import * as m005 from '../src/db/migrations/005_webview_signins_and_history.js';
import * as m006 from '../src/db/migrations/006_deal_updates.js';
import * as m007 from '../src/db/migrations/007_retention.js';
import * as m008 from '../src/db/migrations/008_contact_ownership.js';
import { retentionOnce } from '../src/db/retention.js';
import { acceptPartnerEvent } from '../src/inbox/accept-partner-event.js';
import { INBOX_KEY_WINDOW_MS } from '../src/inbox/dedupe-window.js';
import { loadMappingsFile } from '../src/mappings/load.js';
import { finalStatuses } from '../src/mappings/schema.js';
import { appendOrderLog } from '../src/sync/order-log.js';
import { refreshSearchFields, searchFieldsOf } from '../src/sync/order-search.js';
import { DATABASES, dropDb, freshDatabaseUrl, freshDb } from './support/databases.js';
import { anOrder } from './support/orders.js';

const T = 1_750_000_000_000;
const RETENTION = 60 * 60_000;
const FINAL = finalStatuses(loadMappingsFile('mappings/default.yaml').partner.transitions);

describe('search fields', () => {
  it('are the name lower-cased with ё as е and spaces collapsed, and the phone’s digits; nulls for a snapshot that does not parse', () => {
    const order = anOrder('on_approval', { customer: { firstName: '  Пётр ', lastName: 'ОРЛОВ  Младший', phone: '+7 (903) 555-01-01' } });
    expect(searchFieldsOf(JSON.stringify(order))).toEqual({ search_name: 'петр орлов младший', phone_digits: '79035550101' });
    expect(searchFieldsOf('{')).toEqual({ search_name: null, phone_digits: null });
    expect(searchFieldsOf('{"id":"x"}')).toEqual({ search_name: null, phone_digits: null });
  });
});

describe.each(DATABASES)('admin orders storage on %s', (kind) => {
  let db: Db | undefined;
  afterEach(async () => {
    if (db) await dropDb(db);
    db = undefined;
  });

  const record = async (d: Db, id: string, status: Parameters<typeof anOrder>[0], at: number) => {
    const order = anOrder(status, { id, userId: `user-${id}`, customer: { firstName: 'Зоя', lastName: 'Кудрявцева', phone: '+79035550177' }, updatedAt: new Date(at).toISOString() });
    const event = { type: 'order.updated' as const, timestamp: order.updatedAt, data: order };
    await acceptPartnerEvent(d, { webhookId: `${id}-${at}`, rawBody: JSON.stringify(event), event }, at);
    await refreshSearchFields(d.kysely, await d.kysely.selectFrom('orders').selectAll().where('order_id', '=', id).execute());
  };

  it('migration 009 fills the search fields of the orders already recorded, except purged ones', async () => {
    const { url, schema } = await freshDatabaseUrl(kind, 'admin-orders-backfill');
    db = connect(url, { schema });
    const upTo008: Record<string, Migration> = {};
    for (const [name, m] of Object.entries({ '001_initial': m001, '002_webview': m002, '003_api_keys': m003, '004_job_states': m004, '005_webview_signins_and_history': m005, '006_deal_updates': m006, '007_retention': m007, '008_contact_ownership': m008 })) {
      upTo008[name] = { up: (k) => m.up(k, db!.dialect) };
    }
    const migrator = new Migrator({ db: db.kysely, provider: { getMigrations: async () => upTo008 }, ...(schema ? { migrationTableSchema: schema } : {}) });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    // Orders as 008 knew them (no search fields yet), one of them purged already.
    for (const [id, purged] of [['B-1', null], ['B-2', T]] as const) {
      const order = anOrder('cancelled', { id, customer: { firstName: 'Ольга', lastName: 'Смирнова', phone: '+7 903 555-01-01' } });
      await db.kysely
        .insertInto('orders')
        .values({
          order_id: id, user_id: 'u', service_id: 's', contact_id: null, deal_id: null, partner_status: 'cancelled', snapshot: JSON.stringify(order),
          partner_updated_at: T, note: null, origin: 'webhook', closed_by_partner: 0, info_pushed: 0, status_by_bridge: null, created_at: T, updated_at: T, pii_purged_at: purged,
        })
        .execute();
    }
    await migrate(db);
    const rows = await db.kysely.selectFrom('orders').select(['order_id', 'search_name', 'phone_digits', 'paused_at']).orderBy('order_id').execute();
    expect(rows).toEqual([
      { order_id: 'B-1', search_name: 'ольга смирнова', phone_digits: '79035550101', paused_at: null },
      { order_id: 'B-2', search_name: null, phone_digits: null, paused_at: null },
    ]);
  });

  it('retention deletes order log entries older than RETENTION in batches, and takes a purged order’s search fields', async () => {
    db = await freshDb(kind, 'admin-orders-retention');
    await record(db, 'R-old', 'cancelled', T - RETENTION - 10);
    await record(db, 'R-young', 'cancelled', T - 10);
    for (let i = 0; i < 5; i++) await appendOrderLog(db.kysely, [{ orderId: 'R-old', source: 'bridge', event: 'job.attempt', detail: { i } }], T - RETENTION - 1 - i);
    await appendOrderLog(db.kysely, [{ orderId: 'R-young', source: 'bridge', event: 'job.attempt' }], T - RETENTION + 1);
    expect((await searchOrders(db.kysely, { q: 'кудрявцева', limit: 10 })).items.map((i) => i.orderId).sort()).toEqual(['R-old', 'R-young']);

    const counts = await retentionOnce({ db, retentionMs: RETENTION, keyWindowMs: INBOX_KEY_WINDOW_MS, finalStatuses: FINAL, batchSize: 2 }, T);
    expect(counts).toMatchObject({ orderLogDeleted: 5, ordersPurged: 1 });
    expect((await db.kysely.selectFrom('order_log').select('order_id').execute()).map((r) => r.order_id)).toEqual(['R-young']);
    const purged = await db.kysely.selectFrom('orders').select(['search_name', 'phone_digits']).where('order_id', '=', 'R-old').executeTakeFirstOrThrow();
    expect(purged).toEqual({ search_name: null, phone_digits: null });
    // Found by its id still, by its customer no longer; and the worker does not put them back.
    expect((await searchOrders(db.kysely, { q: 'кудрявцева', limit: 10 })).items.map((i) => i.orderId)).toEqual(['R-young']);
    expect((await searchOrders(db.kysely, { q: '79035550177', limit: 10 })).items.map((i) => i.orderId)).toEqual(['R-young']);
    expect((await searchOrders(db.kysely, { q: 'R-old', limit: 10 })).items.map((i) => i.orderId)).toEqual(['R-old']);
    await refreshSearchFields(db.kysely, await db.kysely.selectFrom('orders').selectAll().execute());
    expect(await db.kysely.selectFrom('orders').select(['search_name']).where('order_id', '=', 'R-old').executeTakeFirstOrThrow()).toEqual({ search_name: null });
  });

  it('order log details go through redaction: no token or phone survives a careless caller', async () => {
    db = await freshDb(kind, 'admin-orders-log-redaction');
    await appendOrderLog(db.kysely, [{ orderId: 'X', source: 'bridge', event: 'decision', detail: { access_token: 'abc', note: 'call +7 903 555-01-01', Authorization: 'Bearer xyz' } }], T);
    const { detail } = await db.kysely.selectFrom('order_log').select('detail').executeTakeFirstOrThrow();
    expect(detail).not.toMatch(/abc|555-01-01|xyz/);
    expect(JSON.parse(detail)).toMatchObject({ access_token: '[redacted]', note: expect.stringContaining('0101') });
  });
});
