import type { Kysely } from 'kysely';
import type { DialectName } from '../connect.js';

/**
 * Field ownership (src/sync/contact-ownership.ts): per contact, fingerprints of the values
 * of the fields Company 1 owns as the bridge last wrote or saw them in amoCRM (no names,
 * phones or e-mails: hashes only), and the creation time of the order they came from, so
 * an older order never takes a newer order's value back.
 */
export async function up(db: Kysely<unknown>, _dialect: DialectName): Promise<void> {
  await db.schema.alterTable('contacts').addColumn('synced_fields', 'text').execute();
  await db.schema.alterTable('contacts').addColumn('synced_order_at', 'bigint').execute();
}
