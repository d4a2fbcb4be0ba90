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
// The webview's section (`webview:`): what its pages call things, per locale, so no brand
// is written in code. Kept in this one block.

const localized = z.object({ ru: z.string().min(1), en: z.string().min(1) }).strict();

const timeZone = z.string().refine(
  (zone) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be an IANA time zone, e.g. Europe/Moscow' },
);

export const webviewSectionSchema = z
  .object({
    /** Company 2, as the page's header and texts name it. */
    brand: localized,
    /** The partner's app the page opens in (Company 1's), named in «quotes». */
    partnerApp: localized,
    /** Shown at the foot of every page: at least one of phone and e-mail. */
    support: z
      .object({ phone: z.string().min(3).max(40).optional(), email: z.email().optional() })
      .strict()
      .refine((s) => s.phone !== undefined || s.email !== undefined, { message: 'needs a phone or an email' }),
    /** Each service's name per locale, by service id (every id of `services`). */
    services: z.record(z.string().min(1), localized),
    /** Dates and times on the pages are in this zone (default Europe/Moscow). */
    timeZone: timeZone.default('Europe/Moscow'),
  })
  .strict();
export type WebviewSection = z.infer<typeof webviewSectionSchema>;

/** The webview names every service, and only services that exist. */
function everyServiceNamedInWebview(
  file: { services: Array<{ id: string }>; webview: WebviewSection },
  ctx: z.RefinementCtx,
): void {
  const ids = new Set(file.services.map((s) => s.id));
  for (const id of ids) {
    if (!file.webview.services[id]) ctx.addIssue({ code: 'custom', path: ['webview', 'services', id], message: `no name for service ${id}` });
  }
  for (const id of Object.keys(file.webview.services)) {
    if (!ids.has(id)) ctx.addIssue({ code: 'custom', path: ['webview', 'services', id], message: `no service ${id} in services` });
  }
}

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
    integrationStage: z.union([z.literal(1), z.literal(2), z.literal(3)], {
      error: 'must be 1 (intake), 2 (stage sync) or 3 (webview)',
    }),
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
    webview: webviewSectionSchema,
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
  .strict()
  .superRefine(everyServiceNamedInWebview);
export type MappingsFile = z.infer<typeof mappingsFileSchema>;

/**
 * Company 1's final statuses: those the transitions lead nowhere from (executed,
 * rejected and cancelled in the default file).
 */
export function finalStatuses(transitions: MappingsFile['partner']['transitions']): OrderStatus[] {
  return orderStatusSchema.options.filter((status) => transitions[status]?.length === 0);
}
