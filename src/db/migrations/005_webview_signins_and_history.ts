import type { Kysely } from 'kysely';
import type { DialectName } from '../connect.js';

/**
 * The webview, hardened (issue 11): sign-ins waiting for "Continue as …?", and the
 * history of what changed on each order, for its timeline. Portable SQL only.
 */
export async function up(db: Kysely<unknown>, _dialect: DialectName): Promise<void> {
  // A sign-in link for another user, opened while a session exists: the token is spent,
  // and who it vouched for waits here, bound to that session, until the user confirms
  // with a POST (or it expires). One per session: a newer link replaces it.
  await db.schema
    .createTable('webview_pending_signins')
    .addColumn('session_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('given_name', 'text', (c) => c.notNull())
    .addColumn('family_name', 'text', (c) => c.notNull())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();

  // Every picture of an order the bridge recorded (webhook, its own PATCH, the webview),
  // reduced to what a person sees change: no names or phones. One row per Company 1
  // updatedAt, so the same picture seen twice is one row and late arrivals sort in place.
  await db.schema
    .createTable('order_history')
    .addColumn('order_id', 'text', (c) => c.notNull())
    .addColumn('partner_updated_at', 'bigint', (c) => c.notNull())
    .addColumn('recorded_at', 'bigint', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('cost', 'double precision')
    .addColumn('paid', 'integer', (c) => c.notNull())
    .addColumn('subscription_status', 'text')
    .addPrimaryKeyConstraint('order_history_pk', ['order_id', 'partner_updated_at'])
    .execute();
}
