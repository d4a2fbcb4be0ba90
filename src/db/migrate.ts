import {
  type DatabaseIntrospector,
  Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  PostgresDialect,
  type SchemaMetadata,
  sql,
  type TableMetadata,
} from 'kysely';
import type { Db } from './connect.js';
import * as m001 from './migrations/001_initial.js';
import * as m002 from './migrations/002_webview.js';
import * as m003 from './migrations/003_api_keys.js';
import * as m004 from './migrations/004_job_states.js';
import * as m005 from './migrations/005_webview_signins_and_history.js';
import * as m006 from './migrations/006_deal_updates.js';
import * as m007 from './migrations/007_retention.js';
import * as m008 from './migrations/008_contact_ownership.js';
import * as m009 from './migrations/009_admin_orders.js';
import * as m010 from './migrations/010_directory_and_quota.js';
import * as m011 from './migrations/011_lease_order.js';
import * as m012 from './migrations/012_admin_sessions.js';

/** Applies every pending migration; safe to run from several instances at once. */
export async function migrate(db: Db): Promise<void> {
  const all = {
    '001_initial': m001,
    '002_webview': m002,
    '003_api_keys': m003,
    '004_job_states': m004,
    '005_webview_signins_and_history': m005,
    '006_deal_updates': m006,
    '007_retention': m007,
    '008_contact_ownership': m008,
    '009_admin_orders': m009,
    '010_directory_and_quota': m010,
    '011_lease_order': m011,
    '012_admin_sessions': m012,
  };
  const provider: MigrationProvider = {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const [name, m] of Object.entries(all)) out[name] = { up: (k) => m.up(k, db.dialect) };
      return out;
    },
  };
  const migrator = new Migrator({
    db: db.dialect === 'postgres' && db.pool ? migrationKysely(db.pool) : db.kysely,
    provider,
    ...(db.schema ? { migrationTableSchema: db.schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) {
    throw new Error(`migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}

/**
 * Kysely's Migrator finds its own tables through introspection, which on PostgreSQL reads
 * every column of every table in every schema, several times per run: slow beside many
 * schemas (a test run makes hundreds), and a table dropped meanwhile in another schema
 * fails the read ("relation … does not exist"). The Migrator needs only table names, and
 * only those of the schema it migrates (the search_path's), so it gets a Kysely over the
 * same pool whose introspection reads just that.
 */
function migrationKysely(pool: NonNullable<Db['pool']>): Kysely<unknown> {
  class CurrentSchemaDialect extends PostgresDialect {
    override createIntrospector(k: Kysely<unknown>): DatabaseIntrospector {
      return new CurrentSchemaIntrospector(k);
    }
  }
  // Not destroyed after use: that would end the pool, which the Db owns.
  return new Kysely<unknown>({ dialect: new CurrentSchemaDialect({ pool }) });
}

class CurrentSchemaIntrospector implements DatabaseIntrospector {
  constructor(private readonly db: Kysely<unknown>) {}

  async getSchemas(): Promise<SchemaMetadata[]> {
    const { rows } = await sql<{ name: string }>`select nspname as name from pg_catalog.pg_namespace`.execute(this.db);
    return rows;
  }

  /** The current schema's tables and views, by name; columns are not read (the Migrator needs none). */
  async getTables(): Promise<TableMetadata[]> {
    const { rows } = await sql<{ name: string; schema: string; type: string }>`
      select table_name as name, table_schema as schema, table_type as type
      from information_schema.tables where table_schema = current_schema()`.execute(this.db);
    return rows.map((r) => ({ name: r.name, schema: r.schema, isView: r.type === 'VIEW', columns: [] }));
  }

  async getMetadata() {
    return { tables: await this.getTables() };
  }
}
