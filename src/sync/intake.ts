import type { Db } from '../db/connect.js';
import type { Order as OrderRow } from '../db/schema.js';
import { onBehalfOf } from '../lib/call-context.js';
import { isRetryable } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import type { Mappings } from '../mappings/resolve.js';
import { type Order, orderSchema } from '../partner/schema.js';
import {
  type ClaimState,
  contactClaimKey,
  dealClaimKey,
  dropClaim,
  markClaimsUnknown,
  readClaim,
  settleClaim,
  takeClaim,
} from './claims.js';
import { type DirectoryUse, touchDirectory } from './contact-directory.js';
import { contactValuesOf } from './contact-fields.js';
import { appendOrderLog } from './order-log.js';
import { type SeenContact, syncContactFields, syncedColumns } from './contact-ownership.js';
import { type AmoContactView, type AmoLeadView, type AmoPort, type ComplexLeadInput, customFieldText } from './ports.js';

/**
 * Stage 1 intake: every order gets exactly one contact per user and one deal per order.
 *
 * Lookups first (the contact by detmirUserId, and the deal by detmirOrderId when an
 * earlier create may have happened), then all the creates of the batch in one
 * POST /api/v4/leads/complex per 50 deals, each deal with its contact: a new user's order
 * costs one search and a fiftieth of a create. Every id is recorded the moment it is known.
 */

export interface IntakeDeps {
  db: Db;
  amo: AmoPort;
  mappings: Mappings;
  logger: Logger;
  /** How long a create of unknown outcome must sit before one empty search counts. */
  settleMs: number;
  /** Lookups in flight at once; the rate limiter, not this, sets the pace. */
  lookupConcurrency?: number;
}

export type IntakeOutcome =
  | {
      type: 'ready';
      contactId: number;
      dealId: number;
      /**
       * The deal was created or found by its detmirOrderId in this run, so it is the
       * order's. A recorded id is not proof: amoCRM ids can come back on other records
       * (src/sync/deal-ownership.ts), so it is checked before anything is written to it.
       */
      dealSeen: boolean;
    }
  | { type: 'postpone'; delayMs: number; reason: string }
  | { type: 'failed'; error: unknown };

type Lookup =
  | IntakeOutcome
  | { type: 'create'; order: Order; contact: { id: number } | { newFor: string; claim: ClaimState }; dealClaim: ClaimState };

const COMPLEX_LIMIT = 50;
const SAME_USER_RETRY_MS = 500;
/**
 * How far before a create of unknown outcome was marked so (when its answer failed) its
 * deal may have been created: the request's own time in flight (the transport gives up
 * after 15 s) and any skew between this clock and amoCRM's.
 */
const LOST_CREATE_LOOKBACK_MS = 120_000;

/**
 * `jobOf` names the job working on each order: a claim remembers it, so nobody takes
 * over a create while that job still holds its lease.
 */
export async function intakeOrders(
  deps: IntakeDeps,
  rows: OrderRow[],
  jobOf: Map<string, number>,
): Promise<Map<string, IntakeOutcome>> {
  const outcomes = new Map<string, IntakeOutcome>();
  const lost = await findLostCreates(deps, rows, jobOf);
  for (const [orderId, outcome] of lost.outcomes) outcomes.set(orderId, outcome);
  const open = rows.filter((row) => !lost.outcomes.has(row.order_id));
  const lookups = await mapLimited(open, deps.lookupConcurrency ?? 8, (row) =>
    onBehalfOf([row.order_id], () => lookUp(deps, row, jobOf.get(row.order_id) ?? 0, lost)).catch((error: unknown): Lookup => ({ type: 'failed', error })),
  );

  const creates: Array<Extract<Lookup, { type: 'create' }>> = [];
  const newContactFor = new Set<string>();
  open.forEach((row, i) => {
    const lookup = lookups[i]!;
    if (lookup.type !== 'create') return void outcomes.set(row.order_id, lookup);
    // One new contact per user: a second order of the same new user waits for the first
    // to record its contact, then links to it.
    if ('newFor' in lookup.contact) {
      if (newContactFor.has(lookup.contact.newFor)) {
        outcomes.set(row.order_id, { type: 'postpone', delayMs: SAME_USER_RETRY_MS, reason: 'contact of this user is being created' });
        return;
      }
      newContactFor.add(lookup.contact.newFor);
    }
    creates.push(lookup);
  });

  for (let i = 0; i < creates.length; i += COMPLEX_LIMIT) {
    const chunk = await claimAll(deps, creates.slice(i, i + COMPLEX_LIMIT), outcomes, jobOf);
    if (chunk.length > 0) await createChunk(deps, chunk, outcomes);
  }
  // A returning user's contact gets the fields Company 1 owns that changed (none by default).
  await syncContactFields(deps, rows, outcomes);
  await touchDirectory(deps.db.kysely, directoryUses(rows, outcomes));
  return outcomes;
}

