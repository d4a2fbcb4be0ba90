import { z } from 'zod';

/**
 * Shapes of the amoCRM API v4 entities the simulator keeps, and of the request bodies it
 * accepts. Stored entities use amoCRM's own snake_case field names so that tests can compare
 * them with what the API answers; the few simulator-only fields are named in comments.
 *
 * Sources: amocrm.ru/developers/content/crm_platform/leads-api, contacts-api, leads_pipelines,
 * custom-fields, webhooks-api, events-and-notes (and their kommo.com English twins).
 */

const id = z.number().int().positive();
const unixTime = z.number().int();

export const customFieldTypeSchema = z.enum([
  'text',
  'numeric',
  'checkbox',
  'select',
  'multiselect',
  'date',
  'date_time',
  'birthday',
  'url',
  'textarea',
  'radiobutton',
  'multitext',
]);
export type CustomFieldType = z.infer<typeof customFieldTypeSchema>;

export const entityTypeSchema = z.enum(['leads', 'contacts']);
export type EntityType = z.infer<typeof entityTypeSchema>;

export const customFieldEnumSchema = z.object({ id, value: z.string(), sort: z.number().int() });
export type CustomFieldEnum = z.infer<typeof customFieldEnumSchema>;

/** A field definition, as GET /api/v4/{leads|contacts}/custom_fields lists it. */
export const customFieldSchema = z.object({
  id,
  name: z.string(),
  type: customFieldTypeSchema,
  code: z.string().nullable(),
  sort: z.number().int(),
  is_api_only: z.boolean(),
  enums: z.array(customFieldEnumSchema).nullable(),
  group_id: z.string().nullable(),
  required_statuses: z.array(z.unknown()),
  is_deletable: z.boolean(),
  is_predefined: z.boolean(),
  entity_type: entityTypeSchema,
  remind: z.string().nullable(),
  hidden_statuses: z.array(z.unknown()),
  account_id: id,
});
export type CustomField = z.infer<typeof customFieldSchema>;

/** One value of a field on an entity: `{value, enum_id?, enum_code?}` as v4 answers it. */
export const customFieldValueSchema = z.object({
  value: z.union([z.string(), z.number(), z.boolean()]),
  enum_id: z.number().int().optional(),
  enum_code: z.string().nullable().optional(),
});
export type CustomFieldValue = z.infer<typeof customFieldValueSchema>;

export const customFieldValuesEntrySchema = z.object({
  field_id: id,
  field_name: z.string(),
  field_code: z.string().nullable(),
  field_type: customFieldTypeSchema,
  values: z.array(customFieldValueSchema),
});
export type CustomFieldValuesEntry = z.infer<typeof customFieldValuesEntrySchema>;

export const tagSchema = z.object({ id, name: z.string(), color: z.string().nullable() });
export type Tag = z.infer<typeof tagSchema>;

export const statusSchema = z.object({
  id,
  name: z.string(),
  sort: z.number().int(),
  is_editable: z.boolean(),
  pipeline_id: id,
  color: z.string(),
  /** 1 = "Incoming leads" (unsorted), 0 = a regular stage. */
  type: z.union([z.literal(0), z.literal(1)]),
  account_id: id,
});
export type Status = z.infer<typeof statusSchema>;

export const pipelineSchema = z.object({
  id,
  name: z.string(),
  sort: z.number().int(),
  is_main: z.boolean(),
  is_unsorted_on: z.boolean(),
  is_archive: z.boolean(),
  account_id: id,
  statuses: z.array(statusSchema),
});
export type Pipeline = z.infer<typeof pipelineSchema>;

export const contactSchema = z.object({
  id,
  name: z.string(),
  first_name: z.string(),
  last_name: z.string(),
  responsible_user_id: id,
  group_id: z.number().int(),
  created_by: z.number().int(),
  updated_by: z.number().int(),
  created_at: unixTime,
  updated_at: unixTime,
  closest_task_at: unixTime.nullable(),
  is_deleted: z.boolean(),
  is_unsorted: z.boolean(),
  /** amoCRM answers `null`, not `[]`, when no field has a value. */
  custom_fields_values: z.array(customFieldValuesEntrySchema).nullable(),
  account_id: id,
  /** As the API embeds them (contacts' linked leads are derived, see `with=leads`). */
  _embedded: z.object({ tags: z.array(tagSchema), companies: z.array(z.object({ id })) }),
});
export type Contact = z.infer<typeof contactSchema>;

export const leadContactLinkSchema = z.object({ id, is_main: z.boolean() });

export const leadSchema = z.object({
  id,
  name: z.string(),
  price: z.number().int(),
  responsible_user_id: id,
  group_id: z.number().int(),
  status_id: id,
  pipeline_id: id,
  loss_reason_id: id.nullable(),
  created_by: z.number().int(),
  updated_by: z.number().int(),
  created_at: unixTime,
  updated_at: unixTime,
  closed_at: unixTime.nullable(),
  closest_task_at: unixTime.nullable(),
  is_deleted: z.boolean(),
  /** amoCRM answers `null`, not `[]`, when no field has a value. */
  custom_fields_values: z.array(customFieldValuesEntrySchema).nullable(),
  score: z.number().nullable(),
  account_id: id,
  labor_cost: z.number().nullable(),
  /** As the API embeds them; `contacts` is answered only with `with=contacts`. */
  _embedded: z.object({
    tags: z.array(tagSchema),
    contacts: z.array(leadContactLinkSchema),
    companies: z.array(z.object({ id })),
  }),
});
export type Lead = z.infer<typeof leadSchema>;

