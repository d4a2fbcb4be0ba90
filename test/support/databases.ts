import { createHash } from 'node:crypto';
import { sql } from 'kysely';
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

/** Drops a test's PostgreSQL schema (SQLite files live in the OS temp folder). */
export async function dropDb(db: Db): Promise<void> {
  if (db.dialect === 'postgres' && db.schema) {
    await sql`drop schema ${sql.id(db.schema)} cascade`.execute(db.kysely).catch(() => undefined);
  }
  await db.close();
}
