import { z } from 'zod';

/**
 * The Company 1 integration API contract (docs/contracts.md, "Company 1 integration API").
 * The bridge, its partner client and the partner simulator all read these schemas,
 * so the contract lives in exactly one place.
 */

export const orderStatusSchema = z.enum([
  'on_approval',
  'approved',
  'in_work',
  'executed',
  'rejected',
  'cancelled',
]);
export type OrderStatus = z.infer<typeof orderStatusSchema>;

/**
 * An order id as the bridge accepts it wherever one enters (webhooks, API answers, the
 * webview's and the admin API's routes): it becomes a path segment of Company 1's API
 * (`/orders/{id}`), where `.` or `..` would name another resource (`GET /`, `GET /orders/`).
 */
export const ORDER_ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;
export const orderIdSchema = z.string().regex(ORDER_ID_PATTERN, 'must be 1 to 100 of A-Z a-z 0-9 _ -');

export function isOrderId(value: unknown): value is string {
  return typeof value === 'string' && ORDER_ID_PATTERN.test(value);
}

export const additionalInfoSchema = z.object({
  contactId: z.number().int(),
  externalId: z.number().int(),
  closedByDetmir: z.boolean(),
});
export type AdditionalInfo = z.infer<typeof additionalInfoSchema>;

export const customerSchema = z.object({
  firstName: z.string().min(1).max(200),
  lastName: z.string().max(200),
  phone: z.string().min(3).max(40),
  email: z.string().max(320).optional(),
});
export type Customer = z.infer<typeof customerSchema>;

export const orderSchema = z.object({
  id: orderIdSchema,
  userId: z.string().min(1).max(100),
  serviceId: z.string().min(1).max(100),
  status: orderStatusSchema,
  cost: z.number().nullable(),
  paid: z.boolean(),
  subscriptionStatus: z.string().nullable(),
  customer: customerSchema,
  additionalInfo: additionalInfoSchema.nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type Order = z.infer<typeof orderSchema>;

export const orderWebhookSchema = z.object({
  type: z.enum(['order.created', 'order.updated']),
  timestamp: z.string(),
  data: orderSchema,
});
export type OrderWebhook = z.infer<typeof orderWebhookSchema>;

export const createOrderRequestSchema = z.object({
  userId: z.string().min(1).max(100),
  serviceId: z.string().min(1).max(100),
  customer: customerSchema,
  comment: z.string().max(2000).optional(),
  additionalInfo: additionalInfoSchema.optional(),
});
export type CreateOrderRequest = z.infer<typeof createOrderRequestSchema>;

export const orderPatchSchema = z
  .object({
    status: orderStatusSchema,
    cost: z.number().nullable(),
    paid: z.boolean(),
    subscriptionStatus: z.string().nullable(),
    additionalInfo: additionalInfoSchema,
  })
  .partial()
  .strict();
export type OrderPatch = z.infer<typeof orderPatchSchema>;

export const orderListSchema = z.object({ items: z.array(orderSchema) });

/** The most orders one page of `GET /orders?updatedSince=…` may hold. */
export const MAX_ORDER_PAGE_LIMIT = 100;

/**
 * The query of `GET /orders?updatedSince=<ISO 8601>&limit=<≤100>&cursor=<opaque>`: the
 * orders changed at or after a time, for reconciliation when webhooks were lost. Strict,
 * so a stray `userId` is refused rather than silently ignored.
 */
const LIMIT_RULE = `limit must be a whole number from 1 to ${MAX_ORDER_PAGE_LIMIT}`;
export const changedOrdersQuerySchema = z
  .object({
    updatedSince: z.iso.datetime({ offset: true, error: 'updatedSince must be an ISO 8601 date-time with a time zone, e.g. 2026-01-31T09:00:00Z' }),
    limit: z.coerce.number({ error: LIMIT_RULE }).int(LIMIT_RULE).min(1, LIMIT_RULE).max(MAX_ORDER_PAGE_LIMIT, LIMIT_RULE).default(MAX_ORDER_PAGE_LIMIT),
    cursor: z.string().min(1, 'cursor must not be empty').optional(),
  })
  .strict();
export type ChangedOrdersQuery = z.input<typeof changedOrdersQuerySchema>;

/** One page of changed orders, ascending by (updatedAt, id); nextCursor is null on the last. */
export const orderPageSchema = z.object({ items: z.array(orderSchema), nextCursor: z.string().min(1).nullable() });
export type OrderPage = z.infer<typeof orderPageSchema>;

/** 409 body: the transition the order's current status does not allow. */
export const conflictSchema = z.object({ error: z.string(), currentStatus: orderStatusSchema });
