import { afterEach, describe, expect, it } from 'vitest';
import type { Order } from '../src/partner/schema.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { testStack, waitFor } from './support/stack.js';

const DETMIR_USER_ID = 932790;
const DETMIR_ORDER_ID = 932792;
const TAG_ID = 499278;

const customer = (n: number) => ({ firstName: `Имя${n}`, lastName: `Фамилия${n}`, phone: `+7999000${String(n).padStart(4, '0')}` });

function fieldValue(entity: { custom_fields_values?: Array<{ field_id: number; values: Array<{ value?: unknown }> }> | null }, id: number) {
  return entity.custom_fields_values?.find((f) => f.field_id === id)?.values[0]?.value;
}

/** Waits until every order carries additionalInfo in the partner simulator. */
async function allLinked(stack: Stack, orders: Order[], timeoutMs = 20_000) {
  return waitFor(
    'additionalInfo on every order',
    () => {
      const current = orders.map((o) => stack.partner.orders.get(o.id)!);
      return current.every((o) => o.additionalInfo !== null) ? current : undefined;
    },
    timeoutMs,
  );
}

describe.each(DATABASES)('stage 1 intake on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('gives a new user a contact with all four fields and a deal in "New lead", and writes additionalInfo', async () => {
    stack = await testStack(kind, `intake-new-${kind}`);
    await stack.bridge.ready;
    const order = await stack.partner.createOrderAsUser({ userId: 'u-new', customer: customer(1) });
    const [linked] = await allLinked(stack, [order]);

    const contacts = [...stack.amo.state.contacts.values()];
    expect(contacts).toHaveLength(1);
    const contact = contacts[0]!;
    expect(contact).toMatchObject({ first_name: 'Имя1', last_name: 'Фамилия1' });
    expect(fieldValue(contact, DETMIR_USER_ID)).toBe('u-new');
    const phone = contact.custom_fields_values?.find((f) => f.field_code === 'PHONE');
    expect(phone?.values[0]).toMatchObject({ value: '+79990000001', enum_code: 'WORK' });

    const leads = [...stack.amo.state.leads.values()];
    expect(leads).toHaveLength(1);
    const lead = leads[0]!;
    expect(lead.pipeline_id).toBe(stack.amo.pipelineIdByName('Company 2'));
    expect(lead.status_id).toBe(stack.amo.statusIdByName('New lead', 'Company 2'));
    expect(fieldValue(lead, DETMIR_ORDER_ID)).toBe(order.id);
    expect(lead._embedded.tags.map((t) => t.id)).toContain(TAG_ID);
    expect(lead._embedded.contacts.map((c) => c.id)).toEqual([contact.id]);

    expect(linked!.additionalInfo).toStrictEqual({ contactId: contact.id, externalId: lead.id, closedByDetmir: false });
  });

  it('reuses a returning user’s contact and a contact staff created, never duplicating', async () => {
    // Staff made their contacts long before these orders: search sees them at once. (A
    // contact made seconds before its user's first order is not findable in amoCRM either.)
    stack = await testStack(kind, `intake-returning-${kind}`, { amo: { searchIndexDelayMs: 0 } });
    await stack.bridge.ready;
    const staff = stack.amo.createContactAsStaff({ firstName: 'Пётр', lastName: 'Staff', detmirUserId: 'u-staff' });
    // A look-alike whose id merely contains the user id must not be taken for it.
    stack.amo.createContactAsStaff({ firstName: 'Other', lastName: 'Person', detmirUserId: 'u-staff-2' });
    const first = await stack.partner.createOrderAsUser({ userId: 'u-back', customer: customer(2) });
    await allLinked(stack, [first]);
    const second = await stack.partner.createOrderAsUser({ userId: 'u-back', customer: customer(2) });
    const third = await stack.partner.createOrderAsUser({ userId: 'u-staff', customer: customer(3) });
    const [o1, o2, o3] = await allLinked(stack, [first, second, third]);

    expect(o2!.additionalInfo!.contactId).toBe(o1!.additionalInfo!.contactId);
    expect(o3!.additionalInfo!.contactId).toBe(staff.id);
    expect(stack.amo.state.contacts.size).toBe(3); // two by staff, one for u-back
    expect(stack.amo.state.leads.size).toBe(3);
  });

  it('makes one deal for a repeated webhook-id and for a second webhook of the same order', async () => {
    stack = await testStack(kind, `intake-dupes-${kind}`);
    await stack.bridge.ready;
    const order = await stack.partner.createOrderAsUser({ userId: 'u-dup', customer: customer(4) }, { send: false });
    const results = await Promise.all([
      stack.partner.sendWebhook('order.created', order, { webhookId: 'msg_same' }),
      stack.partner.sendWebhook('order.created', order, { webhookId: 'msg_same' }),
      stack.partner.sendWebhook('order.created', order, { webhookId: 'msg_other' }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 202, 202]);
    await allLinked(stack, [order]);
    await stack.partner.sendWebhook('order.updated', stack.partner.orders.get(order.id)!, { webhookId: 'msg_late' });
    await waitFor('the late event to be processed', async () => {
      const open = await stack!.bridge.db.kysely.selectFrom('jobs').select('id').where('status', '<>', 'done').execute();
      return open.length === 0;
    });
    expect(stack.amo.state.leads.size).toBe(1);
    expect(stack.amo.state.contacts.size).toBe(1);
  });

  it('retries 5xx, 429 and a partner outage to success without duplicates', async () => {
    // The bridge is allowed more than this simulator accepts, so 429s really happen.
    stack = await testStack(kind, `intake-faults-${kind}`, { amo: { rateLimitRps: 3 }, rateLimitRps: 10 });
    await stack.bridge.ready;
    stack.amo.faults.errorRate = 1;
    stack.partner.faults.outage = true;
    const orders: Order[] = [];
    for (let i = 0; i < 12; i++) {
      orders.push(await stack.partner.createOrderAsUser({ userId: `u-f${i % 6}`, customer: customer(10 + (i % 6)) }));
    }
    await waitFor('amoCRM to answer 500', () => stack!.amo.stats.count({ status: 500 }) > 3);
    stack.amo.faults.errorRate = 0;
    await waitFor('the partner PATCHes to fail', () =>
      stack!.partner.stats.requests.some((r) => r.method === 'PATCH' && r.status === 503),
    );
    stack.partner.faults.outage = false;
    const linked = await allLinked(stack, orders, 30_000);
    expect(stack.amo.stats.count({ status: 429 })).toBeGreaterThan(0);
    expect(stack.amo.state.contacts.size).toBe(6);
    expect(stack.amo.state.leads.size).toBe(12);
    const dealIds = new Set(linked.map((o) => o.additionalInfo!.externalId));
    expect(dealIds.size).toBe(12);
  });

  it('makes one contact per user and one deal per order when amoCRM applies creates whose answers are lost', async () => {
    stack = await testStack(kind, `intake-lost-${kind}`);
    await stack.bridge.ready;
    const amo = stack.amo;
    // Every create is carried out, but its answer dies: first by a TCP reset, then by
    // silence (the bridge times out). amoCRM's search trails each create by 2 s.
    amo.faults.failAfterWriteRate = 1;
    amo.faults.failAfterWriteMode = 'reset';
    const orders: Order[] = [];
    const burst = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        orders.push(await stack!.partner.createOrderAsUser({ userId: `u-lost${i % 8}`, customer: customer(20 + (i % 8)) }));
      }
    };
    await burst(0, 10); // 8 new users, 2 of them order twice
    await waitFor('creates applied with their answers lost', () => amo.state.leads.size >= 8);
    amo.faults.failAfterWriteMode = 'hang';
    await burst(10, 16); // 6 more orders of the same users
    await waitFor('more creates applied with no answer', () => amo.state.leads.size >= 14);
    amo.faults.failAfterWriteRate = 0;

    const linked = await allLinked(stack, orders, 40_000);
    const contactsByUser = new Map<string, number[]>();
    for (const c of amo.state.contacts.values()) {
      const user = String(fieldValue(c, DETMIR_USER_ID));
      contactsByUser.set(user, [...(contactsByUser.get(user) ?? []), c.id]);
    }
    expect([...contactsByUser.values()].map((ids) => ids.length)).toEqual(Array(8).fill(1));
    const dealsByOrder = new Map<string, number[]>();
    for (const l of amo.state.leads.values()) {
      const order = String(fieldValue(l, DETMIR_ORDER_ID));
      dealsByOrder.set(order, [...(dealsByOrder.get(order) ?? []), l.id]);
    }
    expect(dealsByOrder.size).toBe(16);
    expect([...dealsByOrder.values()].every((ids) => ids.length === 1)).toBe(true);
    for (const order of linked) {
      const info = order.additionalInfo!;
      expect(info.externalId).toBe(dealsByOrder.get(order.id)![0]);
      expect(info.contactId).toBe(contactsByUser.get(order.userId)![0]);
      expect(amo.state.leads.get(info.externalId)!._embedded.contacts.map((c) => c.id)).toEqual([info.contactId]);
    }
  });

  it('finds deals whose create answers were lost in one listing, without a search per order', async () => {
    stack = await testStack(kind, `intake-listing-${kind}`);
    await stack.bridge.ready;
    const amo = stack.amo;
    amo.faults.failAfterWriteRate = 1;
    amo.faults.failAfterWriteMode = 'reset';
    const orders: Order[] = [];
    for (let i = 0; i < 6; i++) orders.push(await stack.partner.createOrderAsUser({ userId: `u-listed${i}`, customer: customer(40 + i) }));
    await waitFor('creates applied with their answers lost', () => amo.state.leads.size >= 6);
    amo.faults.failAfterWriteRate = 0;

    const linked = await allLinked(stack, orders, 40_000);
    expect([amo.state.contacts.size, amo.state.leads.size]).toEqual([6, 6]);
    // One contact search per new user, before its create; none after the answers were
    // lost, and no deal search: the listing of recent deals found them with their contacts.
    expect(amo.stats.requests.filter((r) => r.path === '/api/v4/contacts' && r.url.includes('query=')).length).toBe(6);
    expect(amo.stats.requests.filter((r) => r.path === '/api/v4/leads' && r.url.includes('query=')).map((r) => r.url)).toEqual([]);
    for (const order of linked) {
      const lead = amo.state.leads.get(order.additionalInfo!.externalId)!;
      expect(String(fieldValue(lead, DETMIR_ORDER_ID))).toBe(order.id);
      expect(lead._embedded.contacts.map((c) => c.id)).toEqual([order.additionalInfo!.contactId]);
    }
  });

  it('retries creates amoCRM refused with a 503 after one listing of new deals and one of new contacts, not a search per order', async () => {
    stack = await testStack(kind, `intake-refused-${kind}`);
    await stack.bridge.ready;
    const amo = stack.amo;
    amo.faults.flakyRate = 1;
    amo.faults.flakyModes = ['unavailable'];
    amo.faults.flakyMethods = ['POST'];
    const orders: Order[] = [];
    for (let i = 0; i < 4; i++) orders.push(await stack.partner.createOrderAsUser({ userId: `u-refused${i}`, customer: customer(50 + i) }));
    const refused = () => amo.stats.requests.filter((r) => r.path === '/api/v4/leads/complex' && r.status === 503).length;
    await waitFor('every order refused once', () => {
      const searched = amo.stats.requests.filter((r) => r.path === '/api/v4/contacts' && r.url.includes('query=')).length;
      return searched === 4 && refused() >= 1 && amo.stats.requests.at(-1)?.status === 503;
    });
    amo.faults.flakyRate = 0;

    await allLinked(stack, orders, 40_000);
    expect([amo.state.contacts.size, amo.state.leads.size]).toEqual([4, 4]);
    // Each user was searched once, before the refused create; after it, the listings of
    // what was created since showed that it made nothing, so the retry created at once.
    expect(amo.stats.requests.filter((r) => r.path === '/api/v4/contacts' && r.url.includes('query=')).length).toBe(4);
    expect(amo.stats.requests.filter((r) => r.path === '/api/v4/leads' && r.url.includes('query=')).length).toBe(0);
    expect(amo.stats.requests.filter((r) => r.path === '/api/v4/contacts' && r.url.includes('filter[created_at]')).length).toBeGreaterThanOrEqual(1);
  });

  it('moves a job whose order the partner does not know to the dead letter with the error', async () => {
    stack = await testStack(kind, `intake-dead-${kind}`);
    await stack.bridge.ready;
    const ghost = await stack.partner.createOrderAsUser({ userId: 'u-ghost', customer: customer(5) }, { send: false });
    stack.partner.orders.delete(ghost.id);
    await stack.partner.sendWebhook('order.created', ghost);
    const dead = await waitFor('a dead job', async () => {
      const rows = await stack!.bridge.db.kysely.selectFrom('jobs').selectAll().where('status', '=', 'dead').execute();
      return rows.length > 0 ? rows : undefined;
    });
    expect(dead[0]!.last_error).toMatch(/404/);
    // The deal was made before the partner refused; it is recorded, not lost.
    const row = await stack.bridge.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', ghost.id).executeTakeFirstOrThrow();
    expect(row.deal_id).toBe([...stack.amo.state.leads.values()][0]!.id);
  });
});
