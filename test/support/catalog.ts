import { MAIN_STAGES } from '../../src/sandbox/amo/seed.js';
import type { AccountCatalog } from '../../src/mappings/resolve.js';

/** An account as the pure decisions' tables see it: pipeline "Company 2" with the default table's stages. */
export const PIPELINE = 100;
export const STAGE_NAMES = ['Incoming leads', ...MAIN_STAGES];
export const SUBSCRIPTION_FIELD = 555;

export const catalog: AccountCatalog = {
  pipelines: [
    {
      id: PIPELINE,
      name: 'Company 2',
      statuses: [
        ...STAGE_NAMES.map((name, i) => ({ id: 1000 + i, name, sort: (i + 1) * 10 })),
        { id: 142, name: 'Closed - won', sort: 10000 },
        { id: 143, name: 'Closed - lost', sort: 11000 },
      ],
    },
    { id: 200, name: 'Sales', statuses: [{ id: 2001, name: 'First contact', sort: 10 }] },
  ],
  leadFields: [
    { id: 932792, name: 'detmirOrderId' },
    { id: SUBSCRIPTION_FIELD, name: 'Subscription status' },
  ],
  contactFields: [{ id: 932790, name: 'detmirUserId' }],
};

/** The status id of an open stage of "Company 2" by name. */
export const stage = (name: string) => 1000 + STAGE_NAMES.indexOf(name);
