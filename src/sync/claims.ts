import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.js';

/**
 * Create claims. amoCRM has no idempotency keys, so before the bridge creates a contact
 * or a deal it writes down that it is about to ("claims" the natural key). If the answer
 * is lost (timeout, crash), the claim says the thing may exist; a later attempt must find
 * it by search, and because amoCRM's search index trails a create by a few seconds, one
 * empty search is not proof until the claim has settled.
 */

export type ClaimState =
  | { state: 'free' }
  | { state: 'created'; entityId: number }
  /**
   * A create may be in flight or lost. `settled`: its job no longer holds a lease (so no
   * request of it can still be waiting in the rate limiter or on the wire) and the search
   * index has had its time since the last attempt ended.
   */
  | { state: 'pending'; startedAt: number; settled: boolean };

export async function readClaim(
  db: Kysely<Database>,
  key: string,
  settleMs: number,
  /** The reader's own job: its earlier attempt is over, whatever its lease says. */
  selfJobId: number,
  now = Date.now(),
): Promise<ClaimState> {
  const row = await db
    .selectFrom('amo_creates')
    .leftJoin('jobs', (join) =>
      join.onRef('jobs.id', '=', 'amo_creates.job_id').on('jobs.status', '=', 'running').on('jobs.locked_until', '>', now),
    )
    .select(['amo_creates.started_at', 'amo_creates.entity_id', 'jobs.id as holder'])
    .where('amo_creates.natural_key', '=', key)
    .executeTakeFirst();
  if (!row) return { state: 'free' };
  if (row.entity_id !== null) return { state: 'created', entityId: row.entity_id };
  const held = row.holder !== null && row.holder !== selfJobId;
  return { state: 'pending', startedAt: row.started_at, settled: !held && now - row.started_at >= settleMs };
}

/**
 * Takes the right to create. Succeeds when the key was free, or when the pending claim
 * seen by the caller is still the one on record (compare-and-set on started_at), so two
 * workers can never both win.
 */
export async function takeClaim(
  db: Kysely<Database>,
  key: string,
  seen: ClaimState,
  jobId: number,
  now = Date.now(),
): Promise<boolean> {
  if (seen.state === 'created') return false;
  if (seen.state === 'free') {
    const inserted = await db
      .insertInto('amo_creates')
      .values({ natural_key: key, started_at: now, job_id: jobId, entity_id: null })
      .onConflict((oc) => oc.column('natural_key').doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
  }
  const updated = await db
    .updateTable('amo_creates')
    .set({ started_at: now, job_id: jobId })
    .where('natural_key', '=', key)
    .where('started_at', '=', seen.startedAt)
    .where('entity_id', 'is', null)
    .executeTakeFirst();
  return Number(updated.numUpdatedRows) > 0;
}

/** The create's answer was lost: the search index's time counts from now. */
export async function markClaimsUnknown(db: Kysely<Database>, keys: string[], now = Date.now()): Promise<void> {
  if (keys.length === 0) return;
  await db.updateTable('amo_creates').set({ started_at: now }).where('natural_key', 'in', keys).where('entity_id', 'is', null).execute();
}

export async function settleClaim(db: Kysely<Database>, key: string, entityId: number, now = Date.now()): Promise<void> {
  await db
    .insertInto('amo_creates')
    .values({ natural_key: key, started_at: now, job_id: null, entity_id: entityId })
    .onConflict((oc) => oc.column('natural_key').doUpdateSet({ entity_id: entityId }))
    .execute();
}

/** The create was refused outright (a 4xx): nothing exists, so nothing is in doubt. */
export async function dropClaim(db: Kysely<Database>, key: string): Promise<void> {
  await db.deleteFrom('amo_creates').where('natural_key', '=', key).where('entity_id', 'is', null).execute();
}

export const contactClaimKey = (userId: string) => `contact:${userId}`;
export const dealClaimKey = (orderId: string) => `deal:${orderId}`;
