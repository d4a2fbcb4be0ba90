import type { Mappings } from '../mappings/resolve.js';
import type { OrderEvent } from '../mappings/schema.js';
import type { Order, OrderStatus } from '../partner/schema.js';

/**
 * The other direction as a pure decision: what does an order's recorded state require of
 * its deal? The user cancelled, Company 1 closed or rejected the order: the deal gets the
 * reverse table's note and, where the table says so, a move; the comment typed on a new
 * order in the webview becomes a note. Each once: `applied` says what was already done.
 */

/** The event an order in this status stands for, whoever put it there. */
export const ORDER_EVENT_OF_STATUS: Partial<Record<OrderStatus, OrderEvent>> = {
  cancelled: 'cancelled',
  executed: 'executedByPartner',
  rejected: 'rejectedByPartner',
};

/** What the deal can be given: an order event, or the user's comment. */
export type DealUpdateKind = OrderEvent | 'comment';

export interface DealUpdate {
  kind: DealUpdateKind;
  note?: string;
  move?: { statusId: number; pipelineId: number };
}

export interface DealUpdateFacts {
  /** The order as the bridge last recorded it. */
  order: Order;
  /** The last status the bridge itself asked Company 1 for (stage sync), if any. */
  statusSetByBridge: OrderStatus | null;
  /** The comment the user typed on the new-order form, if the order came from the webview. */
  comment: string | null;
  /** What was already done, by kind. */
  applied: ReadonlyMap<DealUpdateKind, { noted: boolean; moved: boolean }>;
}

export const COMMENT_NOTE_PREFIX = 'Комментарий клиента: ';

/**
 * The event behind the order's status, unless the bridge set that status itself: an
 * order the bridge rejected because its deal was lost is no news to the deal.
 */
export function orderEventOf(order: Order, statusSetByBridge: OrderStatus | null): OrderEvent | undefined {
  if (order.status === statusSetByBridge) return undefined;
  return ORDER_EVENT_OF_STATUS[order.status];
}

/** The notes and move the deal still needs, comment first. */
export function planDealUpdates(events: Mappings['orderEvents'], facts: DealUpdateFacts): DealUpdate[] {
  const updates: DealUpdate[] = [];
  const comment = facts.comment?.trim();
  if (comment && !facts.applied.get('comment')?.noted) updates.push({ kind: 'comment', note: `${COMMENT_NOTE_PREFIX}${comment}` });

  const event = orderEventOf(facts.order, facts.statusSetByBridge);
  if (event) {
    const action = events[event];
    const done = facts.applied.get(event);
    const update: DealUpdate = { kind: event };
    if (!done?.noted) update.note = action.note;
    if (action.moveTo && !done?.moved) update.move = { statusId: action.moveTo.statusId, pipelineId: action.moveTo.pipelineId };
    if (update.note !== undefined || update.move) updates.push(update);
  }
  return updates;
}

/**
 * Whether the deal stands where the reverse table moves deals for an order in this status
 * (a cancelled order's deal in Refusal): the stage then agrees with the order, whatever
 * the stage table would ask of an order that reached it another way.
 */
export function dealStandsForOrderStatus(mappings: Mappings, deal: { pipelineId: number; statusId: number }, status: OrderStatus): boolean {
  const event = ORDER_EVENT_OF_STATUS[status];
  const target = event ? mappings.orderEvents[event].moveTo : undefined;
  return target !== undefined && target.pipelineId === deal.pipelineId && target.statusId === deal.statusId;
}
