import { sql } from 'kysely';
import type { Db } from '../../src/db/connect.js';

/** One value found in the database, as text, and where. */
export interface Cell {
  table: string;
  column: string;
  value: string;
}

/**
 * Every value of every column of every table, as text (a phone kept as a number counts
 * too), found by iterating the schema (PostgreSQL's information_schema, SQLite's
 * sqlite_master and table_info), not a list of known tables: a table or column added
 * later is searched too.
 */
export async function allCells(db: Db): Promise<Cell[]> {
  const columns = db.dialect === 'postgres' ? await postgresColumns(db) : await sqliteColumns(db);
  const cells: Cell[] = [];
  for (const [table, names] of columns) {
    const select = sql.join(names.map((n) => sql.ref(n)));
    const rows = await sql<Record<string, unknown>>`select ${select} from ${sql.table(table)}`.execute(db.kysely);
    for (const row of rows.rows) {
      for (const column of names) {
        const value = row[column];
        if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') cells.push({ table, column, value: String(value) });
      }
    }
  }
  return cells;
}

async function postgresColumns(db: Db): Promise<Map<string, string[]>> {
  const { rows } = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = current_schema()
    order by table_name, ordinal_position`.execute(db.kysely);
  return group(rows.map((r) => [r.table_name, r.column_name]));
}

async function sqliteColumns(db: Db): Promise<Map<string, string[]>> {
  const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(db.kysely);
  const pairs: Array<[string, string]> = [];
  for (const { name } of tables.rows) {
    const info = await sql<{ name: string }>`select name from pragma_table_info(${name})`.execute(db.kysely);
    for (const column of info.rows) pairs.push([name, column.name]);
  }
  return group(pairs);
}

function group(pairs: Array<[string, string]>): Map<string, string[]> {
  const byTable = new Map<string, string[]>();
  for (const [table, column] of pairs) byTable.set(table, [...(byTable.get(table) ?? []), column]);
  return byTable;
}
