import { z } from 'zod';
import { type OrderStatus, orderStatusSchema } from '../partner/schema.js';

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
  })
  .strict();
export type MappingsFile = z.infer<typeof mappingsFileSchema>;

/**
 * Company 1's final statuses: those the transitions lead nowhere from (executed,
 * rejected and cancelled in the default file).
 */
export function finalStatuses(transitions: MappingsFile['partner']['transitions']): OrderStatus[] {
  return orderStatusSchema.options.filter((status) => transitions[status]?.length === 0);
}
