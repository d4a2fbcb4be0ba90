import { type Migration, Migrator } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
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
import { REDACTED } from '../src/lib/redact.js';
import { DATABASES, dropDb, freshDatabaseUrl } from './support/databases.js';
import { anOrder } from './support/orders.js';

/** Migration 010 on a database whose directory has only ids: what the orders tell is filled in. */
describe.each(DATABASES)('migration 010 (directory and quota) on %s', (kind) => {
  let db: Db | undefined;
  afterEach(async () => {
    if (db) await dropDb(db);
    db = undefined;
  });

  it("backfills each entry's name, phone's last four digits and last use from the user's newest order", async () => {
    const { url, schema } = await freshDatabaseUrl(kind, `migration-010-${kind}`);
    db = connect(url, { schema });
    const before: Record<string, Migration> = {};
    const all = { '001_initial': m001, '002_webview': m002, '003_api_keys': m003, '004_job_states': m004, '005_webview_signins_and_history': m005 };
    for (const [name, m] of Object.entries({ ...all, '006_deal_updates': m006, '007_retention': m007, '008_contact_ownership': m008 })) {
      before[name] = { up: (k) => m.up(k, db!.dialect) };
    }
    const migrator = new Migrator({ db: db.kysely, provider: { getMigrations: async () => before }, ...(db.schema ? { migrationTableSchema: db.schema } : {}) });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();

    const order = (orderId: string, userId: string, createdAt: number, customer: { firstName: string; lastName: string; phone: string }) => ({
      order_id: orderId,
      user_id: userId,
      service_id: 'trial-lesson',
      contact_id: 1,
      deal_id: 1,
      partner_status: 'approved',
      snapshot: JSON.stringify(anOrder('approved', { id: orderId, userId, customer })),
      partner_updated_at: createdAt,
      note: null,
      origin: 'webhook',
      closed_by_partner: 0,
      info_pushed: 1,
      created_at: createdAt,
      updated_at: createdAt,
      pii_purged_at: null,
    });
    await db.kysely
      .insertInto('orders')
      .values([
        order('DM-1', 'u-two', 1_000, { firstName: 'Old', lastName: 'Name', phone: '+79030001111' }),
        order('DM-2', 'u-two', 2_000, { firstName: 'Ёлка', lastName: 'Новая', phone: '+7 903 000-22-22' }),
        order('DM-3', 'u-purged', 3_000, { firstName: REDACTED, lastName: REDACTED, phone: REDACTED }),
      ])
      .execute();
    await db.kysely
      .insertInto('contacts')
      .values(['u-two', 'u-purged', 'u-none'].map((userId, i) => ({ user_id: userId, contact_id: 10 + i, created_at: 500 + i, synced_fields: null, synced_order_at: null })))
      .execute();

    await migrate(db);
    expect(
      await db.kysely.selectFrom('contacts').select(['user_id', 'name', 'name_key', 'phone_last4', 'last_used_at']).orderBy('user_id').execute(),
    ).toEqual([
      { user_id: 'u-none', name: null, name_key: null, phone_last4: null, last_used_at: 502 },
      { user_id: 'u-purged', name: null, name_key: null, phone_last4: null, last_used_at: 3_000 },
      { user_id: 'u-two', name: 'Ёлка Новая', name_key: 'елка новая', phone_last4: '2222', last_used_at: 2_000 },
    ]);
    expect(await db.kysely.selectFrom('peer_calls').selectAll().execute()).toEqual([]);
  });
});
