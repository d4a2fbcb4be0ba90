import { z } from 'zod';
import { defineJobs, type JobHandler } from '../queue/jobs.js';

/** A partner order's intake (contact, deal) and additionalInfo write-back; key `order:<id>`. */
export const ORDER_SYNC = 'order.sync';
/** Re-read a deal and drive its order from the deal's current stage; key `order:<id>` or `deal:<id>`. */
export const DEAL_RECONCILE = 'deal.reconcile';
/** The periodic backstop for amoCRM webhooks that never arrive; one key, `sweep`. */
export const DEALS_SWEEP = 'deals.sweep';
/** The periodic backstop for partner webhooks that never arrive; one key, `partner-sweep`. */
export const PARTNER_SWEEP = 'partner.sweep';
/** Deletes what is kept no longer than RETENTION, in small batches; one key, `retention`. */
export const RETENTION_JOB = 'retention';

/** The domain's jobs and the shape of each payload (see src/queue/jobs.ts). */
const payloads = {
  [ORDER_SYNC]: z.object({ orderId: z.string().min(1) }),
  [DEAL_RECONCILE]: z.object({ dealId: z.number().int().positive() }),
  [DEALS_SWEEP]: z.object({}),
  [PARTNER_SWEEP]: z.object({}),
  [RETENTION_JOB]: z.object({}),
};

export const syncJobs = defineJobs(payloads);

/** The payload a job of `kind` is enqueued with. */
export type PayloadOf<K extends keyof typeof payloads> = z.input<(typeof payloads)[K]>;

/** The handler of one of the domain's kinds. */
export type SyncJobHandler<K extends keyof typeof payloads> = JobHandler<(typeof payloads)[K]>;
