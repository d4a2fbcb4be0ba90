import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MappingsError, parseMappings } from '../src/mappings/load.js';
import { type AccountCatalog, resolveMappings } from '../src/mappings/resolve.js';
import type { Order, OrderStatus } from '../src/partner/schema.js';
import { type DealState, planOrderUpdate, statusPath } from '../src/sync/plan-order-update.js';

const PIPELINE = 100;
const names = [
  'Incoming leads',
  'New lead',
  'Recorded for trial',
  'Confirmed VU',
  'Lesson Passed',
  'Waiting for a solution',
  'Waiting for payment',
  'Payment received',
  'Submit Subscription Status',
  'Another lesson has passed',
];
const catalog: AccountCatalog = {
  pipelines: [
    {
      id: PIPELINE,
      name: 'Company 2',
      statuses: [
        ...names.map((name, i) => ({ id: 1000 + i, name, sort: (i + 1) * 10 })),
        { id: 142, name: 'Closed - won', sort: 10000 },
        { id: 143, name: 'Closed - lost', sort: 11000 },
      ],
    },
    { id: 200, name: 'Sales', statuses: [{ id: 2001, name: 'First contact', sort: 10 }] },
  ],
  leadFields: [
    { id: 932792, name: 'detmirOrderId' },
    { id: 555, name: 'Subscription status' },
  ],
  contactFields: [{ id: 932790, name: 'detmirUserId' }],
};
const yaml = readFileSync('mappings/default.yaml', 'utf8');
const mappings = resolveMappings(parseMappings(yaml), catalog);
const stage = (name: string) => 1000 + names.indexOf(name);

const order = (status: OrderStatus, extra: Partial<Order> = {}): Order => ({
  id: 'DM-1',
  userId: 'u1',
  serviceId: 'trial-lesson',
  status,
  cost: null,
  paid: false,
  subscriptionStatus: null,
  customer: { firstName: 'A', lastName: 'B', phone: '+70000000000' },
  additionalInfo: null,
  createdAt: '2026-01-01T00:00:00Z',
  updatedAt: '2026-01-01T00:00:00Z',
  ...extra,
});
const deal = (statusId: number, extra: Partial<DealState> = {}): DealState => ({
  id: 7,
  pipelineId: PIPELINE,
  statusId,
  price: 4500,
  subscriptionStatus: 'active',
  ...extra,
});

describe('the stage table, row by row', () => {
  it.each([
    ['New lead', 'on_approval', { type: 'nothing' }],
    ['Recorded for trial', 'on_approval', { type: 'update', steps: [{ status: 'approved' }] }],
    ['Confirmed VU', 'approved', { type: 'update', steps: [{ status: 'in_work' }] }],
    ['Lesson Passed', 'in_work', { type: 'nothing' }],
    ['Waiting for a solution', 'in_work', { type: 'nothing' }],
    ['Waiting for payment', 'in_work', { type: 'update', steps: [{ cost: 4500 }] }],
  ] as const)('%s, order %s', (name, status, plan) => {
    expect(planOrderUpdate(mappings, deal(stage(name)), order(status))).toEqual(plan);
  });

  it('Payment received sets paid (cost already right)', () => {
    expect(planOrderUpdate(mappings, deal(stage('Payment received')), order('in_work', { cost: 4500 }))).toEqual({
      type: 'update',
      steps: [{ paid: true }],
    });
  });

  it.each(['Submit Subscription Status', 'Another lesson has passed'])('%s copies the subscription field', (name) => {
    expect(
      planOrderUpdate(mappings, deal(stage(name)), order('in_work', { cost: 4500, paid: true, subscriptionStatus: 'trial' })),
    ).toEqual({ type: 'update', steps: [{ subscriptionStatus: 'active' }] });
  });

  it('Success changes nothing by default', () => {
    const done = order('in_work', { cost: 4500, paid: true, subscriptionStatus: 'active' });
    expect(planOrderUpdate(mappings, deal(142), done)).toEqual({ type: 'nothing' });
  });

  it('Refusal rejects, and only rejects', () => {
    expect(planOrderUpdate(mappings, deal(143), order('approved'))).toEqual({ type: 'update', steps: [{ status: 'rejected' }] });
  });
});