export const noteSchema = z.object({
  id,
  entity_id: id,
  entity_type: entityTypeSchema,
  created_by: z.number().int(),
  updated_by: z.number().int(),
  created_at: unixTime,
  updated_at: unixTime,
  responsible_user_id: id,
  group_id: z.number().int(),
  note_type: z.string(),
  params: z.record(z.string(), z.unknown()),
  account_id: id,
});
export type Note = z.infer<typeof noteSchema>;

/** Event names a webhook can subscribe to (amocrm.ru/developers/content/crm_platform/webhooks-api). */
export const webhookSettingSchema = z.enum([
  'add_lead',
  'update_lead',
  'delete_lead',
  'restore_lead',
  'status_lead',
  'responsible_lead',
  'note_lead',
  'add_contact',
  'update_contact',
  'delete_contact',
  'restore_contact',
  'responsible_contact',
  'note_contact',
  'add_company',
  'update_company',
  'delete_company',
  'restore_company',
  'responsible_company',
  'note_company',
  'add_customer',
  'update_customer',
  'delete_customer',
  'responsible_customer',
  'note_customer',
  'add_task',
  'update_task',
  'delete_task',
  'responsible_task',
  'add_talk',
  'update_talk',
  'add_chat_template_review',
  'add_message',
]);
export type WebhookSetting = z.infer<typeof webhookSettingSchema>;

export const webhookSchema = z.object({
  id,
  destination: z.string(),
  settings: z.array(webhookSettingSchema),
  sort: z.number().int(),
  disabled: z.boolean(),
  created_at: unixTime,
  updated_at: unixTime,
  created_by: z.number().int(),
  account_id: id,
});
export type Webhook = z.infer<typeof webhookSchema>;

// ---------------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------------

const requestId = z.union([z.string(), z.number()]).transform(String).optional();

export const customFieldInputSchema = z.object({
  field_id: id.optional(),
  field_code: z.string().optional(),
  /** `null` (or `[]`) clears the field. */
  values: z
    .array(
      z.object({
        value: z.union([z.string(), z.number(), z.boolean()]).nullish(),
        enum_id: z.number().int().optional(),
        enum_code: z.string().optional(),
      }),
    )
    .nullable(),
});
export type CustomFieldInput = z.infer<typeof customFieldInputSchema>;

/** A tag given by id (must exist) or by name (created when new). */
export const tagRefSchema = z.object({ id: id.optional(), name: z.string().min(1).optional() });
export type TagRef = z.infer<typeof tagRefSchema>;

const customFieldsInput = z.array(customFieldInputSchema).nullable().optional();

export const contactInputSchema = z.object({
  name: z.string().optional(),
  first_name: z.string().optional(),
  last_name: z.string().optional(),
  responsible_user_id: id.optional(),
  created_by: z.number().int().optional(),
  updated_by: z.number().int().optional(),
  created_at: unixTime.optional(),
  custom_fields_values: customFieldsInput,
  tags_to_add: z.array(tagRefSchema).optional(),
  tags_to_delete: z.array(tagRefSchema).optional(),
  _embedded: z.object({ tags: z.array(tagRefSchema).nullable().optional() }).optional(),
  request_id: requestId,
});
export type ContactInput = z.infer<typeof contactInputSchema>;

export const contactPatchSchema = contactInputSchema.extend({ id: id.optional() });
export type ContactPatch = z.infer<typeof contactPatchSchema>;

const leadFields = {
  name: z.string().optional(),
  price: z.number().int().optional(),
  status_id: id.optional(),
  pipeline_id: id.optional(),
  responsible_user_id: id.optional(),
  created_by: z.number().int().optional(),
  updated_by: z.number().int().optional(),
  created_at: unixTime.optional(),
  closed_at: unixTime.nullable().optional(),
  loss_reason_id: id.nullable().optional(),
  custom_fields_values: customFieldsInput,
  tags_to_add: z.array(tagRefSchema).optional(),
  tags_to_delete: z.array(tagRefSchema).optional(),
  request_id: requestId,
};

export const leadInputSchema = z.object({
  ...leadFields,
  _embedded: z
    .object({
      tags: z.array(tagRefSchema).nullable().optional(),
      contacts: z.array(z.object({ id, is_main: z.boolean().optional() })).optional(),
      companies: z.array(z.object({ id })).optional(),
    })
    .optional(),
});
export type LeadInput = z.infer<typeof leadInputSchema>;

export const leadPatchSchema = leadInputSchema.extend({ id: id.optional() });
export type LeadPatch = z.infer<typeof leadPatchSchema>;

/** A contact inside a complex lead: either `{id}` of an existing one or a new contact. */
export const complexContactSchema = contactInputSchema.extend({ id: id.optional() });

export const complexLeadSchema = z.object({
  ...leadFields,
  _embedded: z
    .object({
      tags: z.array(tagRefSchema).nullable().optional(),
      // "For one lead, you can specify no more than one related contact and one related
      // company" (developers.kommo.com/reference/complex-leads).
      contacts: z.array(complexContactSchema).max(1).optional(),
      companies: z.array(z.object({ id: id.optional(), name: z.string().optional() })).max(1).optional(),
      metadata: z.record(z.string(), z.unknown()).optional(),
      source: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
});
export type ComplexLeadInput = z.infer<typeof complexLeadSchema>;

export const noteInputSchema = z.object({
  entity_id: id.optional(),
  note_type: z.string().default('common'),
  params: z.record(z.string(), z.unknown()).default({}),
  created_by: z.number().int().optional(),
  responsible_user_id: id.optional(),
  request_id: requestId,
});
export type NoteInput = z.infer<typeof noteInputSchema>;

export const webhookInputSchema = z.object({
  destination: z.url({ protocol: /^https?$/ }),
  settings: z.array(webhookSettingSchema).min(1),
  sort: z.number().int().optional(),
});

export const webhookDeleteSchema = z.object({ destination: z.string().min(1) });
