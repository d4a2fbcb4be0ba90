import { type Migration, Migrator } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Db } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import * as m001 from '../src/db/migrations/001_initial.js';
import * as m002 from '../src/db/migrations/002_webview.js';
import * as m003 from '../src/db/migrations/003_api_keys.js';
import { DATABASES, dropDb, freshDatabaseUrl } from './support/databases.js';

/** Migration 006 on a database that already has orders Company 1 closed (and the bridge noted). */
describe.each(DATABASES)('migration 006 (deal_updates) on %s', (kind) => {
  let db: Db | undefined;
  afterEach(async () => {
    if (db) await dropDb(db);
    db = undefined;
  });

  it('counts the stage-1 closures already noted as noted, so the deal is not told twice', async () => {
    const { url, schema } = await freshDatabaseUrl(kind, `migration-006-${kind}`);
    db = connect(url, { schema });
    const before: Record<string, Migration> = {};
    for (const [name, m] of Object.entries({ '001_initial': m001, '002_webview': m002, '003_api_keys': m003 })) {
      before[name] = { up: (k) => m.up(k, db!.dialect) };
    }
    const migrator = new Migrator({ db: db.kysely, provider: { getMigrations: async () => before }, ...(db.schema ? { migrationTableSchema: db.schema } : {}) });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();

    const row = (orderId: string, closed: number, dealId: number | null) => ({
      order_id: orderId,
      user_id: 'u1',
      service_id: 'trial-lesson',
      contact_id: dealId === null ? null : 1,
      deal_id: dealId,
      partner_status: closed ? 'executed' : 'on_approval',
      snapshot: '{}',
      partner_updated_at: 1,
      note: null,
      origin: 'webhook',
      closed_by_partner: closed,
      info_pushed: 1,
      created_at: 1,
      updated_at: 5_000,
    });
    await db.kysely.insertInto('orders').values([row('DM-1', 1, 11), row('DM-2', 0, 12), row('DM-3', 1, null)]).execute();

    await migrate(db);
    expect(await db.kysely.selectFrom('deal_updates').selectAll().execute()).toEqual([
      { order_id: 'DM-1', kind: 'executedByPartner', deal_id: 11, noted_at: 5000, moved_at: null },
    ]);
    expect(await db.kysely.selectFrom('orders').select(['order_id', 'status_by_bridge']).orderBy('order_id').execute()).toEqual([
      { order_id: 'DM-1', status_by_bridge: null },
      { order_id: 'DM-2', status_by_bridge: null },
      { order_id: 'DM-3', status_by_bridge: null },
    ]);
  });
});