describe('reconciling from the current stage', () => {
  it('a deal that jumps from New lead to Payment received gets every effect, through valid transitions', () => {
    expect(planOrderUpdate(mappings, deal(stage('Payment received')), order('on_approval'))).toEqual({
      type: 'update',
      steps: [{ status: 'approved' }, { status: 'in_work', cost: 4500, paid: true }],
    });
  });

  it('the same state twice changes nothing the second time', () => {
    const reached = order('in_work', { cost: 4500, paid: true });
    expect(planOrderUpdate(mappings, deal(stage('Payment received')), reached)).toEqual({ type: 'nothing' });
  });

  it('a deal moved back leaves an order that is already further on alone', () => {
    expect(planOrderUpdate(mappings, deal(stage('Recorded for trial')), order('in_work'))).toEqual({ type: 'nothing' });
  });

  it('a closed order the table did not close is a divergence, not "ahead"', () => {
    const plan = planOrderUpdate(mappings, deal(stage('Recorded for trial')), order('cancelled'));
    expect(plan.type).toBe('unreachable');
  });

  it('a state the transitions cannot reach is explained, for the dead letter', () => {
    const plan = planOrderUpdate(mappings, deal(stage('Confirmed VU')), order('cancelled'));
    expect(plan.type).toBe('unreachable');
    expect(plan.type === 'unreachable' && plan.reason).toMatch(/"cancelled".*"Confirmed VU".*"in_work"/);
  });

  it.each([
    ['another pipeline', deal(2001, { pipelineId: 200 }), /pipeline 200/],
    ['an unmapped stage', deal(stage('Incoming leads')), /"Incoming leads" is not in the table/],
    ['an unknown status', deal(999), /status 999/],
  ])('ignores %s', (_name, d, reason) => {
    const plan = planOrderUpdate(mappings, d, order('on_approval'));
    expect(plan.type).toBe('ignore');
    expect(plan.type === 'ignore' && plan.reason).toMatch(reason);
  });

  it('walks the shortest allowed path', () => {
    const t = mappings.partner.transitions;
    expect(statusPath(t, 'on_approval', 'in_work')).toEqual(['approved', 'in_work']);
    expect(statusPath(t, 'on_approval', 'executed')).toEqual(['approved', 'in_work', 'executed']);
    expect(statusPath(t, 'executed', 'approved')).toBeUndefined();
    expect(statusPath(t, 'approved', 'approved')).toEqual([]);
  });

  it('a table that maps Success to executed walks the order there', () => {
    const edited = resolveMappings(
      parseMappings(yaml.replace('  - stage: Success\n    id: 142\n', '  - stage: Success\n    id: 142\n    set: { status: executed }\n')),
      catalog,
    );
    expect(planOrderUpdate(edited, deal(142), order('approved', { cost: 4500, paid: true, subscriptionStatus: 'active' }))).toEqual({
      type: 'update',
      steps: [{ status: 'in_work' }, { status: 'executed' }],
    });
  });
});

describe('resolving the mappings', () => {
  it('names a misspelt stage and lists the real ones', () => {
    const bad = parseMappings(yaml.replace('stage: Confirmed VU', 'stage: Confirmed UV'));
    expect(() => resolveMappings(bad, catalog)).toThrow(MappingsError);
    expect(() => resolveMappings(bad, catalog)).toThrow(/stage "Confirmed UV" does not exist in pipeline "Company 2"; stages: .*"Confirmed VU"/);
  });

  it('names a missing field and a missing pipeline', () => {
    expect(() => resolveMappings(parseMappings(yaml.replace('Subscription status', 'Subscripton status')), catalog)).toThrow(
      /deal field "Subscripton status" does not exist/,
    );
    expect(() => resolveMappings(parseMappings(yaml.replace('pipeline: Company 2', 'pipeline: Company 3')), catalog)).toThrow(
      /pipeline "Company 3" does not exist; pipelines: "Company 2", "Sales"/,
    );
  });

  it('refuses a malformed file with the path of the problem', () => {
    expect(() => parseMappings(yaml.replace('integrationStage: 3', 'integrationStage: 4'))).toThrow(/integrationStage/);
    expect(() => parseMappings(yaml.replace('set: { paid: true }', 'set: { paid: yes please }'))).toThrow(/stages\.5\.set\.paid/);
  });
});
