import { z } from 'zod';
import type { Db } from '../db/connect.js';
import type { ContactsTable, Order as OrderRow } from '../db/schema.js';
import { isRetryable } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import type { Mappings } from '../mappings/resolve.js';
import { CONTACT_FIELDS, type ContactOwnership } from '../mappings/schema.js';
import { type Order, orderSchema } from '../partner/schema.js';
import {
  company1Fields,
  type ContactFingerprints,
  type ContactValues,
  contactFieldUpdates,
  contactValuesOf,
  fingerprintsOf,
  unknownFields,
} from './contact-fields.js';
import type { IntakeOutcome } from './intake.js';
import { appendOrderLog } from './order-log.js';
import type { AmoPort } from './ports.js';

/**
 * Field ownership, the I/O around contact-fields.ts: after intake, a returning user's
 * contact gets the fields Company 1 owns that changed since the bridge last wrote or saw
 * them, in one PATCH for the whole batch. The directory's fingerprints stand in for
 * amoCRM's current values, so the common case reads nothing; a contact the directory has
 * no fingerprint for is read once (one GET for the batch). With every field owned by
 * amoCRM (the default) nothing here runs.
 */

export interface ContactOwnershipDeps {
  db: Db;
  amo: AmoPort;
  mappings: Mappings;
  logger: Logger;
}

/** What a contact holds once the bridge made or found it: the values, and the order they came from. */
export interface SeenContact {
  values: ContactValues;
  /** createdAt (ms) of the order whose customer these are; null when read from amoCRM. */
  orderAt: number | null;
}

const fingerprintsSchema = z.partialRecord(z.enum(CONTACT_FIELDS), z.string());

/** The directory columns for a contact seen as `seen`: fingerprints of the fields Company 1 owns only. */
export function syncedColumns(ownership: ContactOwnership, seen: SeenContact | undefined): Pick<ContactsTable, 'synced_fields' | 'synced_order_at'> {
  const fields = company1Fields(ownership);
  if (!seen || fields.length === 0) return { synced_fields: null, synced_order_at: null };
  return { synced_fields: JSON.stringify(fingerprintsOf(seen.values, fields)), synced_order_at: seen.orderAt };
}

function knownFingerprints(ownership: ContactOwnership, column: string | null): ContactFingerprints {
  const parsed = column === null ? undefined : fingerprintsSchema.safeParse(JSON.parse(column)).data;
  // Only what ownership needs now: fingerprints of fields staff have since taken back are dropped.
  return Object.fromEntries(company1Fields(ownership).flatMap((f) => (parsed?.[f] !== undefined ? [[f, parsed[f]]] : [])));
}

interface Candidate {
  userId: string;
  contactId: number;
  order: Order;
  orderAt: number;
  /** Every ready order of the user in the batch: they wait for the contact together. */
  orderIds: string[];
  known: ContactFingerprints;
  /** The directory has an entry for this user and contact. */
  recorded: boolean;
}

