import { describe, it } from 'vitest';
import type { Customer } from '../src/partner/schema.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { allCells } from './support/dump.js';
import { captureLogs } from './support/logs.js';
import { testStack, waitFor } from './support/stack.js';

/** Five customers, their phones written the ways people write them. */
const CUSTOMERS: Customer[] = [
  { firstName: 'Алиса', lastName: 'Воронцова', phone: '+79035550111', email: 'alisa.vorontsova@example.ru' },
  { firstName: 'Богдан', lastName: 'Ларионов', phone: '+7 (916) 555-02-22' },
  { firstName: 'Вера', lastName: 'Тихонравова', phone: '8 903 555 03 33' },
  { firstName: 'Глеб', lastName: 'Святозаров', phone: '89165550444', email: 'gleb@example.ru' },
  { firstName: 'Дарья', lastName: 'Ольшанская', phone: '+7-903-555-05-55' },
];

/** What of a customer may not be found anywhere: the phone in any format, the names, the e-mail. */
function traces(customer: Customer, text: string): string[] {
  const found: string[] = [];
  const digits = customer.phone.replace(/\D/g, '');
  // The ten national digits, whatever the trunk prefix (+7, 7, 8) and separators.
  if (text.replace(/\D/g, '').includes(digits.slice(-10)) || text.includes(customer.phone)) found.push(`phone ${customer.phone}`);
  for (const word of [customer.firstName, customer.lastName, customer.email]) {
    if (word && text.toLowerCase().includes(word.toLowerCase())) found.push(word);
  }
  return found;
}

// Both databases at once: the test is mostly twenty seconds of waiting.
describe.concurrent.each(DATABASES)('retention end to end on %s', (kind) => {
  it('twenty seconds after five orders are rejected, none of their customers is anywhere in the database', async ({ expect, onTestFinished }) => {
    const logs = captureLogs();
    const stack: Stack = await testStack(kind, `retention-e2e-${kind}`, { env: { RETENTION: '5s', RETENTION_INTERVAL: '2' }, logger: logs.logger });
    onTestFinished(() => stack.stop());
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;

    const orders = [];
    for (const [i, customer] of CUSTOMERS.entries()) {
      const created = await stack.partner.createOrderAsUser({ userId: `retention-user-${i}`, customer });
      orders.push(await waitFor('additionalInfo', () => (stack.partner.orders.get(created.id)?.additionalInfo ? stack.partner.orders.get(created.id) : undefined)));
    }
    // Staff refuse every deal; the stage table rejects the orders in Company 1, whose
    // order.updated webhooks bring the final snapshots (with the customer) back.
    for (const order of orders) await stack.amo.moveLead(order.additionalInfo!.externalId, { statusName: 'Closed - lost' });
    const ids = orders.map((o) => o.id);
    await waitFor('every order rejected in the bridge', async () => {
      const rows = await db.selectFrom('orders').select('partner_status').where('order_id', 'in', ids).execute();
      return rows.length === ids.length && rows.every((r) => r.partner_status === 'rejected');
    });
    await stack.amo.webhooksIdle();

    await new Promise((r) => setTimeout(r, 20_000));

    const cells = await allCells(stack.bridge.db);
    expect(cells.length).toBeGreaterThan(0);
    const leaks = cells.flatMap((cell) => CUSTOMERS.flatMap((c) => traces(c, cell.value).map((t) => `${cell.table}.${cell.column}: ${t}`)));
    expect(leaks).toEqual([]);

    // The webhooks' keys stay, for de-duplication; their bodies are gone.
    const inbox = await db.selectFrom('inbox').select('body').execute();
    expect(inbox.length).toBeGreaterThan(0);
    expect(inbox.every((row) => row.body === '')).toBe(true);
    // The orders themselves stay, with their ids and status.
    const rows = await db.selectFrom('orders').selectAll().where('order_id', 'in', ids).orderBy('order_id').execute();
    expect(rows.map((r) => [r.order_id, r.partner_status, r.deal_id, r.contact_id])).toEqual(
      [...orders].sort((a, b) => (a.id < b.id ? -1 : 1)).map((o) => [o.id, 'rejected', o.additionalInfo!.externalId, o.additionalInfo!.contactId]),
    );
    // Every two seconds: some ten runs in those twenty seconds, none failed.
    const events = logs.events();
    expect(events.filter((e) => e.message === 'retention.done').length).toBeGreaterThanOrEqual(5);
    expect(events.filter((e) => e.message === 'retention.failed')).toEqual([]);
  }, 60_000);
});
