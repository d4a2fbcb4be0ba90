import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Customer } from '../partner/schema.js';
import type { WebviewMappings } from '../sync/webview-orders.js';

/** The new-order form: its fields, its validation, and what it becomes. */

export interface FormField {
  id: 'firstName' | 'lastName' | 'phone' | 'comment';
  label: string;
  type: 'text' | 'tel';
  autocomplete: string;
  maxLength: number;
  required: boolean;
  multiline?: boolean;
}

export const FORM_FIELDS: FormField[] = [
  { id: 'firstName', label: 'First name', type: 'text', autocomplete: 'given-name', maxLength: 200, required: true },
  { id: 'lastName', label: 'Last name', type: 'text', autocomplete: 'family-name', maxLength: 200, required: false },
  { id: 'phone', label: 'Phone', type: 'tel', autocomplete: 'tel', maxLength: 40, required: true },
  { id: 'comment', label: 'Comment for Company 2', type: 'text', autocomplete: 'off', maxLength: 2000, required: false, multiline: true },
];

export type FormValues = Partial<Record<'serviceId' | 'nonce' | FormField['id'], string>>;

/** One per rendering of the form: with the user id, the order's Idempotency-Key. */
export function newNonce(): string {
  return randomBytes(18).toString('base64url');
}

const text = (max: number) => z.string().trim().max(max, `Keep it under ${max} characters`);

const formSchema = z.object({
  serviceId: z.string({ error: 'Choose a service' }).min(1, 'Choose a service'),
  firstName: text(200).min(1, 'Enter your first name'),
  lastName: text(200).default(''),
  phone: z
    .string({ error: 'Enter your phone number' })
    .trim()
    .regex(/^\+?[0-9][0-9 ()-]{4,38}$/, 'Enter a phone number, like +7 903 555-01-01'),
  comment: z.string().max(2000, 'Keep the comment under 2000 characters').default(''),
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'The form is out of date: reload it and try again'),
});

export type NewOrderInput = { serviceId: string; customer: Customer; comment?: string; nonce: string };

export type FormResult =
  | { ok: true; input: NewOrderInput }
  | { ok: false; errors: Record<string, string>; values: FormValues };

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
  const errors: Record<string, string> = {};
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = String(issue.path[0] ?? 'form');
      errors[field] ??= issue.message;
    }
  }
  if (values.serviceId && !mappings.services.some((s) => s.id === values.serviceId)) errors.serviceId = 'Choose a service';
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
