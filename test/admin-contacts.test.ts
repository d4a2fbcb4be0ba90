import { sql } from 'kysely';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/admin/api-keys.js';
import { DIRECTORY_KEEP_MS, retentionOnce } from '../src/db/retention.js';
import { INBOX_KEY_WINDOW_MS } from '../src/inbox/dedupe-window.js';
import { SEARCH_INDEX_DELAY_MS } from '../src/sandbox/amo/index.js';
import type { Stack } from '../src/sandbox/stack.js';
import { touchDirectory } from '../src/sync/contact-directory.js';
import { DATABASES } from './support/databases.js';
import { drained, testStack, waitFor } from './support/stack.js';

const DAY = 24 * 3600_000;

describe.each(DATABASES)('GET /admin/contacts on %s', (kind) => {
  let stack: (Stack & { databaseUrl: string }) | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  const linked = async (userId: string, customer: { firstName: string; lastName: string; phone: string }) => {
    const created = await stack!.partner.createOrderAsUser({ userId, customer });
    return waitFor(`order of ${userId} linked`, () => stack!.partner.orders.get(created.id)?.additionalInfo ?? undefined);
  };

  it('finds a contact by user id, contact id, name or phone; 401 without a key, 403 without contacts:read, 400 without q', async () => {
    stack = await testStack(kind, `admin-contacts-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'support', ['contacts:read']);
    const other = await createApiKey(db, 'ops', ['jobs:read', 'orders:read', 'quota:read']);
    const app = stack.bridge.app;
    const get = (q: string, key = reader.key) => request(app).get('/admin/contacts').query({ q }).set('authorization', `Bearer ${key}`);

    const olga = await linked('dir-olga', { firstName: 'Ольга', lastName: 'Смирнова', phone: '+7 903 555-01-01' });
    await linked('dir-ivan', { firstName: 'Ivan', lastName: 'Petrov', phone: '+79035550202' });
    await drained(stack);

    const byName = await get('смирн');
    expect(byName.status).toBe(200);
    expect(byName.body.items).toEqual([
      { userId: 'dir-olga', contactId: olga.contactId, name: 'Ольга Смирнова', phoneLast4: '0101', lastUsedAt: expect.any(String), match: 'name' },
    ]);
    expect(Date.now() - Date.parse(byName.body.items[0].lastUsedAt)).toBeLessThan(60_000);
    // Nothing but the last four digits of a phone is kept, nor answered.
    // (Text fields only: a timestamp's digits may spell 903 or 555 by chance.)
    const { lastUsedAt: _answeredAt, ...answered } = byName.body.items[0];
    expect(JSON.stringify(answered)).not.toMatch(/555/);
    const row = await db.selectFrom('contacts').selectAll().where('user_id', '=', 'dir-olga').executeTakeFirstOrThrow();
    expect(Object.values(row).filter((v) => typeof v === 'string')).not.toContainEqual(expect.stringMatching(/903|555/));

    expect((await get('+7 (903) 555-02-02')).body.items.map((i: { userId: string; match: string }) => [i.userId, i.match])).toEqual([['dir-ivan', 'phone']]);
    expect((await get('IVAN')).body.items.map((i: { userId: string }) => i.userId)).toEqual(['dir-ivan']);
    expect((await get(String(olga.contactId))).body.items[0]).toMatchObject({ userId: 'dir-olga', match: 'id' });
    expect((await get('dir-')).body.items.map((i: { userId: string; match: string }) => i.match)).toEqual(['id prefix', 'id prefix']);
    expect((await get('nobody-like-this')).body.items).toEqual([]);
    // LIKE's wildcards in a query are plain characters.
    expect((await get('%')).body.items).toEqual([]);

    const anonymous = await request(app).get('/admin/contacts?q=dir');
    expect(anonymous.status).toBe(401);
    expect(anonymous.type).toBe('application/problem+json');
    const forbidden = await get('dir', other.key);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.detail).toMatch(/contacts:read/);
    const missing = await request(app).get('/admin/contacts').set('authorization', `Bearer ${reader.key}`);
    expect(missing.status).toBe(400);
    expect(missing.type).toBe('application/problem+json');
    expect(missing.body.detail).toMatch(/q is required/);
    expect((await get('   ')).status).toBe(400);
    expect((await get('x'.repeat(101))).status).toBe(400);
  });

  it('answers at most 20 of 30 matches, best first: exact id, id prefix, then name, each most recently used first', async () => {
    stack = await testStack(kind, `admin-contacts-cap-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const reader = await createApiKey(db, 'support', ['contacts:read']);
    const t0 = Date.now() - 30 * DAY;
    // 27 whose name matches "anna", used on days 0..26; user ids that do not start with it.
    for (let i = 0; i < 27; i++) {
      await touchDirectory(db, [{ userId: `u-${i}`, contactId: 5000 + i, customer: { firstName: 'Anna', lastName: `K${i}`, phone: `+7900000${String(i).padStart(4, '0')}` } }], t0 + i * DAY);
    }
    // Ids: the exact one used longest ago, prefixes in between; names that do not match.
    await touchDirectory(db, [{ userId: 'anna', contactId: 7001, customer: { firstName: 'X', lastName: 'Y', phone: '+70000000001' } }], t0 - DAY);
    await touchDirectory(db, [{ userId: 'anna-2', contactId: 7002, customer: { firstName: 'X', lastName: 'Y', phone: '+70000000002' } }], t0);
    await touchDirectory(db, [{ userId: 'anna-3', contactId: 7003, customer: { firstName: 'X', lastName: 'Y', phone: '+70000000003' } }], t0 + 2 * DAY);

    const res = await request(stack.bridge.app).get('/admin/contacts?q=Anna').set('authorization', `Bearer ${reader.key}`);
    expect(res.status).toBe(200);
    // Ids are matched as typed: "Anna" is not the id "anna", so only the 27 names match.
    expect(res.body.items).toHaveLength(20);
    expect(res.body.items.every((i: { match: string }) => i.match === 'name')).toBe(true);
    expect(res.body.items.map((i: { userId: string }) => i.userId)).toEqual(Array.from({ length: 20 }, (_, k) => `u-${26 - k}`));

    // "anna": 30 match (one id, two id prefixes, 27 names); the best 20 come back.
    const lower = await request(stack.bridge.app).get('/admin/contacts?q=anna').set('authorization', `Bearer ${reader.key}`);
    expect(lower.body.items).toHaveLength(20);
    expect(lower.body.items.slice(0, 4).map((i: { userId: string; match: string }) => [i.userId, i.match])).toEqual([
      ['anna', 'id'],
      ['anna-3', 'id prefix'],
      ['anna-2', 'id prefix'],
      ['u-26', 'name'],
    ]);
    expect(lower.body.items.slice(3).map((i: { userId: string }) => i.userId)).toEqual(Array.from({ length: 17 }, (_, k) => `u-${26 - k}`));
  });

  it('retention drops entries unused for six months in small batches; a returning user gets the same contact, not a duplicate', async () => {
    stack = await testStack(kind, `admin-contacts-retention-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const first = await linked('dir-back', { firstName: 'Пётр', lastName: 'Иванов', phone: '+79035550303' });
    const claimed = await linked('dir-found', { firstName: 'Анна', lastName: 'Кузнецова', phone: '+79035550404' });
    await drained(stack);
    const contactsBefore = stack.amo.state.contacts.size;
    // Five more entries, used long ago: with a batch of 2, one run with 2 batches leaves some.
    for (let i = 0; i < 5; i++) {
      await touchDirectory(db, [{ userId: `old-${i}`, contactId: 9000 + i, customer: { firstName: 'O', lastName: 'L', phone: '+70000000000' } }], Date.now() - 400 * DAY);
    }
    const options = { db: stack.bridge.db, retentionMs: 30 * DAY, keyWindowMs: INBOX_KEY_WINDOW_MS, finalStatuses: [], batchSize: 2, maxBatches: 2 };

    // A clock six months on, less a day: nothing of this week's is due.
    const soon = Date.now() + DIRECTORY_KEEP_MS - DAY;
    expect(await retentionOnce(options, soon)).toMatchObject({ directoryEntriesDeleted: 4 });
    expect(await retentionOnce(options, soon)).toMatchObject({ directoryEntriesDeleted: 1 });
    expect((await db.selectFrom('contacts').select('user_id').orderBy('user_id').execute()).map((r) => r.user_id)).toEqual(['dir-back', 'dir-found']);

    // Unused for RETENTION, the name stays while an order still keeps the customer, and goes with it.
    const named = () => db.selectFrom('contacts').select(['user_id', 'name', 'phone_last4']).orderBy('user_id').execute();
    expect((await named()).map((r) => r.name)).toEqual(['Пётр Иванов', 'Анна Кузнецова']);
    await db.updateTable('orders').set({ pii_purged_at: sql<number>`updated_at + 1` }).where('user_id', 'in', ['dir-back', 'dir-found']).execute();
    expect(await retentionOnce(options, soon)).toMatchObject({ directoryNamesCleared: 2, directoryEntriesDeleted: 0 });
    expect(await named()).toEqual([
      { user_id: 'dir-back', name: null, phone_last4: '0303' },
      { user_id: 'dir-found', name: null, phone_last4: '0404' },
    ]);

    expect(await retentionOnce(options, Date.now() + DIRECTORY_KEEP_MS + DAY)).toMatchObject({ directoryEntriesDeleted: 2 });
    expect(await db.selectFrom('contacts').select('user_id').execute()).toEqual([]);

    // dir-back comes back: intake finds the contact through its create claim.
    const again = await linked('dir-back', { firstName: 'Пётр', lastName: 'Иванов', phone: '+79035550303' });
    expect(again.contactId).toBe(first.contactId);
    // dir-found comes back with its claim gone too: the search by detmirUserId finds it
    // (once the simulator's search index shows the contact, as amoCRM's does after a while).
    await new Promise((r) => setTimeout(r, SEARCH_INDEX_DELAY_MS));
    await db.deleteFrom('amo_creates').where('natural_key', '=', 'contact:dir-found').execute();
    const found = await linked('dir-found', { firstName: 'Анна', lastName: 'Кузнецова', phone: '+79035550404' });
    expect(found.contactId).toBe(claimed.contactId);
    await drained(stack);
    expect(stack.amo.state.contacts.size).toBe(contactsBefore);
    const entries = await db.selectFrom('contacts').select(['user_id', 'contact_id', 'name', 'phone_last4']).orderBy('user_id').execute();
    expect(entries).toEqual([
      { user_id: 'dir-back', contact_id: first.contactId, name: 'Пётр Иванов', phone_last4: '0303' },
      { user_id: 'dir-found', contact_id: claimed.contactId, name: 'Анна Кузнецова', phone_last4: '0404' },
    ]);
  });
});
