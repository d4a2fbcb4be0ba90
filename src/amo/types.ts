import { z } from 'zod';

/**
 * The amoCRM API v4 answers the bridge reads, as zod schemas (unknown keys are dropped,
 * missing optional ones tolerated). Sources: amoCRM developer docs,
 * https://www.amocrm.ru/developers/content/crm_platform/leads-api,
 * .../contacts-api, .../custom-fields, .../webhooks-api, .../events-and-notes, and the
 * complex-add method https://developers.kommo.com/reference/complex-leads (Kommo is the
 * international amoCRM: same API v4).
 */

/**
 * One value of a custom field. Text, numeric and date fields carry a string or number;
 * multitext (PHONE, EMAIL) adds enum_id/enum_code; a few types (legal entity, linked
 * lists) carry an object. `customFieldText` (sync/ports.ts) reads the plain ones.
 */
export const customFieldValueItemSchema = z.object({
  value: z.union([z.string(), z.number(), z.boolean(), z.record(z.string(), z.unknown())]).nullable().optional(),
  enum_id: z.number().nullable().optional(),
  enum_code: z.string().nullable().optional(),
});

export const customFieldValueSchema = z.object({
  field_id: z.number(),
  field_name: z.string().nullable().optional(),
  field_code: z.string().nullable().optional(),
  field_type: z.string().nullable().optional(),
  values: z.array(customFieldValueItemSchema).nullable().transform((v) => v ?? []),
});
export type CustomFieldValue = z.infer<typeof customFieldValueSchema>;

/** amoCRM sends `custom_fields_values: null` for an entity with none. */
const customFieldsValues = z
  .array(customFieldValueSchema)
  .nullable()
  .optional()
  .transform((v) => v ?? null);

const embeddedRef = z.object({ id: z.number() });

/** A unix time that amoCRM may send as null; absent either way. */
const unixTime = z
  .number()
  .nullable()
  .optional()
  .transform((v) => v ?? undefined);

export const tagSchema = z.object({ id: z.number(), name: z.string().optional() });

export const contactSchema = z.object({
  id: z.number(),
  name: z.string().nullable().optional().transform((v) => v ?? ''),
  first_name: z.string().nullable().optional(),
  last_name: z.string().nullable().optional(),
  responsible_user_id: z.number().nullable().optional(),
  created_at: unixTime,
  updated_at: unixTime,
  is_deleted: z.boolean().optional(),
  custom_fields_values: customFieldsValues,
  _embedded: z
    .object({
      tags: z.array(tagSchema).optional(),
      leads: z.array(embeddedRef).optional(),
    })
    .optional(),
});
export type Contact = z.infer<typeof contactSchema>;

export const leadSchema = z.object({
  id: z.number(),
  name: z.string().nullable().optional().transform((v) => v ?? ''),
  price: z.number().nullable().optional().transform((v) => v ?? null),
  status_id: z.number(),
  pipeline_id: z.number(),
  responsible_user_id: z.number().nullable().optional(),
  created_at: unixTime,
  updated_at: unixTime,
  closed_at: unixTime,
  is_deleted: z.boolean().optional(),
  account_id: z.number().optional(),
  custom_fields_values: customFieldsValues,
  _embedded: z
    .object({
      tags: z.array(tagSchema).optional(),
      contacts: z.array(z.object({ id: z.number(), is_main: z.boolean().optional() })).optional(),
    })
    .optional(),
});
export type Lead = z.infer<typeof leadSchema>;

export const statusSchema = z.object({
  id: z.number(),
  name: z.string(),
  pipeline_id: z.number().optional(),
  sort: z.number().optional(),
  is_editable: z.boolean().optional(),
  /** 0 ordinary, 1 "unsorted" (incoming leads). */
  type: z.number().optional(),
});
export type PipelineStatus = z.infer<typeof statusSchema>;

export const pipelineSchema = z.object({
  id: z.number(),
  name: z.string(),
  sort: z.number().optional(),
  is_main: z.boolean().optional(),
  is_archive: z.boolean().optional(),
  _embedded: z.object({ statuses: z.array(statusSchema) }).optional().transform((v) => v ?? { statuses: [] }),
});

/** A pipeline as getPipelines answers it: statuses always present, each with a sort. */
export interface Pipeline {
  id: number;
  name: string;
  sort?: number;
  is_main?: boolean;
  is_archive?: boolean;
  _embedded: { statuses: Array<PipelineStatus & { sort: number }> };
}

export const customFieldSchema = z.object({
  id: z.number(),
  name: z.string(),
  type: z.string(),
  code: z.string().nullable().optional(),
  sort: z.number().optional(),
  entity_type: z.string().optional(),
  is_api_only: z.boolean().optional(),
  enums: z
    .array(z.object({ id: z.number(), value: z.string(), sort: z.number().optional(), code: z.string().nullable().optional() }))
    .nullable()
    .optional(),
});
export type CustomField = z.infer<typeof customFieldSchema>;

export const accountSchema = z.object({
  id: z.number(),
  name: z.string(),
  subdomain: z.string(),
});
export type Account = z.infer<typeof accountSchema>;

export const webhookSchema = z.object({
  id: z.number().optional(),
  destination: z.string(),
  settings: z.array(z.string()),
  disabled: z.boolean().optional(),
});

/**
 * One element of the answer of POST /api/v4/leads/complex: a top-level array.
 * `request_id` is documented as an array of the request ids merged into this lead
 * (one element unless duplicate control merged several), e.g.
 * `[{"id":9774766,"contact_id":12117258,"company_id":12117260,"request_id":["1"],"merged":false}]`
 * (https://developers.kommo.com/reference/complex-leads); a bare string is accepted too
 * and normalized to an array.
 */
export const complexLeadResultSchema = z.object({
  id: z.number(),
  contact_id: z.number().nullable().optional().transform((v) => v ?? null),
  company_id: z.number().nullable().optional().transform((v) => v ?? null),
  request_id: z
    .union([z.array(z.union([z.string(), z.number()])), z.string(), z.number()])
    .optional()
    .transform((v) => (v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String))),
  merged: z.boolean().optional().transform((v) => v ?? false),
});
export type ComplexLeadResult = z.infer<typeof complexLeadResultSchema>;
export const complexLeadResultsSchema = z.array(complexLeadResultSchema);

/** The HAL envelope of a list: `_embedded[key]` plus `_links.next` when a page follows. */
export function pageSchema<K extends string, S extends z.ZodType>(key: K, item: S) {
  return z.object({
    _page: z.number().optional(),
    _links: z.object({ next: z.object({ href: z.string() }).optional() }).optional(),
    _embedded: z.object({ [key]: z.array(item) } as Record<K, z.ZodArray<S>>),
  });
}

/** Input of one deal of `createLeadsComplex`: the domain's port type, which this client serves. */
export type { ComplexLeadInput, ContactFieldsUpdate } from '../sync/ports.js';