export async function syncContactFields(
  deps: ContactOwnershipDeps,
  rows: OrderRow[],
  outcomes: Map<string, IntakeOutcome>,
): Promise<void> {
  const { db, amo, logger } = deps;
  const ownership = deps.mappings.contactOwnership;
  if (company1Fields(ownership).length === 0) return;

  // The newest ready order of each user speaks for the user.
  const byUser = new Map<string, Candidate>();
  for (const row of rows) {
    const outcome = outcomes.get(row.order_id);
    if (outcome?.type !== 'ready') continue;
    const order = orderSchema.parse(JSON.parse(row.snapshot));
    const orderAt = Date.parse(order.createdAt) || 0;
    const seen = byUser.get(row.user_id);
    const orderIds = [...(seen?.orderIds ?? []), row.order_id];
    if (seen && (seen.contactId !== outcome.contactId || seen.orderAt > orderAt)) seen.orderIds = orderIds;
    else byUser.set(row.user_id, { userId: row.user_id, contactId: outcome.contactId, order, orderAt, orderIds, known: {}, recorded: false });
  }
  if (byUser.size === 0) return;

  const entries = await db.kysely.selectFrom('contacts').selectAll().where('user_id', 'in', [...byUser.keys()]).execute();
  for (const entry of entries) {
    const c = byUser.get(entry.user_id)!;
    // The directory names another contact for this user: not this contact's values.
    if (entry.contact_id !== c.contactId) {
      logger.warn('contact.fields_skipped', { userId: c.userId, contactId: c.contactId, reason: 'the directory names another contact' });
      byUser.delete(c.userId);
      continue;
    }
    // An older order (an update of it arriving late) never takes a newer one's values back.
    if (entry.synced_order_at !== null && c.orderAt < entry.synced_order_at) {
      byUser.delete(c.userId);
      continue;
    }
    c.known = knownFingerprints(ownership, entry.synced_fields);
    c.recorded = true;
  }
  const candidates = [...byUser.values()];
  const toRead = candidates.filter((c) => unknownFields(ownership, c.known).length > 0);
  if (candidates.length === 0) return;

  try {
    if (toRead.length > 0) {
      const contacts = new Map((await amo.getContactsByIds(toRead.map((c) => c.contactId))).map((c) => [c.id, c]));
      for (const c of toRead) {
        const contact = contacts.get(c.contactId);
        if (!contact) {
          logger.warn('contact.fields_skipped', { userId: c.userId, contactId: c.contactId, reason: 'contact not found in amoCRM' });
          byUser.delete(c.userId);
          continue;
        }
        c.known = { ...fingerprintsOf(contactValuesOf(contact), unknownFields(ownership, c.known)), ...c.known };
      }
      logger.info('contact.fields_read', { contacts: toRead.length });
    }

    const changes = [...byUser.values()].map((c) => ({ c, values: contactFieldUpdates(ownership, c.order.customer, c.known) }));
    const updates = changes.filter(({ values }) => Object.keys(values).length > 0);
    if (updates.length > 0) await amo.updateContacts(updates.map(({ c, values }) => ({ id: c.contactId, ...values })));

    for (const { c, values } of changes) {
      const wrote = Object.keys(values).length > 0;
      // Nothing new to remember: no write.
      if (!wrote && c.recorded && !toRead.includes(c)) continue;
      const synced = { ...c.known, ...fingerprintsOf(values, company1Fields(ownership).filter((f) => values[f] !== undefined)) };
      await recordSynced(db, c, JSON.stringify(synced));
      if (wrote) {
        logger.info('contact.fields_updated', { userId: c.userId, contactId: c.contactId, fields: Object.keys(values) });
        // Field names only: the values are the customer's.
        const detail = { call: 'PATCH /api/v4/contacts', contactId: c.contactId, fields: Object.keys(values) };
        await appendOrderLog(db.kysely, c.orderIds.map((orderId) => ({ orderId, source: 'amocrm' as const, event: 'contact.updated', detail })));
      }
    }
  } catch (error) {
    if (isRetryable(error)) {
      for (const c of candidates) for (const id of c.orderIds) outcomes.set(id, { type: 'failed', error });
      return;
    }
    // A refusal (a value amoCRM will not take) must not hold the order up: said, not retried.
    logger.error('contact.fields_refused', {
      contactIds: candidates.map((c) => c.contactId),
      error: error instanceof Error ? error.message : String(error),
    });
  }
}

async function recordSynced(db: Db, c: Candidate, syncedFields: string): Promise<void> {
  const synced = { synced_fields: syncedFields, synced_order_at: c.orderAt };
  await db.kysely
    .insertInto('contacts')
    .values({ user_id: c.userId, contact_id: c.contactId, created_at: Date.now(), last_used_at: Date.now(), ...synced })
    .onConflict((oc) => oc.column('user_id').doUpdateSet(synced).where('contacts.contact_id', '=', c.contactId))
    .execute();
}
