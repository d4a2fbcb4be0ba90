import type { Kysely } from 'kysely';
import type { ContactsTable, Database } from '../db/schema.js';
import { REDACTED } from '../lib/redact.js';
import type { Customer } from '../partner/schema.js';

/**
 * The contact directory's human side: who a user is (name, the phone's last four digits,
 * never the whole phone) and when the bridge last used the entry, so the admin search can
 * find a contact by name or phone and retention can drop entries no order has needed for
 * six months (src/db/retention.ts). Intake keeps it current (touchDirectory).
 */

export type DirectoryValues = Pick<ContactsTable, 'name' | 'name_key' | 'phone_last4'>;

/** The directory columns for a customer; a purged snapshot (redacted values) gives nulls. */
export function directoryValuesOf(customer: Pick<Customer, 'firstName' | 'lastName' | 'phone'>): DirectoryValues {
  const name = `${customer.firstName} ${customer.lastName}`.replace(/\s+/g, ' ').trim();
  const digits = customer.phone.replace(/\D/g, '');
  const redacted = customer.firstName === REDACTED;
  return {
    name: name && !redacted ? name : null,
    name_key: name && !redacted ? searchKey(name) : null,
    phone_last4: digits.length >= 4 ? digits.slice(-4) : null,
  };
}

/**
 * What a name is matched by: lower case in JS, not SQL (SQLite's lower() leaves Cyrillic
 * alone), with ё folded into е as Russian users type it.
 */
export function searchKey(text: string): string {
  return text.toLocaleLowerCase('ru').replace(/ё/g, 'е').replace(/\s+/g, ' ').trim();
}

export interface DirectoryUse {
  userId: string;
  contactId: number;
  customer: Pick<Customer, 'firstName' | 'lastName' | 'phone'>;
}

/**
 * Records that these users' contacts were used now, with the customer's current name and
 * phone. An entry naming another contact for the user is left as it is (the directory's
 * first record wins, as in recordContact); a missing one (purged) is written again.
 */
export async function touchDirectory(db: Kysely<Database>, uses: DirectoryUse[], now = Date.now()): Promise<void> {
  for (const use of uses) {
    const values = { ...directoryValuesOf(use.customer), last_used_at: now };
    await db
      .insertInto('contacts')
      .values({ user_id: use.userId, contact_id: use.contactId, created_at: now, synced_fields: null, synced_order_at: null, ...values })
      .onConflict((oc) => oc.column('user_id').doUpdateSet(values).where('contacts.contact_id', '=', use.contactId))
      .execute();
  }
}