/** Each user with a ready order, as their newest order in the batch names them. */
function directoryUses(rows: OrderRow[], outcomes: Map<string, IntakeOutcome>): DirectoryUse[] {
  const byUser = new Map<string, DirectoryUse & { at: number }>();
  for (const row of rows) {
    const outcome = outcomes.get(row.order_id);
    if (outcome?.type !== 'ready') continue;
    const order = orderSchema.parse(JSON.parse(row.snapshot));
    const at = Date.parse(order.createdAt) || 0;
    const seen = byUser.get(row.user_id);
    if (seen && seen.at > at) continue;
    byUser.set(row.user_id, { userId: row.user_id, contactId: outcome.contactId, customer: order.customer, at });
  }
  return [...byUser.values()];
}

interface LostCreates {
  /** Orders settled here: deal (and contact) found, or waiting for the outcome to settle. */
  outcomes: Map<string, IntakeOutcome>;
  /** Orders whose earlier create, settled, is proven to have made no deal: no deal search needed. */
  absent: Set<string>;
  /** Users whose contact that create would have made is proven not to exist: no contact search needed. */
  noContact: Set<string>;
}

/**
 * Creates of unknown outcome (a leads/complex whose answer was lost: up to 50 orders at
 * once) are looked for together, in one listing of the deals created since shortly before
 * the earliest of them (every pipeline, in id order; as many pages as it takes, up to one
 * per two such orders), matched by detmirOrderId — instead of a contact search and a deal
 * search per order. amoCRM's filters read the deals themselves, not the search index, so
 * a create that was carried out shows at once, with its contact. A create not found is
 * proven not to have happened once its claim has settled (no request of it can still
 * arrive): its order skips the deal search; until then it waits, without searching. When
 * the listing could not be read to its end, the orders go the usual way (searches).
 */
async function findLostCreates(deps: IntakeDeps, rows: OrderRow[], jobOf: Map<string, number>): Promise<LostCreates> {
  const result: LostCreates = { outcomes: new Map(), absent: new Set(), noContact: new Set() };
  const candidates = rows.filter((row) => row.deal_id === null);
  if (candidates.length === 0) return result;
  const claimed = await deps.db.kysely
    .selectFrom('amo_creates')
    .select('natural_key')
    .where('natural_key', 'in', candidates.map((row) => dealClaimKey(row.order_id)))
    .where('entity_id', 'is', null)
    .execute();
  if (claimed.length === 0) return result;
  const claimedKeys = new Set(claimed.map((c) => c.natural_key));
  const pending = new Map<string, { row: OrderRow; claim: Extract<ClaimState, { state: 'pending' }> }>();
  for (const row of candidates) {
    if (!claimedKeys.has(dealClaimKey(row.order_id))) continue;
    const claim = await readClaim(deps.db.kysely, dealClaimKey(row.order_id), deps.settleMs, jobOf.get(row.order_id) ?? 0);
    if (claim.state === 'pending') pending.set(row.order_id, { row, claim });
  }
  if (pending.size === 0) return result;

  const since = Math.min(...[...pending.values()].map((p) => p.claim.startedAt)) - LOST_CREATE_LOOKBACK_MS;
  const found = new Map<string, AmoLeadView>();
  const maxPages = Math.ceil(pending.size / 2);
  let complete = false;
  for (let page = 1; page <= maxPages; page++) {
    let listed;
    try {
      listed = await deps.amo.listLeadsCreatedSince({ fromUnix: Math.floor(since / 1000), page });
    } catch (error) {
      // amoCRM failed the listing: those orders try again later (a search each would cost more).
      if (!isRetryable(error)) return result;
      for (const orderId of pending.keys()) result.outcomes.set(orderId, { type: 'failed', error });
      return result;
    }
    const { leads, hasMore } = listed;
    for (const lead of leads) {
      const orderId = customFieldText(lead, deps.mappings.fields.detmirOrderId);
      if (orderId === undefined || !pending.has(orderId)) continue;
      const earlier = found.get(orderId);
      if (!earlier || lead.id < earlier.id) found.set(orderId, lead);
    }
    if (!hasMore || leads.length === 0) {
      complete = true;
      break;
    }
  }

  for (const [orderId, { row, claim }] of pending) {
    const lead = found.get(orderId);
    if (lead) {
      const known = row.contact_id ?? (await knownContact(deps.db, row.user_id));
      const contactId = known ?? lead._embedded?.contacts?.[0]?.id;
      if (contactId === undefined) continue; // the usual way reports it
      if (known === undefined) await recordContact(deps, row.user_id, contactId);
      await recordDeal(deps, orderId, lead.id, contactId);
      deps.logger.info('order.intake.deal_found', { orderId, dealId: lead.id });
      result.outcomes.set(orderId, { type: 'ready', contactId, dealId: lead.id, dealSeen: true });
    } else if (complete && !claim.settled) {
      result.outcomes.set(orderId, settleWait(deps, claim, `deal create for order ${orderId} has an unknown outcome`));
    } else if (complete) {
      result.absent.add(orderId);
    }
  }
  const absentRows = [...pending.values()].filter((p) => result.absent.has(p.row.order_id)).map((p) => p.row);
  await findLostContacts(deps, absentRows, jobOf, since, result);
  return result;
}

