import { createHash } from 'node:crypto';
import { CONTACT_FIELDS, type ContactField, type ContactOwnership } from '../mappings/schema.js';
import type { Customer } from '../partner/schema.js';
import type { AmoContactView } from './ports.js';

/**
 * Field ownership as pure decisions: which of a returning user's contact fields Company 1
 * overwrites. The contacts directory keeps, per field Company 1 owns, a fingerprint of the
 * value the bridge last wrote or saw in amoCRM, not the value: equality is all ownership
 * needs, and the directory holds no names, phones or e-mails.
 */

/** Contact fields as values (a customer's, or a contact's as amoCRM has it). */
export type ContactValues = Partial<Record<ContactField, string>>;

/** Fingerprints by field; a field absent is unknown (never recorded), not empty. */
export type ContactFingerprints = Partial<Record<ContactField, string>>;

/** Fields whose owner is Company 1. Empty (the default) means no reading and no writing at all. */
export function company1Fields(ownership: ContactOwnership): ContactField[] {
  return CONTACT_FIELDS.filter((f) => ownership[f] === 'company1');
}

/** What counts as the same value: phones by their digits, e-mails case-insensitively, names trimmed. */
export function normalizeField(field: ContactField, value: string | undefined): string {
  const v = (value ?? '').trim();
  if (field === 'phone') return v.replace(/\D/g, '');
  if (field === 'email') return v.toLowerCase();
  return v.replace(/\s+/g, ' ');
}

export function fingerprint(field: ContactField, value: string | undefined): string {
  return createHash('sha256').update(`${field}:${normalizeField(field, value)}`).digest('hex').slice(0, 32);
}

/** Fingerprints of `fields` of `values` (a field with no value gets the empty value's). */
export function fingerprintsOf(values: ContactValues, fields: readonly ContactField[]): ContactFingerprints {
  return Object.fromEntries(fields.map((f) => [f, fingerprint(f, values[f])]));
}

/** Owned fields the directory has no fingerprint for: amoCRM must be read once for them. */
export function unknownFields(ownership: ContactOwnership, known: ContactFingerprints): ContactField[] {
  return company1Fields(ownership).filter((f) => known[f] === undefined);
}

/**
 * The fields to overwrite on the contact: those Company 1 owns whose value in the order
 * differs from the contact's (as fingerprinted in `current`). Company 1 having no value
 * (no e-mail) never clears the contact's; detmirUserId is not a field here at all.
 */
export function contactFieldUpdates(ownership: ContactOwnership, customer: Customer, current: ContactFingerprints): ContactValues {
  const updates: ContactValues = {};
  for (const field of company1Fields(ownership)) {
    const value = customer[field];
    if (value === undefined || normalizeField(field, value) === '') continue;
    if (current[field] === fingerprint(field, value)) continue;
    updates[field] = value;
  }
  return updates;
}

/**
 * A contact's four fields as amoCRM answers them: names, and the first value of the
 * account's PHONE and EMAIL fields (named by field_code, as amoCRM's predefined contact
 * fields are: amoCRM docs, "Поля и группы полей", the `code` of a field).
 */
export function contactValuesOf(contact: AmoContactView): ContactValues {
  const first = (code: string) => {
    const v = contact.custom_fields_values?.find((f) => f.field_code === code)?.values[0]?.value;
    return typeof v === 'string' ? v : undefined;
  };
  return {
    firstName: contact.first_name ?? undefined,
    lastName: contact.last_name ?? undefined,
    phone: first('PHONE'),
    email: first('EMAIL'),
  };
}
