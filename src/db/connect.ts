import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';

export type DialectName = 'sqlite' | 'postgres';

export interface Db {
  kysely: Kysely<Database>;
  dialect: DialectName;
  /** PostgreSQL schema holding the tables (tests isolate themselves with one each). */
  schema?: string;
  /**
   * The driver handle under kysely, for the hot paths that run prepared statements of
   * their own (src/inbox/accept-statements.ts). SQLite's is used only while holding
   * kysely's connection (its mutex), so it never runs inside another's transaction.
   */
  sqlite?: SQLite.Database;
  pool?: pg.Pool;
  close(): Promise<void>;
}

// int8 (bigint) columns hold millisecond timestamps and ids that fit a JS number.
pg.types.setTypeParser(20, (v) => Number(v));

/**
 * Opens the database named by DATABASE_URL: `sqlite:<path>` (relative or absolute,
 * or `sqlite::memory:`) or `postgres://…[?schema=name]`.
 */
export function connect(url: string, options: { poolSize?: number; schema?: string } = {}): Db {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const sqlite = new SQLite(file);
    // WAL lets readers run beside the writer; NORMAL sync is durable across process
    // crashes (the SIGKILL test), which is what an acknowledged webhook needs.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('foreign_keys = ON');
    const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    return { kysely, dialect: 'sqlite', sqlite, close: () => kysely.destroy() };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    // `?schema=name` keeps the bridge's tables in their own PostgreSQL schema.
    const parsed = new URL(url);
    const schema = options.schema ?? (parsed.searchParams.get('schema') || undefined);
    parsed.searchParams.delete('schema');
    if (schema && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema name ${schema}`);
    const pool = new pg.Pool({
      connectionString: parsed.toString(),
      max: options.poolSize ?? 10,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { kysely, dialect: 'postgres', schema, pool, close: () => kysely.destroy() };
  }
  throw new Error(`DATABASE_URL must be sqlite:<path> or postgres://…, got ${url.split(':')[0]}:…`);
}
