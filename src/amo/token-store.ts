import { sql, type Kysely } from 'kysely';
import type { Db } from '../db/connect.js';
import type { Database } from '../db/schema.js';
import { CredentialsRefusedError } from '../lib/http-error.js';

/** An OAuth token pair as the bridge keeps it (times in ms since the epoch). */
export interface AmoTokenSet {
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
}

/** First key of the two-int advisory lock that serializes refreshes across instances. */
const REFRESH_LOCK_NAMESPACE = 0x616d6f32; // 'amo2'

/**
 * The OAuth tokens in `amo_tokens` (one row per account). amoCRM's refresh tokens are
 * single-use: each refresh answers a new pair and the old refresh token dies, so the
 * new pair is written before anything else happens, and only one refresh may run at a
 * time — within a process (the caller's single-flight promise) and across instances
 * (`rotate`, on PostgreSQL, under an advisory lock).
 */
export class TokenStore {
  /** Rotations of this process run one at a time; each re-reads what the last one wrote. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Db,
    readonly id = 'default',
  ) {}

  async load(): Promise<AmoTokenSet | undefined> {
    return readRow(this.db.kysely, this.id);
  }

  async save(token: AmoTokenSet): Promise<void> {
    await writeRow(this.db.kysely, this.id, token);
  }

  /**
   * Replaces a token that is expired or was refused (`stale`, the access token the caller
   * holds) — unless someone else already did. On PostgreSQL this runs under a
   * transaction-scoped advisory lock on a dedicated transaction and re-reads the row
   * there: if another instance has rotated it meanwhile (its access token differs from
   * `stale` and is still good at `goodUntil`), that pair is returned and `refresh` is not
   * called, so the same refresh token is never spent twice. Otherwise `refresh` runs with
   * the row's refresh token (always the newest one) and its result is written before the
   * lock is released.
   *
   * On SQLite (one process) there is no lock and no transaction: a SQLite transaction
   * held across the network call would block every other writer of the process. The
   * caller's in-process single-flight is the serialization there.
   */
  rotate(
    stale: string | undefined,
    goodUntil: number,
    refresh: (current: AmoTokenSet) => Promise<AmoTokenSet>,
  ): Promise<AmoTokenSet> {
    const run = () => this.rotateNow(stale, goodUntil, refresh);
    const next = this.tail.then(run, run);
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async rotateNow(
    stale: string | undefined,
    goodUntil: number,
    refresh: (current: AmoTokenSet) => Promise<AmoTokenSet>,
  ): Promise<AmoTokenSet> {
    if (this.db.dialect !== 'postgres') {
      const current = await this.load();
      if (!current) throw new MissingTokenError();
      if (current.accessToken !== stale && current.expiresAt > goodUntil) return current;
      const next = await refresh(current);
      await this.save(next);
      return next;
    }

    const state: { rotated?: AmoTokenSet } = {};
    try {
      return await this.db.kysely.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${REFRESH_LOCK_NAMESPACE}, hashtext(current_schema() || ':' || ${this.id}))`.execute(trx);
        const current = await readRow(trx, this.id);
        if (!current) throw new MissingTokenError();
        if (current.accessToken !== stale && current.expiresAt > goodUntil) return current;
        state.rotated = await refresh(current);
        await writeRow(trx, this.id, state.rotated);
        return state.rotated;
      });
    } catch (error) {
      // The refresh succeeded but the transaction did not commit (connection lost): the
      // old refresh token is already spent, so the new pair must not be lost. Write it
      // outside the transaction.
      if (state.rotated) {
        await this.save(state.rotated);
        return state.rotated;
      }
      throw error;
    }
  }
}

/** No OAuth token at all: a person must run the authorization-code exchange (CLI). */
export class MissingTokenError extends CredentialsRefusedError {
  override name = 'MissingTokenError';
  constructor() {
    super('no amoCRM OAuth token is stored: exchange an authorization code first (CLI)');
  }
}

async function readRow(db: Kysely<Database>, id: string): Promise<AmoTokenSet | undefined> {
  const row = await db
    .selectFrom('amo_tokens')
    .select(['access_token', 'refresh_token', 'expires_at'])
    .where('id', '=', id)
    .executeTakeFirst();
  if (!row) return undefined;
  return { accessToken: row.access_token, refreshToken: row.refresh_token, expiresAt: Number(row.expires_at) };
}

async function writeRow(db: Kysely<Database>, id: string, token: AmoTokenSet): Promise<void> {
  const values = {
    access_token: token.accessToken,
    refresh_token: token.refreshToken,
    expires_at: token.expiresAt,
    updated_at: Date.now(),
  };
  await db
    .insertInto('amo_tokens')
    .values({ id, ...values })
    .onConflict((oc) => oc.column('id').doUpdateSet(values))
    .execute();
}

const stores = new WeakMap<Db, Map<string, TokenStore>>();

/**
 * The token store of a database, one per process: every AmoClient of the process then
 * shares its in-process serialization of refreshes.
 */
export function tokenStoreFor(db: Db, id = 'default'): TokenStore {
  let byId = stores.get(db);
  if (!byId) {
    byId = new Map();
    stores.set(db, byId);
  }
  let store = byId.get(id);
  if (!store) {
    store = new TokenStore(db, id);
    byId.set(id, store);
  }
  return store;
}
