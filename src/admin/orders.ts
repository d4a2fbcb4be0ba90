import { type Kysely, sql } from 'kysely';
import { z } from 'zod';
import type { Database } from '../db/schema.js';
import { orderStatusSchema } from '../partner/schema.js';
import { digitsOf, normaliseName } from '../sync/order-search.js';

/**
 * The admin console's order search, with no HTTP in it (the API and a later web page call
 * the same function). Newest change first, paged by an opaque keyset cursor on
 * (updated_at, order_id), so a page costs the same however deep it is.
 */

export const orderSearchSchema = z.object({
  /** An order id or user id (exact), or part of the customer's name, or 4+ digits of the phone. */
  q: z.string().trim().min(1).max(200).optional(),
  status: orderStatusSchema.optional(),
  userId: z.string().min(1).max(100).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(400).optional(),
});
export type OrderSearch = z.infer<typeof orderSearchSchema>;

export interface OrderListItem {
  orderId: string;
  userId: string;
  status: string;
  contactId: number | null;
  dealId: number | null;
  origin: string;
  paused: boolean;
  updatedAt: string;
}

/** A cursor that is not one this API gave out. */
export class BadCursor extends Error {
  override name = 'BadCursor';
}

const cursorSchema = z.tuple([z.number().int(), z.string().min(1)]);

export function encodeCursor(updatedAt: number, orderId: string): string {
  return Buffer.from(JSON.stringify([updatedAt, orderId])).toString('base64url');
}

export function decodeCursor(cursor: string): { updatedAt: number; orderId: string } {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new BadCursor('the cursor is not one this API gave out');
  }
  const parsed = cursorSchema.safeParse(json);
  if (!parsed.success) throw new BadCursor('the cursor is not one this API gave out');
  return { updatedAt: parsed.data[0], orderId: parsed.data[1] };
}

/** LIKE's own characters taken literally (the pattern uses `\` as its escape). */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/** Phone digits shorter than this match too much to mean a phone. */
const MIN_PHONE_DIGITS = 4;

export async function searchOrders(db: Kysely<Database>, search: OrderSearch): Promise<{ items: OrderListItem[]; nextCursor: string | null }> {
  const after = search.cursor ? decodeCursor(search.cursor) : undefined;
  let query = db
    .selectFrom('orders')
    .select(['order_id', 'user_id', 'partner_status', 'contact_id', 'deal_id', 'origin', 'paused_at', 'updated_at'])
    .select((eb) => eb.exists(eb.selectFrom('paused_users').select('user_id').whereRef('paused_users.user_id', '=', 'orders.user_id')).as('user_paused'));
  if (search.status) query = query.where('partner_status', '=', search.status);
  if (search.userId) query = query.where('user_id', '=', search.userId);
  if (search.q) {
    const q = search.q;
    const name = normaliseName(q);
    const digits = digitsOf(q);
    query = query.where((eb) =>
      eb.or([
        eb('order_id', '=', q),
        eb('user_id', '=', q),
        ...(name ? [sql<boolean>`search_name like ${`%${likeLiteral(name)}%`} escape '\\'`] : []),
        ...(digits.length >= MIN_PHONE_DIGITS ? [sql<boolean>`phone_digits like ${`%${digits}%`}`] : []),
      ]),
    );
  }
  if (after) {
    query = query.where((eb) =>
      eb.or([eb('updated_at', '<', after.updatedAt), eb.and([eb('updated_at', '=', after.updatedAt), eb('order_id', '<', after.orderId)])]),
    );
  }
  const rows = await query.orderBy('updated_at', 'desc').orderBy('order_id', 'desc').limit(search.limit + 1).execute();
  const page = rows.slice(0, search.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({
      orderId: r.order_id,
      userId: r.user_id,
      status: r.partner_status,
      contactId: r.contact_id,
      dealId: r.deal_id,
      origin: r.origin,
      paused: r.paused_at !== null || Boolean(r.user_paused),
      updatedAt: new Date(r.updated_at).toISOString(),
    })),
    nextCursor: rows.length > search.limit && last ? encodeCursor(last.updated_at, last.order_id) : null,
  };
}
