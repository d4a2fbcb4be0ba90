import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MappingsError, parseMappings } from '../src/mappings/load.js';
import { resolveMappings } from '../src/mappings/resolve.js';
import { type DealState, planOrderUpdate, statusPath } from '../src/sync/plan-order-update.js';
import { catalog, PIPELINE, stage } from './support/catalog.js';
import { anOrder as order } from './support/orders.js';

const yaml = readFileSync('mappings/default.yaml', 'utf8');
const mappings = resolveMappings(parseMappings(yaml), catalog);

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

  it('Success closes the order: executed', () => {
    const done = order('in_work', { cost: 4500, paid: true, subscriptionStatus: 'active' });
    expect(planOrderUpdate(mappings, deal(142), done)).toEqual({ type: 'update', steps: [{ status: 'executed' }] });
    expect(planOrderUpdate(mappings, deal(142), { ...done, status: 'executed' })).toEqual({ type: 'nothing' });
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

  it('a deal won from a stage that skipped the rest walks the order through in_work to executed', () => {
    expect(planOrderUpdate(mappings, deal(142), order('approved', { cost: 4500, paid: true, subscriptionStatus: 'active' }))).toEqual({
      type: 'update',
      steps: [{ status: 'in_work' }, { status: 'executed' }],
    });
  });

  it('a deal won straight from New lead gets every effect on the way, closing last', () => {
    expect(planOrderUpdate(mappings, deal(142), order('on_approval'))).toEqual({
      type: 'update',
      steps: [{ status: 'approved' }, { status: 'in_work' }, { status: 'executed', cost: 4500, paid: true, subscriptionStatus: 'active' }],
    });
  });
});

describe('the webhook for a move the reverse table made', () => {
  const edited = (edit: (y: string) => string) => resolveMappings(parseMappings(edit(yaml)), catalog);

  it.each([
    ['a cancelled order, its deal moved to Refusal', deal(143), order('cancelled'), { type: 'nothing' }],
    ['a rejected order, its deal moved to Refusal', deal(143), order('rejected'), { type: 'nothing' }],
  ] as const)('%s: in step, nothing to send', (_name, d, o, plan) => {
    expect(planOrderUpdate(mappings, d, o)).toEqual(plan);
  });

  it.each([
    ['Recorded for trial', stage('Recorded for trial')],
    ['Success', 142],
  ])('a cancelled order whose deal a manager then moved to %s is still a divergence', (_name, statusId) => {
    expect(planOrderUpdate(mappings, deal(statusId), order('cancelled')).type).toBe('unreachable');
  });

  it('a table whose cancel moves nowhere leaves a cancelled order in a lost deal a divergence', () => {
    const noMove = edited((y) => y.replace('cancelled: { note: "Клиент отменил заказ", moveTo: Refusal }', 'cancelled: { note: "Клиент отменил заказ" }'));
    expect(planOrderUpdate(noMove, deal(143), order('cancelled')).type).toBe('unreachable');
  });

  it('a table that moves a cancelled order’s deal to another stage is in step there, and only there', () => {
    const waiting = edited((y) => y.replace('moveTo: Refusal }\n  # Company 1 closed', 'moveTo: Waiting for a solution }\n  # Company 1 closed'));
    expect(planOrderUpdate(waiting, deal(stage('Waiting for a solution')), order('cancelled'))).toEqual({ type: 'nothing' });
    expect(planOrderUpdate(waiting, deal(143), order('cancelled')).type).toBe('unreachable');
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

  it('resolves the reverse table: Refusal by the id the stage table pins, other stages by name', () => {
    expect(mappings.orderEvents).toEqual({
      cancelled: { note: 'Клиент отменил заказ', moveTo: { name: 'Refusal', statusId: 143, pipelineId: PIPELINE } },
      executedByPartner: { note: 'Компания 1 закрыла заказ как выполненный' },
      rejectedByPartner: { note: 'Компания 1 отклонила заказ', moveTo: { name: 'Refusal', statusId: 143, pipelineId: PIPELINE } },
    });
    const byName = resolveMappings(parseMappings(yaml.replace('note: "Компания 1 закрыла заказ как выполненный" }', 'note: "x", moveTo: Closed - won }')), catalog);
    expect(byName.orderEvents.executedByPartner.moveTo).toEqual({ name: 'Closed - won', statusId: 142, pipelineId: PIPELINE });
  });

  it('names a reverse-table stage that does not exist, with the ones that do', () => {
    const bad = parseMappings(yaml.replace('"Клиент отменил заказ", moveTo: Refusal', '"Клиент отменил заказ", moveTo: Refusl'));
    expect(() => resolveMappings(bad, catalog)).toThrow(/orderEvents\.cancelled\.moveTo: stage "Refusl" does not exist in pipeline "Company 2"; stages: .*"Refusal".*"Closed - lost"/);
  });

  it('refuses a reverse table without a note or with an unknown event', () => {
    expect(() => parseMappings(yaml.replace('note: "Компания 1 отклонила заказ", ', ''))).toThrow(/orderEvents\.rejectedByPartner\.note/);
    expect(() => parseMappings(yaml.replace('  rejectedByPartner:', '  rejectedByCompany1:'))).toThrow(/orderEvents/);
  });

  it('refuses a malformed file with the path of the problem', () => {
    expect(() => parseMappings(yaml.replace('integrationStage: 3', 'integrationStage: 4'))).toThrow(/integrationStage/);
    expect(() => parseMappings(yaml.replace('set: { paid: true }', 'set: { paid: yes please }'))).toThrow(/stages\.5\.set\.paid/);
  });
});
