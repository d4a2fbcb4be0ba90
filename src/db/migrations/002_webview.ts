import { type Kysely, sql } from 'kysely';
import type { DialectName } from '../connect.js';

/**
 * Stage 3, the webview: tokens already used to sign in (replay protection), sessions,
 * and what the webview alone knows about the orders it created. Portable SQL only.
 */
export async function up(db: Kysely<unknown>, _dialect: DialectName): Promise<void> {
  const bigint = 'bigint';

  // One row per sign-in token ever accepted, kept until the token expires: a token signs
  // in once. The key is `jti:<jti>` or `sha256:<digest of the token>` when it has no jti.
  await db.schema
    .createTable('webview_tokens')
    .addColumn('token_id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('used_at', bigint, (c) => c.notNull())
    .addColumn('expires_at', bigint, (c) => c.notNull())
    .execute();
  await sql`create index webview_tokens_expiry on webview_tokens (expires_at)`.execute(db);

  // Server-side sessions: the cookie carries a random id (signed); the table holds only
  // its SHA-256, so a copy of the database signs nobody in. Sign-out deletes the row.
  await db.schema
    .createTable('webview_sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('given_name', 'text', (c) => c.notNull())
    .addColumn('family_name', 'text', (c) => c.notNull())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('created_at', bigint, (c) => c.notNull())
    .addColumn('expires_at', bigint, (c) => c.notNull())
    .execute();
  await sql`create index webview_sessions_expiry on webview_sessions (expires_at)`.execute(db);

  // Orders created through the webview, one row per Idempotency-Key, written before the
  // create is sent: while a row has no order id yet, an order.created webhook for the same
  // user and service may be its echo (the worker does not call it "outside the webview").
  // It also keeps the user's comment: Company 1's Order has no field to read it back from.
  await db.schema
    .createTable('webview_orders')
    .addColumn('idempotency_key', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('service_id', 'text', (c) => c.notNull())
    .addColumn('comment', 'text')
    .addColumn('started_at', bigint, (c) => c.notNull())
    .addColumn('order_id', 'text')
    .addColumn('recorded_at', bigint)
    .execute();
  await sql`create index webview_orders_order on webview_orders (order_id)`.execute(db);
  await sql`create index webview_orders_user on webview_orders (user_id, started_at)`.execute(db);
}
