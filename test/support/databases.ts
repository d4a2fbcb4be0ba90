import { sql } from 'kysely';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { connect, type Db } from '../../src/db/connect.js';
import { migrate } from '../../src/db/migrate.js';

/**
 * Every storage and queue test runs on both databases. PostgreSQL is the one named by
 * TEST_DATABASE_URL (CI sets it; locally it defaults to the machine's server), and each
 * test gets a schema of its own, named from its title, so files run in parallel.
 */
export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const DATABASES = ['sqlite', 'postgres'] as const;
export type DatabaseKind = (typeof DATABASES)[number];

let counter = 0;

export async function freshDatabaseUrl(kind: DatabaseKind, title: string): Promise<{ url: string; schema?: string }> {
  const name = `t_${createHash('sha1').update(`${title}:${process.pid}:${counter++}:${Date.now()}`).digest('hex').slice(0, 16)}`;
  if (kind === 'sqlite') {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    return { url: `sqlite:${path.join(mkdtempSync(path.join(tmpdir(), 'amobridge-')), 'test.db')}` };
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`create schema ${name}`);
  await client.end();
  return { url: POSTGRES_URL, schema: name };
}

/** A migrated database of the given kind, isolated from every other test. */
export async function freshDb(kind: DatabaseKind, title: string): Promise<Db> {
  const { url, schema } = await freshDatabaseUrl(kind, title);
  const db = connect(url, { schema });
  await migrate(db);
  return db;
}

/**
 * Closes a test's database. Schemas are not dropped here: a DROP SCHEMA while another
 * test's migrator reads the catalogue (Kysely's introspection scans every schema) makes
 * that read fail with "schema … does not exist". The global set-up clears them instead,
 * before any test runs (test/support/global-setup.ts).
 */
export async function dropDb(db: Db): Promise<void> {
  await db.close();
}

/**
 * Makes the database refuse the given writes to `table` (as a full disk or a lost grant
 * would), through a trigger. Tests use this instead of dropping a table: a DROP while
 * another test's migrator reads the catalogue fails that read, as DROP SCHEMA does (above).
 * Row triggers: a refused DELETE needs a row to delete.
 */
export async function refuseWrites(db: Db, table: string, ops: Array<'insert' | 'update' | 'delete'>): Promise<void> {
  const name = `refuse_${table}_${ops.join('_')}`;
  const events = ops.join(' or ');
  if (db.dialect === 'postgres') {
    await sql.raw(`create function ${name}() returns trigger language plpgsql as $$
      begin raise exception 'writes to % refused by the test', tg_table_name; end $$`).execute(db.kysely);
    await sql.raw(`create trigger ${name} before ${events} on ${table} for each row execute function ${name}()`).execute(db.kysely);
  } else {
    // SQLite: one trigger per event.
    for (const op of ops) {
      await sql.raw(`create trigger ${name}_${op} before ${op} on ${table} begin select raise(abort, 'writes to ${table} refused by the test'); end`).execute(db.kysely);
    }
  }
}

/** Drops the schemas earlier test runs left behind. Only while no test runs. */
export async function dropTestSchemas(): Promise<number> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(
      "select nspname from pg_namespace where nspname ~ '^(t_[0-9a-f]{16}|bench_[a-z0-9_]+)$'",
    );
    for (const { nspname } of rows) await client.query(`drop schema if exists ${nspname} cascade`);
    return rows.length;
  } finally {
    await client.end();
  }
}
