import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../src/lib/duration.js';
import { type DiffCase, describeDiff, diffMappings, outcomeOf } from '../src/mappings/diff.js';
import { parseMappings } from '../src/mappings/load.js';
import { resolveMappings } from '../src/mappings/resolve.js';
import type { Order } from '../src/partner/schema.js';
import { catalog, PIPELINE, stage, SUBSCRIPTION_FIELD } from './support/catalog.js';
import { anOrder } from './support/orders.js';

const yaml = readFileSync('mappings/default.yaml', 'utf8');
const current = resolveMappings(parseMappings(yaml), catalog);
/** Waiting for payment no longer sets the cost; Success no longer executes the order. */
const editedYaml = yaml
  .replace('  - stage: Waiting for payment\n    set: { cost: deal.price }\n', '  - stage: Waiting for payment\n')
  .replace('    id: 142\n    set: { status: executed }\n', '    id: 142\n');
const edited = resolveMappings(parseMappings(editedYaml), catalog);

let nextId = 1;
/** A deal of "Company 2" at a stage, price 4500, subscription "active", with its order. */
function dealAt(statusId: number, order: Partial<Order>, closedByPartner = false): DiffCase {
  const id = nextId++;
  return {
    lead: {
      id: 7000 + id,
      pipeline_id: PIPELINE,
      status_id: statusId,
      price: 4500,
      custom_fields_values: [{ field_id: SUBSCRIPTION_FIELD, values: [{ value: 'active' }] }],
    },
    order: anOrder(order.status ?? 'on_approval', { id: `DM-${id}`, ...order }),
    closedByPartner,
  };
}

const inStepAfterPayment = { status: 'in_work', cost: 4500, paid: true } as const;

describe('diffMappings: the orders an edited table treats differently', () => {
  const cases = {
    // Out of step (the bridge has not heard of the move yet): the cost depends on the table.
    waitingNotYetCosted: dealAt(stage('Waiting for payment'), { status: 'in_work' }),
    // In step: neither table changes anything; an edit never takes back what was done.
    waitingCosted: dealAt(stage('Waiting for payment'), { status: 'in_work', cost: 4500 }),
    // Executed under the current table; the edited one asks for in_work, which an executed order cannot go back to.
    wonExecuted: dealAt(142, { ...inStepAfterPayment, status: 'executed', subscriptionStatus: 'active' }),
    // Won but not yet closed: the current table executes it, the edited one leaves it in work.
    wonInWork: dealAt(142, { ...inStepAfterPayment, subscriptionStatus: 'active' }),
    newLead: dealAt(stage('New lead'), {}),
    refused: dealAt(143, { status: 'rejected' }),
    paidInStep: dealAt(stage('Payment received'), inStepAfterPayment),
    // Company 1 closed it itself: stage sync leaves it alone under any table.
    closedByCompany1: dealAt(142, { status: 'executed' }, true),
  };

  it('lists exactly the orders whose outcome differs, with both outcomes', () => {
    const diffs = diffMappings(current, edited, Object.values(cases));
    expect(diffs.map((d) => d.orderId)).toEqual([cases.waitingNotYetCosted, cases.wonExecuted, cases.wonInWork].map((c) => c.order.id));

    const [waiting, wonExecuted, wonInWork] = diffs;
    expect(waiting).toEqual({
      orderId: cases.waitingNotYetCosted.order.id,
      dealId: cases.waitingNotYetCosted.lead.id,
      stage: 'Waiting for payment',
      current: { action: 'update', order: { status: 'in_work', cost: 4500, paid: false, subscriptionStatus: null } },
      edited: { action: 'nothing', order: { status: 'in_work', cost: null, paid: false, subscriptionStatus: null } },
    });
    expect(wonExecuted!.stage).toBe('Success [Closed - won]');
    expect(wonExecuted!.current).toMatchObject({ action: 'nothing', order: { status: 'executed' } });
    expect(wonExecuted!.edited).toMatchObject({ action: 'unreachable', order: { status: 'executed' } });
    expect(wonExecuted!.edited.reason).toMatch(/asks for "in_work": no allowed transition leads there/);
    expect(wonInWork!.current).toEqual({ action: 'update', order: { ...inStepAfterPayment, status: 'executed', subscriptionStatus: 'active' } });
    expect(wonInWork!.edited).toEqual({ action: 'nothing', order: { ...inStepAfterPayment, subscriptionStatus: 'active' } });
  });

  it('the same table twice differs nowhere', () => {
    expect(diffMappings(current, current, Object.values(cases))).toEqual([]);
  });

  it('a table at integration stage 1 leaves every order alone', () => {
    const stageOne = resolveMappings(parseMappings(yaml.replace('integrationStage: 3', 'integrationStage: 1')), catalog);
    expect(outcomeOf(stageOne, cases.wonInWork)).toEqual({ action: 'ignore', reason: 'integration stage 1', order: { ...inStepAfterPayment, subscriptionStatus: 'active' } });
    const diffs = diffMappings(current, stageOne, Object.values(cases));
    expect(diffs.map((d) => d.orderId)).toEqual([cases.waitingNotYetCosted, cases.wonInWork].map((c) => c.order.id));
  });

  it('reports each order on three lines and ends with the counts', () => {
    const diffs = diffMappings(current, edited, [cases.waitingNotYetCosted, cases.newLead]);
    const text = describeDiff(diffs, { dealsRead: 5, ordersPlanned: 2, since: new Date('2026-01-01T00:00:00Z') });
    expect(text).toBe(
      [
        `order ${cases.waitingNotYetCosted.order.id}  deal ${cases.waitingNotYetCosted.lead.id}  stage "Waiting for payment"`,
        '  current: status in_work, cost 4500, paid no, subscription -  (changes the order)',
        '  edited:  status in_work, cost -, paid no, subscription -  (in step, no change)',
        '',
        '5 deals read (updated since 2026-01-01T00:00:00.000Z), 2 with an order planned, 1 orders differ',
        '',
      ].join('\n'),
    );
  });
});

describe('parseDuration', () => {
  it.each([
    ['30m', 30 * 60_000],
    ['12h', 12 * 3_600_000],
    ['7d', 7 * 86_400_000],
    ['45s', 45_000],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['7', 'd', '1w', '-1d', '1.5h', ''])('refuses "%s", saying what a duration is', (text) => {
    expect(() => parseDuration(text)).toThrow(/is not a duration: a number with s, m, h or d/);
  });
});
