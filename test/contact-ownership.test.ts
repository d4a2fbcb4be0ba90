import { afterEach, describe, expect, it } from 'vitest';
import type { Customer, Order } from '../src/partner/schema.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { editedMappings } from './support/mappings.js';
import { drained, testStack, waitFor } from './support/stack.js';

const DETMIR_USER_ID = 932790;

type AmoContact = ReturnType<Stack['amo']['state']['contacts']['get']> & object;

const byCode = (contact: AmoContact, code: string) =>
  contact.custom_fields_values?.find((f) => f.field_code === code)?.values.map((v) => v.value);
const detmirUserIdOf = (contact: AmoContact) =>
  contact.custom_fields_values?.find((f) => f.field_id === DETMIR_USER_ID)?.values[0]?.value;

/** Calls the bridge made to amoCRM's contacts: writes (PATCH) and reads (GET). */
const contactCalls = (stack: Stack) => ({
  patches: stack.amo.stats.count({ method: 'PATCH', pathPrefix: '/api/v4/contacts' }),
  reads: stack.amo.stats.count({ method: 'GET', pathPrefix: '/api/v4/contacts' }),
});

/** Orders in Company 1's app; resolves once the bridge wrote additionalInfo back on the last. */
async function orderAs(stack: Stack, userId: string, customer: Customer): Promise<Order> {
  const created = await stack.partner.createOrderAsUser({ userId, customer });
  return waitFor('additionalInfo', () => (stack.partner.orders.get(created.id)?.additionalInfo ? stack.partner.orders.get(created.id) : undefined));
}

const olga: Customer = { firstName: 'Ольга', lastName: 'Смирнова', phone: '+79035550101', email: 'olga@example.com' };

