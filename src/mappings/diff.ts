import type { Order, OrderStatus } from '../partner/schema.js';
import { dealStateOf, planOrderUpdate, stageSyncOff } from '../sync/plan-order-update.js';
import type { AmoLeadView } from '../sync/ports.js';
import { stageLabel } from './describe.js';
import type { Mappings } from './resolve.js';

/**
 * The mapping dry-run as a pure decision (`amobridge mappings diff`): plan a deal's order
 * under two tables with the planner the bridge runs, and keep the orders whose outcome
 * differs. The order starts where the bridge last saw it (its stored snapshot), so an
 * outcome is what the next reconcile of that deal would leave, table by table.
 */

/** The order's fields a stage table drives. */
export interface OrderFields {
  status: OrderStatus;
  cost: number | null;
  paid: boolean;
  subscriptionStatus: string | null;
}

export interface OrderOutcome {
  /** update: PATCHes to Company 1; nothing: in step; ignore: left alone; unreachable: the dead letter. */
  action: 'update' | 'nothing' | 'ignore' | 'unreachable';
  /** Why, for ignore and unreachable. */
  reason?: string;
  /** The order once the plan is carried out (unchanged unless the action is update). */
  order: OrderFields;
}

/** One deal read from amoCRM with the order the bridge knows for it. */
export interface DiffCase {
  lead: AmoLeadView;
  order: Order;
  /** Company 1 closed the order itself (stage 1): stage sync leaves it alone. */
  closedByPartner: boolean;
}

export interface OrderDiff {
  orderId: string;
  dealId: number;
  /** The deal's stage as the current table names it. */
  stage: string;
  current: OrderOutcome;
  edited: OrderOutcome;
}

const fieldsOf = (o: OrderFields): OrderFields => ({ status: o.status, cost: o.cost, paid: o.paid, subscriptionStatus: o.subscriptionStatus });

/** What one table makes of one order: the reconcile's rules (stageSyncOff, then planOrderUpdate). */
export function outcomeOf(mappings: Mappings, c: DiffCase): OrderOutcome {
  const order = fieldsOf(c.order);
  const off = stageSyncOff(mappings, c.closedByPartner);
  if (off) return { action: 'ignore', reason: off, order };
  const plan = planOrderUpdate(mappings, dealStateOf(c.lead, mappings), c.order);
  switch (plan.type) {
    case 'update':
      return { action: 'update', order: plan.steps.reduce<OrderFields>((o, step) => ({ ...o, ...step }), order) };
    case 'nothing':
      return { action: 'nothing', order };
    default:
      return { action: plan.type, reason: plan.reason, order };
  }
}

/** The same outcome for the order: the same fields, and the dead letter for both or neither. */
export function sameOutcome(a: OrderOutcome, b: OrderOutcome): boolean {
  const same = (x: OrderFields, y: OrderFields) =>
    x.status === y.status && x.cost === y.cost && x.paid === y.paid && x.subscriptionStatus === y.subscriptionStatus;
  return same(a.order, b.order) && (a.action === 'unreachable') === (b.action === 'unreachable');
}

/** The orders whose outcome differs between the two tables, in the order the cases came. */
export function diffMappings(current: Mappings, edited: Mappings, cases: DiffCase[]): OrderDiff[] {
  return cases.flatMap((c) => {
    const a = outcomeOf(current, c);
    const b = outcomeOf(edited, c);
    if (sameOutcome(a, b)) return [];
    return [{ orderId: c.order.id, dealId: c.lead.id, stage: stageLabel(current, c.lead.status_id), current: a, edited: b }];
  });
}

const WHAT: Record<OrderOutcome['action'], string> = {
  update: 'changes the order',
  nothing: 'in step, no change',
  ignore: 'left alone',
  unreachable: 'dead letter',
};

export function describeOutcome(o: OrderOutcome): string {
  const { status, cost, paid, subscriptionStatus } = o.order;
  const fields = `status ${status}, cost ${cost ?? '-'}, paid ${paid ? 'yes' : 'no'}, subscription ${subscriptionStatus ?? '-'}`;
  return `${fields}  (${WHAT[o.action]}${o.reason ? `: ${o.reason}` : ''})`;
}

/** The report: each differing order with both outcomes, then one summary line. */
export function describeDiff(diffs: OrderDiff[], counts: { dealsRead: number; ordersPlanned: number; since: Date }): string {
  const lines = diffs.flatMap((d) => [
    `order ${d.orderId}  deal ${d.dealId}  stage "${d.stage}"`,
    `  current: ${describeOutcome(d.current)}`,
    `  edited:  ${describeOutcome(d.edited)}`,
    '',
  ]);
  lines.push(
    `${counts.dealsRead} deals read (updated since ${counts.since.toISOString()}), ` +
      `${counts.ordersPlanned} with an order planned, ${diffs.length} orders differ`,
  );
  return `${lines.join('\n')}\n`;
}
