import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';
import { orderSchema } from '../partner/schema.js';

/**
 * What the admin search matches besides ids: the customer's name, lower-cased with its
 * spaces collapsed (and ё read as е), and the phone's digits. Kept on the order row,
 * derived from its snapshot, so a search never parses JSON.
 */
export interface SearchFields {
  search_name: string | null;
  phone_digits: string | null;
}

/** Lower case, one space between words, ё as е: how names are stored and queried. */
export function normaliseName(text: string): string {
  return text.toLocaleLowerCase('ru').replace(/ё/g, 'е').replace(/\s+/g, ' ').trim();
}

export const digitsOf = (text: string) => text.replace(/\D/g, '');

/** The search fields of an order snapshot (JSON); nulls for one that does not parse. Pure. */
export function searchFieldsOf(snapshot: string): SearchFields {
  let json: unknown;
  try {
    json = JSON.parse(snapshot);
  } catch {
    return { search_name: null, phone_digits: null };
  }
  const order = orderSchema.safeParse(json);
  if (!order.success) return { search_name: null, phone_digits: null };
  const { firstName, lastName, phone } = order.data.customer;
  return { search_name: normaliseName(`${firstName} ${lastName}`) || null, phone_digits: digitsOf(phone) || null };
}

/**
 * Brings the rows' search fields in line with their snapshots; only rows that differ are
 * written. The worker calls it for every order it takes up, so a new or changed order is
 * searchable by name and phone as soon as its job runs (paused or not).
 */
export async function refreshSearchFields(
  db: Kysely<Database>,
  rows: ReadonlyArray<{ order_id: string; snapshot: string; search_name: string | null; phone_digits: string | null; pii_purged_at: number | null; updated_at: number }>,
): Promise<void> {
  for (const row of rows) {
    // A purged order keeps no name or phone, not even in its search fields.
    if (row.pii_purged_at !== null && row.pii_purged_at >= row.updated_at) continue;
    const fields = searchFieldsOf(row.snapshot);
    if (fields.search_name === row.search_name && fields.phone_digits === row.phone_digits) continue;
    await db.updateTable('orders').set(fields).where('order_id', '=', row.order_id).where('snapshot', '=', row.snapshot).execute();
  }
}
