import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Customer } from '../partner/schema.js';
import type { WebviewMappings } from '../sync/webview-orders.js';
import type { Messages } from './messages/index.js';

/** The new-order form: its fields, its validation, and what it becomes. Labels and errors are in the catalogue. */

export interface FormField {
  id: 'firstName' | 'lastName' | 'phone' | 'comment';
  type: 'text' | 'tel';
  autocomplete: string;
  maxLength: number;
  required: boolean;
  multiline?: boolean;
}

export const FORM_FIELDS: FormField[] = [
  { id: 'firstName', type: 'text', autocomplete: 'given-name', maxLength: 200, required: true },
  { id: 'lastName', type: 'text', autocomplete: 'family-name', maxLength: 200, required: false },
  { id: 'phone', type: 'tel', autocomplete: 'tel', maxLength: 40, required: true },
  { id: 'comment', type: 'text', autocomplete: 'off', maxLength: 2000, required: false, multiline: true },
];

export type FormValues = Partial<Record<'serviceId' | 'nonce' | FormField['id'], string>>;

/** One per rendering of the form: with the user id, the order's Idempotency-Key. */
export function newNonce(): string {
  return randomBytes(18).toString('base64url');
}

const formSchema = z.object({
  serviceId: z.string().min(1),
  firstName: z.string().trim().min(1).max(200),
  lastName: z.string().trim().max(200).default(''),
  phone: z
    .string()
    .trim()
    .regex(/^\+?[0-9][0-9 ()-]{4,38}$/),
  comment: z.string().max(2000).default(''),
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
});

export type NewOrderInput = { serviceId: string; customer: Customer; comment?: string; nonce: string };

/** What is wrong with a field, for the catalogue to word. */
export type FormError =
  | { code: 'chooseService' | 'enterFirstName' | 'enterPhone' | 'formExpired' }
  | { code: 'tooLong'; max: number };

const FIELD_ERROR: Record<string, Exclude<FormError['code'], 'tooLong'>> = {
  serviceId: 'chooseService',
  firstName: 'enterFirstName',
  phone: 'enterPhone',
  nonce: 'formExpired',
};

export function formErrorText(error: FormError, t: Messages): string {
  return error.code === 'tooLong' ? t.form.errors.tooLong(error.max) : t.form.errors[error.code];
}

export type FormResult =
  | { ok: true; input: NewOrderInput }
  | { ok: false; errors: Record<string, FormError>; values: FormValues };

/** Only the form's own string fields, whatever else was posted. */
export function formValues(body: unknown): FormValues {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const values: FormValues = {};
  for (const key of ['serviceId', 'nonce', 'firstName', 'lastName', 'phone', 'comment'] as const) {
    const value = record[key];
    if (typeof value === 'string') values[key] = value;
  }
  return values;
}

export function parseNewOrderForm(body: unknown, mappings: WebviewMappings): FormResult {
  const values = formValues(body);
  const parsed = formSchema.safeParse(values);
  const errors: Record<string, FormError> = {};
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = String(issue.path[0] ?? 'form');
      const code = FIELD_ERROR[field];
      if (issue.code === 'too_big' && field !== 'nonce') errors[field] ??= { code: 'tooLong', max: Number(issue.maximum) };
      else if (code) errors[field] ??= { code };
    }
  }
  if (values.serviceId && !mappings.services.some((s) => s.id === values.serviceId)) errors.serviceId = { code: 'chooseService' };
  if (!parsed.success || Object.keys(errors).length > 0) return { ok: false, errors, values };
  const v = parsed.data;
  const comment = v.comment.trim();
  return {
    ok: true,
    input: {
      serviceId: v.serviceId,
      customer: { firstName: v.firstName, lastName: v.lastName, phone: v.phone },
      ...(comment ? { comment } : {}),
      nonce: v.nonce,
    },
  };
}