/**
 * For the orders whose create is proven not to have made their deal: the contacts created
 * in the same span (from before the failed request was sent), matched by detmirUserId, in
 * one listing. A contact found (the create's, or one staff made meanwhile) is recorded; a
 * user with none has no contact from that create, and is not searched for again before
 * the create is retried — as on the first attempt, which searched once before creating.
 */
async function findLostContacts(
  deps: IntakeDeps,
  rows: OrderRow[],
  jobOf: Map<string, number>,
  since: number,
  result: LostCreates,
): Promise<void> {
  const users = new Set<string>();
  for (const row of rows) {
    if (row.contact_id !== null || (await knownContact(deps.db, row.user_id)) !== undefined) continue;
    const claim = await readClaim(deps.db.kysely, contactClaimKey(row.user_id), deps.settleMs, jobOf.get(row.order_id) ?? 0);
    if (claim.state === 'pending' && claim.settled) users.add(row.user_id);
  }
  if (users.size === 0) return;
  const found = new Map<string, AmoContactView>();
  const maxPages = Math.ceil(users.size / 2);
  for (let page = 1; page <= maxPages; page++) {
    let listed;
    try {
      listed = await deps.amo.listContactsCreatedSince({ fromUnix: Math.floor(since / 1000), page });
    } catch {
      return; // the usual way: a search each
    }
    for (const contact of listed.contacts) {
      const userId = customFieldText(contact, deps.mappings.fields.detmirUserId);
      if (userId === undefined || !users.has(userId)) continue;
      const earlier = found.get(userId);
      if (!earlier || contact.id < earlier.id) found.set(userId, contact);
    }
    if (!listed.hasMore || listed.contacts.length === 0) {
      for (const userId of users) {
        const contact = found.get(userId);
        if (contact) await recordContact(deps, userId, contact.id, { values: contactValuesOf(contact), orderAt: null });
        else result.noContact.add(userId);
      }
      return;
    }
  }
}

async function lookUp(deps: IntakeDeps, row: OrderRow, jobId: number, lost: Pick<LostCreates, 'absent' | 'noContact'>): Promise<Lookup> {
  const order = orderSchema.parse(JSON.parse(row.snapshot));
  const { db, mappings } = deps;

  let contactId = row.contact_id ?? (await knownContact(db, row.user_id));
  let contactClaim: ClaimState = { state: 'free' };
  if (contactId === undefined) {
    const found = await findContact(deps, row.user_id, jobId, lost.noContact.has(row.user_id));
    if (found.type === 'postpone') return found;
    if (found.type === 'found') contactId = found.contactId;
    else contactClaim = found.claim;
  }

  if (row.deal_id !== null && contactId !== undefined) return { type: 'ready', contactId, dealId: row.deal_id, dealSeen: false };

  const dealClaim = await readClaim(db.kysely, dealClaimKey(row.order_id), deps.settleMs, jobId);
  if (dealClaim.state === 'created' && contactId !== undefined) {
    await recordDeal(deps, row.order_id, dealClaim.entityId, contactId);
    return { type: 'ready', contactId, dealId: dealClaim.entityId, dealSeen: false };
  }
  if (dealClaim.state !== 'free' && !lost.absent.has(row.order_id)) {
    // An earlier attempt may have created the deal: find it by detmirOrderId.
    const leads = await deps.amo.searchLeads(row.order_id);
    const lead = leads
      .filter((l) => customFieldText(l, mappings.fields.detmirOrderId) === row.order_id)
      .sort((a, b) => a.id - b.id)[0];
    if (lead) {
      const leadContact = contactId ?? lead._embedded?.contacts?.[0]?.id;
      if (leadContact === undefined) throw new Error(`deal ${lead.id} of order ${row.order_id} has no contact`);
      if (contactId === undefined) await recordContact(deps, row.user_id, leadContact);
      await recordDeal(deps, row.order_id, lead.id, leadContact);
      deps.logger.info('order.intake.deal_found', { orderId: row.order_id, dealId: lead.id });
      await appendOrderLog(db.kysely, [{ orderId: row.order_id, source: 'amocrm', event: 'deal.found', detail: { dealId: lead.id, contactId: leadContact } }]);
      return { type: 'ready', contactId: leadContact, dealId: lead.id, dealSeen: true };
    }
    if (dealClaim.state === 'pending' && !dealClaim.settled) {
      return settleWait(deps, dealClaim, `deal create for order ${row.order_id} has an unknown outcome`);
    }
  }
  return {
    type: 'create',
    order,
    contact: contactId !== undefined ? { id: contactId } : { newFor: row.user_id, claim: contactClaim },
    dealClaim,
  };
}

