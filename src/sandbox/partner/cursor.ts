import { z } from 'zod';

/**
 * The opaque cursor of `GET /orders?updatedSince=…`: a keyset position, the
 * (updatedAt, id) of the last order a page returned. The next page starts after it, so an
 * order that changes between pages moves behind the cursor (its updatedAt grows) and is
 * listed again later, never skipped; an offset cursor would skip orders instead.
 */
export interface OrderPosition {
  /** updatedAt, ms since the epoch */
  updatedAt: number;
  id: string;
}

const positionSchema = z.tuple([z.number().int(), z.string().min(1)]);

export function encodeCursor(position: OrderPosition): string {
  return Buffer.from(JSON.stringify([position.updatedAt, position.id])).toString('base64url');
}

/** The position a cursor holds, or undefined for anything this API did not issue. */
export function decodeCursor(cursor: string): OrderPosition | undefined {
  try {
    const parsed = positionSchema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    return parsed.success ? { updatedAt: parsed.data[0], id: parsed.data[1] } : undefined;
  } catch {
    return undefined;
  }
}
