import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

/**
 * A fresh, empty database for each measurement: an SQLite file in the OS temp folder, or
 * a schema of its own on the PostgreSQL server (BENCH_DATABASE_URL, else
 * TEST_DATABASE_URL, else the local test server), dropped afterwards.
 */
export const POSTGRES_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export type DatabaseKind = 'sqlite' | 'postgres';

export interface FreshDatabase {
  kind: DatabaseKind;
  /** DATABASE_URL for a bridge process (the schema, if any, in `?schema=`). */
  url: string;
  /** For connect(): the URL without the schema, and the schema. */
  baseUrl: string;
  schema?: string;
  drop(): Promise<void>;
}

export function benchDir(label: string): string {
  return mkdtempSync(path.join(tmpdir(), `amobridge-bench-${label}-`));
}

export async function freshDatabase(kind: DatabaseKind, label: string): Promise<FreshDatabase> {
  if (kind === 'sqlite') {
    const url = `sqlite:${path.join(benchDir(label), 'bench.db')}`;
    return { kind, url, baseUrl: url, drop: async () => undefined };
  }
  const schema = `bench_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await withClient((c) => c.query(`create schema ${schema}`));
  return {
    kind,
    url: `${POSTGRES_URL}${POSTGRES_URL.includes('?') ? '&' : '?'}schema=${schema}`,
    baseUrl: POSTGRES_URL,
    schema,
    // With BENCH_KEEP_SCHEMAS=1 (a run beside a test run on the same database) schemas stay:
    // a DROP SCHEMA while a test's migrator reads the catalogue fails that test. The test
    // run's global set-up clears them.
    drop: () =>
      process.env.BENCH_KEEP_SCHEMAS === '1'
        ? Promise.resolve()
        : withClient((c) => c.query(`drop schema if exists ${schema} cascade`)).then(() => undefined),
  };
}

/** Whether the PostgreSQL server answers; the PostgreSQL figures are skipped (and say so) if not. */
export async function postgresAvailable(): Promise<boolean> {
  try {
    await withClient((c) => c.query('select 1'));
    return true;
  } catch {
    return false;
  }
}

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