describe.each(DATABASES)('contact field ownership on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('by default amoCRM owns every field: a returning user’s new name, phone and e-mail are not written, and nothing is read', async () => {
    stack = await testStack(kind, `owner-default-${kind}`);
    await stack.bridge.ready;
    const first = await orderAs(stack, 'u-default', olga);
    const contactId = first.additionalInfo!.contactId;
    const created = structuredClone(stack.amo.state.contacts.get(contactId)!);
    // A new contact gets every field the order has, the e-mail included.
    expect(created).toMatchObject({ first_name: 'Ольга', last_name: 'Смирнова' });
    expect(byCode(created, 'PHONE')).toEqual(['+79035550101']);
    expect(byCode(created, 'EMAIL')).toEqual(['olga@example.com']);
    expect(detmirUserIdOf(created)).toBe('u-default');

    stack.amo.stats.reset();
    const second = await orderAs(stack, 'u-default', { firstName: 'Оля', lastName: 'Петрова', phone: '+79990000000', email: 'new@example.com' });
    expect(second.additionalInfo!.contactId).toBe(contactId);
    expect(stack.amo.state.contacts.get(contactId)).toEqual(created);
    expect(contactCalls(stack)).toEqual({ patches: 0, reads: 0 });
  });

  it('Company 1 owns the phone: a changed phone is written once, an unchanged one costs no call, staff edits of other fields stay', async () => {
    const mappingsPath = editedMappings((y) => y.replace('  phone: amocrm', '  phone: company1'));
    stack = await testStack(kind, `owner-phone-${kind}`, { mappingsPath });
    await stack.bridge.ready;
    const first = await orderAs(stack, 'u-phone', olga);
    const contactId = first.additionalInfo!.contactId;

    // Staff correct the name in amoCRM; amoCRM owns it.
    stack.amo.editContactAsStaff(contactId, { firstName: 'Ольга (VIP)' });
    stack.amo.stats.reset();

    // The same phone again, written another way: nothing changed, nothing is sent.
    await orderAs(stack, 'u-phone', { ...olga, firstName: 'Оля', phone: '+7 (903) 555-01-01' });
    expect(contactCalls(stack)).toEqual({ patches: 0, reads: 0 });

    // A new phone: one PATCH, the phone only.
    const third = await orderAs(stack, 'u-phone', { ...olga, firstName: 'Оля', phone: '+79161112233' });
    expect(third.additionalInfo!.contactId).toBe(contactId);
    expect(contactCalls(stack)).toEqual({ patches: 1, reads: 0 });
    const contact = stack.amo.state.contacts.get(contactId)!;
    expect(byCode(contact, 'PHONE')).toEqual(['+79161112233']);
    expect(contact.first_name).toBe('Ольга (VIP)');
    expect(byCode(contact, 'EMAIL')).toEqual(['olga@example.com']);
    expect(detmirUserIdOf(contact)).toBe('u-phone');

    // An update of the older order carries the old phone: it does not take the new one back.
    await stack.partner.sendWebhook('order.updated', stack.partner.orders.get(first.id)!, { webhookId: 'msg_old_order' });
    await drained(stack);
    expect(contactCalls(stack)).toEqual({ patches: 1, reads: 0 });
    expect(byCode(stack.amo.state.contacts.get(contactId)!, 'PHONE')).toEqual(['+79161112233']);

    // Staff change the phone; Company 1's unchanged phone does not overwrite it.
    stack.amo.editContactAsStaff(contactId, { phone: '+79160000000' });
    await orderAs(stack, 'u-phone', { ...olga, phone: '+79161112233' });
    expect(contactCalls(stack)).toEqual({ patches: 1, reads: 0 });
    expect(byCode(stack.amo.state.contacts.get(contactId)!, 'PHONE')).toEqual(['+79160000000']);
  });

  it('Company 1 owns the names: a contact staff made is brought in line once; one unknown to the directory is read once', async () => {
    const mappingsPath = editedMappings((y) => y.replace('  firstName: amocrm', '  firstName: company1').replace('  lastName: amocrm', '  lastName: company1'));
    // Staff made the contact long before the order, so search finds it at once (the index
    // lag on a contact made seconds earlier is test/intake.test.ts's subject).
    stack = await testStack(kind, `owner-names-${kind}`, { mappingsPath, amo: { searchIndexDelayMs: 0 } });
    await stack.bridge.ready;
    const staff = stack.amo.createContactAsStaff({ firstName: 'Petr', lastName: 'Staff', phone: '+79035550000', detmirUserId: 'u-names' });

    const first = await orderAs(stack, 'u-names', { firstName: 'Пётр', lastName: 'Иванов', phone: '+79035550199' });
    expect(first.additionalInfo!.contactId).toBe(staff.id);
    const contact = stack.amo.state.contacts.get(staff.id)!;
    expect(contact).toMatchObject({ first_name: 'Пётр', last_name: 'Иванов' });
    expect(byCode(contact, 'PHONE')).toEqual(['+79035550000']); // amoCRM owns the phone
    expect(detmirUserIdOf(contact)).toBe('u-names');
    expect(stack.amo.stats.count({ method: 'PATCH', pathPrefix: '/api/v4/contacts' })).toBe(1);

    // A directory entry from before ownership was recorded: one read of the contact, then
    // a write only if it differs.
    await stack.bridge.db.kysely.updateTable('contacts').set({ synced_fields: null, synced_order_at: null }).execute();
    stack.amo.editContactAsStaff(staff.id, { lastName: 'Иванов-Staff' });
    stack.amo.stats.reset();
    await orderAs(stack, 'u-names', { firstName: 'Пётр', lastName: 'Иванов', phone: '+79035550199' });
    expect(contactCalls(stack)).toEqual({ patches: 1, reads: 1 });
    expect(stack.amo.state.contacts.get(staff.id)).toMatchObject({ first_name: 'Пётр', last_name: 'Иванов' });

    await orderAs(stack, 'u-names', { firstName: 'Пётр', lastName: 'Иванов', phone: '+79035550199' });
    expect(contactCalls(stack)).toEqual({ patches: 1, reads: 1 });
  });
});