type ContactSearch =
  | { type: 'found'; contactId: number }
  | { type: 'absent'; claim: ClaimState }
  | { type: 'postpone'; delayMs: number; reason: string };

/**
 * The contact whose detmirUserId is exactly this user id, including ones staff made.
 * `provenAbsent`: findLostContacts has just listed the contacts created since before the
 * failed create of this user's contact, and found none of theirs.
 */
async function findContact(deps: IntakeDeps, userId: string, jobId: number, provenAbsent = false): Promise<ContactSearch> {
  const key = contactClaimKey(userId);
  const claim = await readClaim(deps.db.kysely, key, deps.settleMs, jobId);
  if (claim.state === 'created') {
    await recordContact(deps, userId, claim.entityId);
    return { type: 'found', contactId: claim.entityId };
  }
  if (provenAbsent && claim.state === 'pending' && claim.settled) return { type: 'absent', claim };
  // `query` is a full-text search over every field: "u1" also finds "u10" and phones.
  const matches = (await deps.amo.searchContacts(userId))
    .filter((c) => customFieldText(c, deps.mappings.fields.detmirUserId) === userId)
    .sort((a, b) => a.id - b.id);
  if (matches.length > 0) {
    const contactId = matches[0]!.id;
    if (matches.length > 1) {
      deps.logger.warn('order.intake.duplicate_contacts', { userId, contactIds: matches.map((c) => c.id), using: contactId });
    }
    await recordContact(deps, userId, contactId, { values: contactValuesOf(matches[0]!), orderAt: null });
    deps.logger.info('order.intake.contact_found', { userId, contactId });
    return { type: 'found', contactId };
  }
  if (claim.state === 'pending' && !claim.settled) {
    return settleWait(deps, claim, `contact create for user ${userId} has an unknown outcome`);
  }
  return { type: 'absent', claim };
}

function settleWait(deps: IntakeDeps, claim: Extract<ClaimState, { state: 'pending' }>, reason: string) {
  const delayMs = Math.max(200, claim.startedAt + deps.settleMs - Date.now());
  return { type: 'postpone' as const, delayMs, reason: `${reason}; waiting for amoCRM's search index` };
}

/** Claims every create of a chunk; an order whose claim another worker holds waits. */
async function claimAll(
  deps: IntakeDeps,
  creates: Array<Extract<Lookup, { type: 'create' }>>,
  outcomes: Map<string, IntakeOutcome>,
  jobOf: Map<string, number>,
) {
  const claimed: typeof creates = [];
  for (const c of creates) {
    const jobId = jobOf.get(c.order.id) ?? 0;
    const dealOk = await takeClaim(deps.db.kysely, dealClaimKey(c.order.id), c.dealClaim, jobId);
    const contactOk =
      !('newFor' in c.contact) || (await takeClaim(deps.db.kysely, contactClaimKey(c.contact.newFor), c.contact.claim, jobId));
    if (dealOk && contactOk) claimed.push(c);
    else {
      if (dealOk) await dropClaim(deps.db.kysely, dealClaimKey(c.order.id));
      outcomes.set(c.order.id, { type: 'postpone', delayMs: SAME_USER_RETRY_MS, reason: 'another worker is creating it' });
    }
  }
  return claimed;
}

