import { z } from 'zod';
import { orderStatusSchema } from '../partner/schema.js';

/** The YAML stage table (mappings/*.yaml), validated before anything is resolved. */

const namedThing = z.object({ name: z.string().min(1), id: z.number().int().positive().optional() }).strict();

export const stageEffectsSchema = z
  .object({
    status: orderStatusSchema.optional(),
    cost: z.literal('deal.price').optional(),
    paid: z.literal(true).optional(),
    subscriptionStatus: z.literal('deal.subscriptionStatus').optional(),
  })
  .strict();
export type StageEffects = z.infer<typeof stageEffectsSchema>;

// ---------------------------------------------------------------------------------------
// The reverse table (orderEvents): what a deal gets when its order changes on Company 1's
// side or in the webview. Kept in one block, apart from the stage table.

/** Events of an order that a Company 2 manager must hear of (see src/sync/order-events.ts). */
export const ORDER_EVENTS = ['cancelled', 'executedByPartner', 'rejectedByPartner'] as const;
export type OrderEvent = (typeof ORDER_EVENTS)[number];

/** For one event: a note on the deal, and optionally a move to a named stage of the pipeline. */
export const orderEventActionSchema = z
  .object({
    note: z.string().trim().min(1),
    moveTo: z.string().min(1).optional(),
  })
  .strict();
export type OrderEventAction = z.infer<typeof orderEventActionSchema>;

export const orderEventsSchema = z
  .object({
    cancelled: orderEventActionSchema,
    executedByPartner: orderEventActionSchema,
    rejectedByPartner: orderEventActionSchema,
  })
  .strict();

// ---------------------------------------------------------------------------------------
// Contact field ownership (contactOwnership): who wins when Company 1's customer and the
// amoCRM contact disagree. Kept in one block, apart from the stage table.

/** The contact fields whose owner the mappings choose. detmirUserId is not one: never touched. */
export const CONTACT_FIELDS = ['firstName', 'lastName', 'phone', 'email'] as const;
export type ContactField = (typeof CONTACT_FIELDS)[number];

/**
 * `company1`: the order's newer value overwrites the contact when it changed; `amocrm`:
 * filled when the contact is created, then left to staff.
 */
export const fieldOwnerSchema = z.enum(['amocrm', 'company1']);
export type FieldOwner = z.infer<typeof fieldOwnerSchema>;

export const contactOwnershipSchema = z
  .object({
    firstName: fieldOwnerSchema.default('amocrm'),
    lastName: fieldOwnerSchema.default('amocrm'),
    phone: fieldOwnerSchema.default('amocrm'),
    email: fieldOwnerSchema.default('amocrm'),
  })
  .strict();
export type ContactOwnership = z.infer<typeof contactOwnershipSchema>;

// ---------------------------------------------------------------------------------------

export const mappingsFileSchema = z
  .object({
    integrationStage: z.union([z.literal(1), z.literal(2), z.literal(3)]),
    pipeline: z.string().min(1),
    initialStatus: z.string().min(1),
    tag: namedThing,
    contactFields: z.object({ detmirUserId: namedThing }).strict(),
    dealFields: z.object({ detmirOrderId: namedThing, subscriptionStatus: namedThing }).strict(),
    partner: z
      .object({
        initialStatus: orderStatusSchema,
        transitions: z.record(orderStatusSchema, z.array(orderStatusSchema)),
      })
      .strict(),
    services: z.array(z.object({ id: z.string().min(1), name: z.string().min(1) }).strict()).min(1),
    stages: z
      .array(
        z
          .object({
            stage: z.string().min(1),
            id: z.number().int().positive().optional(),
            set: stageEffectsSchema.default({}),
          })
          .strict(),
      )
      .min(1),
    orderEvents: orderEventsSchema,
    contactOwnership: contactOwnershipSchema.prefault({}),
  })
  .strict();
export type MappingsFile = z.infer<typeof mappingsFileSchema>;
