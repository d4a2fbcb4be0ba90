import { sql } from 'kysely';
import { connect, type Db } from './connect.js';
import { migrate } from './migrate.js';

/** The database named by DATABASE_URL cannot be used: unreachable, refused, or a file that cannot be made. */
export class DatabaseOpenError extends Error {
  override name = 'DatabaseOpenError';
  /** The kind of database DATABASE_URL names; the fix differs. */
  readonly kind: 'sqlite' | 'postgres';

  constructor(url: string, cause: unknown) {
    super(`cannot open the database ${withoutPassword(url)}: ${causeOf(cause)}`, { cause });
    this.kind = url.startsWith('sqlite:') ? 'sqlite' : 'postgres';
  }
}

/**
 * Opens the database, makes sure it answers, then migrates it (unless `migrate: false`, for
 * a read-only command). Failing to reach it is told apart from a failing migration, so the
 * operator is sent to DATABASE_URL only for the former.
 */
export async function openDatabase(url: string, options: { poolSize?: number; schema?: string; migrate?: boolean } = {}): Promise<Db> {
  let db: Db | undefined;
  try {
    db = connect(url, options);
    await sql`select 1`.execute(db.kysely);
  } catch (error) {
    await db?.close().catch(() => undefined);
    throw new DatabaseOpenError(url, error);
  }
  if (options.migrate !== false) await migrate(db);
  return db;
}

/** The URL as it may be shown: a password becomes `***`. */
export function withoutPassword(url: string): string {
  if (!/^postgres(ql)?:\/\//.test(url)) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://…';
  }
}

/** Node's connection errors to a host with several addresses are an AggregateError with no message. */
function causeOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  const message = error.message || (error instanceof AggregateError ? String(error.errors[0]?.message ?? '') : '');
  if (!message) return code ?? error.name;
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
