import type { Db } from '../db/connect.js';
import { openDatabase } from '../db/open.js';

/**
 * Runs a command against the migrated database and closes it, whatever the outcome. A
 * read-only command passes `migrate: false`: it writes nothing, not even a migration.
 */
export async function withDatabase<T>(
  config: { DATABASE_URL: string },
  run: (db: Db) => Promise<T>,
  options: { migrate?: boolean } = {},
): Promise<T> {
  const db = await openDatabase(config.DATABASE_URL, options);
  try {
    return await run(db);
  } finally {
    await db.close();
  }
}
