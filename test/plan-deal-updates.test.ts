import { describe, expect, it } from 'vitest';
import type { Mappings } from '../src/mappings/resolve.js';
import type { Order, OrderStatus } from '../src/partner/schema.js';
import { type DealUpdateFacts, type DealUpdateKind, orderEventOf, planDealUpdates } from '../src/sync/order-events.js';
import { anOrder } from './support/orders.js';

const REFUSAL = { name: 'Refusal', statusId: 143, pipelineId: 100 };
const events: Mappings['orderEvents'] = {
  cancelled: { note: 'Клиент отменил заказ', moveTo: REFUSAL },
  executedByPartner: { note: 'Компания 1 закрыла заказ как выполненный' },
  rejectedByPartner: { note: 'Компания 1 отклонила заказ', moveTo: REFUSAL },
};
const toRefusal = { statusId: 143, pipelineId: 100 };

const order = (status: OrderStatus, closedByDetmir = false): Order =>
  anOrder(status, { additionalInfo: { contactId: 1, externalId: 2, closedByDetmir } });

const facts = (o: Order, extra: Partial<DealUpdateFacts> = {}): DealUpdateFacts => ({
  order: o,
  statusSetByBridge: null,
  comment: null,
  applied: new Map(),
  ...extra,
});
const applied = (entries: Array<[DealUpdateKind, { noted: boolean; moved: boolean }]>) => new Map(entries);

describe('what an order event requires of its deal', () => {
  it.each([
    ['on_approval', []],
    ['approved', []],
    ['in_work', []],
    ['cancelled', [{ kind: 'cancelled', note: 'Клиент отменил заказ', move: toRefusal }]],
    ['rejected', [{ kind: 'rejectedByPartner', note: 'Компания 1 отклонила заказ', move: toRefusal }]],
    ['executed', [{ kind: 'executedByPartner', note: 'Компания 1 закрыла заказ как выполненный' }]],
  ] as const)('an order %s', (status, updates) => {
    expect(planDealUpdates(events, facts(order(status)))).toEqual(updates);
  });

  it('Company 1 closing the order itself at stage 1 (closedByDetmir) is a note, no move', () => {
    expect(planDealUpdates(events, facts(order('executed', true)))).toEqual([
      { kind: 'executedByPartner', note: 'Компания 1 закрыла заказ как выполненный' },
    ]);
  });

  it.each(['rejected', 'executed', 'cancelled'] as const)('a status the bridge itself asked for (%s) is no event', (status) => {
    expect(orderEventOf(order(status), status)).toBeUndefined();
    expect(planDealUpdates(events, facts(order(status), { statusSetByBridge: status }))).toEqual([]);
  });

  it('the bridge having asked for another status does not hide the event', () => {
    expect(planDealUpdates(events, facts(order('cancelled'), { statusSetByBridge: 'approved' }))).toEqual([
      { kind: 'cancelled', note: 'Клиент отменил заказ', move: toRefusal },
    ]);
  });

  it('once noted, only the move is left; once moved too, nothing', () => {
    expect(planDealUpdates(events, facts(order('cancelled'), { applied: applied([['cancelled', { noted: true, moved: false }]]) }))).toEqual([
      { kind: 'cancelled', move: toRefusal },
    ]);
    expect(planDealUpdates(events, facts(order('cancelled'), { applied: applied([['cancelled', { noted: true, moved: true }]]) }))).toEqual([]);
  });

  it('the comment becomes a note before the event, once, and a blank one is no note', () => {
    expect(planDealUpdates(events, facts(order('cancelled'), { comment: '  После 18:00 ' }))).toEqual([
      { kind: 'comment', note: 'Комментарий клиента: После 18:00' },
      { kind: 'cancelled', note: 'Клиент отменил заказ', move: toRefusal },
    ]);
    expect(planDealUpdates(events, facts(order('on_approval'), { comment: 'x', applied: applied([['comment', { noted: true, moved: false }]]) }))).toEqual([]);
    expect(planDealUpdates(events, facts(order('on_approval'), { comment: '   ' }))).toEqual([]);
  });
});
