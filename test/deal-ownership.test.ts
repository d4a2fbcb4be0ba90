import { describe, expect, it } from 'vitest';
import { dealBelongsTo } from '../src/sync/deal-ownership.js';
import type { AmoLeadView } from '../src/sync/ports.js';

const mappings = { fields: { detmirUserId: 932790, detmirOrderId: 932792, subscriptionStatus: 555 } };

const deal = (fields: AmoLeadView['custom_fields_values']): AmoLeadView => ({
  id: 20_100_001,
  status_id: 1001,
  pipeline_id: 100,
  custom_fields_values: fields,
});
const carrying = (value: unknown) => deal([{ field_id: 932792, values: [{ value }] }]);

describe('dealBelongsTo: a deal is an order’s only when it carries the order’s id', () => {
  it.each([
    ['the order’s id', carrying('DM-1'), 'ok', null],
    ['another order’s id', carrying('DM-9'), 'mismatch', 'DM-9'],
    ['the id with a space around it (not what the bridge wrote)', carrying(' DM-1 '), 'mismatch', ' DM-1 '],
    ['a prefix of another id', carrying('DM-10'), 'mismatch', 'DM-10'],
    ['no custom fields at all (amoCRM sends null)', deal(null), 'mismatch', null],
    ['other fields only', deal([{ field_id: 555, values: [{ value: 'DM-1' }] }]), 'mismatch', null],
    ['an empty detmirOrderId', deal([{ field_id: 932792, values: [] }]), 'mismatch', null],
  ] as const)('%s', (_what, lead, type, carries) => {
    const owned = dealBelongsTo(lead, 'DM-1', mappings);
    expect(owned.type).toBe(type);
    if (owned.type === 'mismatch') expect(owned).toMatchObject({ dealId: 20_100_001, orderId: 'DM-1', carries });
  });

  it('the reason names the order, the deal, what the deal carries, the other linked orders, and what to do', () => {
    const owned = dealBelongsTo(carrying('DM-9'), 'DM-1', mappings, ['DM-1', 'DM-9']);
    expect(owned.type === 'mismatch' && owned.reason).toBe(
      'deal 20100001 is linked to order DM-1 but carries detmirOrderId DM-9 (order DM-9 is linked to it too): ' +
        'amoCRM ids may have been reused (an account restored from a backup?), so nothing was written to Company 1 or amoCRM. ' +
        'Open deal 20100001 in amoCRM: if it is order DM-1\'s deal, set its detmirOrderId to DM-1; if not, link the order ' +
        'to its own deal (amobridge orders relink DM-1 <deal-id>; a deal made in amoCRM for it needs detmirOrderId DM-1). ' +
        'Then replay this job.',
    );
    const empty = dealBelongsTo(deal(null), 'DM-1', mappings);
    expect(empty.type === 'mismatch' && empty.reason).toMatch(/^deal 20100001 is linked to order DM-1 but carries no detmirOrderId: /);
  });
});
