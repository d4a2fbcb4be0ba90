import type { WebhookLead } from '../../src/sandbox/amo/index.js';

/** The simulator's default account (createAmoSimulator: subdomain 'company2', accountId 31234567). */
export const SIM_ACCOUNT = { id: 31_234_567, subdomain: 'company2' };

/** A deal as amoCRM's full-shape webhook describes it, with its order id `R-<id>`. */
export function webhookLead(id: number, over: Partial<WebhookLead> = {}): WebhookLead {
  return {
    id,
    name: `Deal ${id}`,
    price: 1500,
    status_id: 61_000_002,
    pipeline_id: 7_000_001,
    old_status_id: 61_000_001,
    old_pipeline_id: 7_000_001,
    responsible_user_id: 8_100_002,
    created_user_id: 8_100_002,
    modified_user_id: 8_100_002,
    date_create: 1_700_000_000,
    last_modified: 1_700_000_100,
    account_id: SIM_ACCOUNT.id,
    tags: [{ id: 499_278, name: 'Companies 1. Services' }],
    custom_fields: [
      { id: 932_792, name: 'detmirOrderId', type: 'text', values: [{ value: `R-${id}` }] },
      { id: 932_796, name: 'Trial date', type: 'date', values: [{ value: 1_700_100_000 }] },
      { id: 932_794, name: 'Subscription status', type: 'select', values: [{ value: 'Active', enum_id: 5001 }] },
    ],
    ...over,
  };
}