async function createChunk(
  deps: IntakeDeps,
  chunk: Array<Extract<Lookup, { type: 'create' }>>,
  outcomes: Map<string, IntakeOutcome>,
): Promise<void> {
  const { mappings } = deps;
  const items: ComplexLeadInput[] = chunk.map(({ order, contact }) => ({
    requestId: order.id,
    name: dealName(order, mappings),
    pipelineId: mappings.pipeline.id,
    statusId: mappings.initialStatus.id,
    tagIds: mappings.tag.id !== undefined ? [mappings.tag.id] : [],
    customFields: [{ fieldId: mappings.fields.detmirOrderId, value: order.id }],
    contact:
      'id' in contact
        ? { id: contact.id }
        : {
            firstName: order.customer.firstName,
            lastName: order.customer.lastName,
            name: `${order.customer.firstName} ${order.customer.lastName}`.trim(),
            phone: order.customer.phone,
            ...(order.customer.email ? { email: order.customer.email } : {}),
            customFields: [{ fieldId: mappings.fields.detmirUserId, value: order.userId }],
          },
  }));

  let results;
  try {
    results = await deps.amo.createLeadsComplex(items);
  } catch (error) {
    // A refusal (4xx) created nothing, so the claims can go; anything else is in doubt
    // from this moment, which is when the search index's grace starts.
    const keys = chunk.flatMap((c) => [dealClaimKey(c.order.id), ...('newFor' in c.contact ? [contactClaimKey(c.contact.newFor)] : [])]);
    if (isRetryable(error)) await markClaimsUnknown(deps.db.kysely, keys);
    else for (const key of keys) await dropClaim(deps.db.kysely, key);
    for (const c of chunk) outcomes.set(c.order.id, { type: 'failed', error });
    return;
  }

  const byRequest = new Map<string, (typeof results)[number]>();
  results.forEach((r, i) => {
    const rid = Array.isArray(r.request_id) ? r.request_id[0] : r.request_id;
    byRequest.set(rid ?? items[i]!.requestId, r);
  });
  for (const c of chunk) {
    const result = byRequest.get(c.order.id);
    if (!result) {
      outcomes.set(c.order.id, { type: 'failed', error: new Error('leads/complex answered without this order') });
      continue;
    }
    const contactId = 'id' in c.contact ? c.contact.id : result.contact_id;
    if (contactId === null || contactId === undefined) {
      outcomes.set(c.order.id, { type: 'failed', error: new Error(`deal ${result.id} was created without a contact`) });
      continue;
    }
    if ('newFor' in c.contact) {
      await recordContact(deps, c.order.userId, contactId, { values: c.order.customer, orderAt: Date.parse(c.order.createdAt) || 0 });
      deps.logger.info('order.intake.contact_created', { orderId: c.order.id, userId: c.order.userId, contactId });
    }
    await recordDeal(deps, c.order.id, result.id, contactId);
    deps.logger.info('order.intake.deal_created', { orderId: c.order.id, dealId: result.id, contactId });
    await appendOrderLog(deps.db.kysely, [
      {
        orderId: c.order.id,
        source: 'amocrm',
        event: 'deal.created',
        detail: { call: 'POST /api/v4/leads/complex', dealId: result.id, contactId, contactCreated: 'newFor' in c.contact },
      },
    ]);
    outcomes.set(c.order.id, { type: 'ready', contactId, dealId: result.id, dealSeen: true });
  }
}

function dealName(order: Order, mappings: Mappings): string {
  const service = mappings.services.find((s) => s.id === order.serviceId)?.name ?? order.serviceId;
  return `${service} — order ${order.id}`;
}

async function knownContact(db: Db, userId: string): Promise<number | undefined> {
  const row = await db.kysely.selectFrom('contacts').select('contact_id').where('user_id', '=', userId).executeTakeFirst();
  return row?.contact_id;
}

/** `seen`: what the contact holds, when known (field ownership keeps fingerprints of it). */
async function recordContact(deps: IntakeDeps, userId: string, contactId: number, seen?: SeenContact): Promise<void> {
  await deps.db.kysely.transaction().execute(async (trx) => {
    await trx
      .insertInto('contacts')
      .values({ user_id: userId, contact_id: contactId, created_at: Date.now(), last_used_at: Date.now(), ...syncedColumns(deps.mappings.contactOwnership, seen) })
      .onConflict((oc) => oc.column('user_id').doNothing())
      .execute();
    await settleClaim(trx, contactClaimKey(userId), contactId);
  });
}

async function recordDeal(deps: IntakeDeps, orderId: string, dealId: number, contactId: number): Promise<void> {
  await deps.db.kysely.transaction().execute(async (trx) => {
    await trx
      .updateTable('orders')
      .set({ deal_id: dealId, contact_id: contactId, updated_at: Date.now() })
      .where('order_id', '=', orderId)
      .execute();
    await settleClaim(trx, dealClaimKey(orderId), dealId);
  });
}

/** Maps with at most `limit` promises in flight, keeping the input order. */
export async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  });
  await Promise.all(runners);
  return out;
}
