import type { Mappings } from '../mappings/resolve.js';
import type { Order, OrderPatch, OrderStatus } from '../partner/schema.js';
import { dealStandsForOrderStatus } from './order-events.js';
import { type AmoLeadView, customFieldText } from './ports.js';

/**
 * Stage sync as a pure decision: given the deal as amoCRM has it *now* and the order as
 * Company 1 has it, which PATCHes (in order) bring the order to the state the stage
 * table asks for? No I/O here; the reconcile job feeds it and carries out its answer.
 */

export interface DealState {
  id: number;
  pipelineId: number;
  statusId: number;
  price: number | null;
  /** The deal's "Subscription status" field, if filled. */
  subscriptionStatus: string | null;
}

/** The deal as the planner sees it, read from amoCRM's answer with the table's field ids. */
export function dealStateOf(lead: AmoLeadView, mappings: Pick<Mappings, 'fields'>): DealState {
  return {
    id: lead.id,
    pipelineId: lead.pipeline_id,
    statusId: lead.status_id,
    price: lead.price ?? null,
    subscriptionStatus: customFieldText(lead, mappings.fields.subscriptionStatus) ?? null,
  };
}

/**
 * Why stage sync leaves an order alone whatever its deal's stage, if it does: at
 * integration stage 1 Company 1 closes orders itself, and an order it closed is its own.
 */
export function stageSyncOff(mappings: Pick<Mappings, 'integrationStage'>, closedByPartner: boolean): string | undefined {
  if (mappings.integrationStage === 1) return 'integration stage 1';
  if (closedByPartner) return 'closed by Company 1';
  return undefined;
}

/** What the table asks of the order once the deal stands where it stands. */
export interface DesiredOrderState {
  status?: OrderStatus;
  cost?: number | null;
  paid?: true;
  subscriptionStatus?: string | null;
}

export type OrderPlan =
  | { type: 'ignore'; reason: string }
  | { type: 'nothing' }
  | { type: 'update'; steps: Array<Omit<OrderPatch, 'additionalInfo'>> }
  | { type: 'unreachable'; reason: string };

const LOST = 143;

/**
 * The effects of every mapped stage on the deal's path up to its current stage, so a
 * deal that skipped stages still gets each effect. A lost deal (143) did not pass the
 * stages after the one it was lost from, and amoCRM does not say which that was, so it
 * gets only the effects of the lost row itself. A won deal (142) passed them all.
 */
export function desiredOrderState(mappings: Mappings, deal: DealState): DesiredOrderState | { ignore: string } {
  if (deal.pipelineId !== mappings.pipeline.id) return { ignore: `deal is in pipeline ${deal.pipelineId}, not "${mappings.pipeline.name}"` };
  const current = mappings.statuses.get(deal.statusId);
  if (!current) return { ignore: `status ${deal.statusId} is not a stage of "${mappings.pipeline.name}"` };
  const here = mappings.stages.get(deal.statusId);
  if (!here && deal.statusId !== mappings.initialStatus.id) return { ignore: `stage "${current.name}" is not in the table` };

  const passed =
    deal.statusId === LOST
      ? [here!]
      : [...mappings.stages.values()].filter((s) => s.statusId !== LOST && s.rank <= current.rank).sort((a, b) => a.rank - b.rank);

  const desired: DesiredOrderState = {};
  for (const stage of passed) {
    const e = stage.effects;
    if (e.status) desired.status = e.status;
    if (e.cost) desired.cost = deal.price;
    if (e.paid) desired.paid = true;
    if (e.subscriptionStatus) desired.subscriptionStatus = deal.subscriptionStatus;
  }
  return desired;
}

/** Shortest walk through the allowed transitions, excluding `from`; undefined if none. */
export function statusPath(
  transitions: Partial<Record<OrderStatus, OrderStatus[]>>,
  from: OrderStatus,
  to: OrderStatus,
): OrderStatus[] | undefined {
  if (from === to) return [];
  const previous = new Map<OrderStatus, OrderStatus>();
  const queue: OrderStatus[] = [from];
  while (queue.length > 0) {
    const at = queue.shift()!;
    for (const next of transitions[at] ?? []) {
      if (next === from || previous.has(next)) continue;
      previous.set(next, at);
      if (next === to) {
        const path: OrderStatus[] = [to];
        for (let s = at; s !== from; s = previous.get(s)!) path.unshift(s);
        return path;
      }
      queue.push(next);
    }
  }
  return undefined;
}

export function planOrderUpdate(mappings: Mappings, deal: DealState, order: Order): OrderPlan {
  const desired = desiredOrderState(mappings, deal);
  if ('ignore' in desired) return { type: 'ignore', reason: desired.ignore };

  const fields: Omit<OrderPatch, 'additionalInfo' | 'status'> = {};
  if ('cost' in desired && desired.cost !== order.cost) fields.cost = desired.cost ?? null;
  if (desired.paid && !order.paid) fields.paid = true;
  if ('subscriptionStatus' in desired && desired.subscriptionStatus !== order.subscriptionStatus) {
    fields.subscriptionStatus = desired.subscriptionStatus ?? null;
  }

  let walk: OrderStatus[] = [];
  // The bridge moved the deal here because of the order's status (the user cancelled →
  // Refusal): amoCRM's webhook for that move finds the order in step, not diverged.
  const movedHereForOrder = dealStandsForOrderStatus(mappings, deal, order.status);
  if (desired.status && desired.status !== order.status && !movedHereForOrder) {
    const transitions = mappings.partner.transitions;
    const forward = statusPath(transitions, order.status, desired.status);
    // An order already past the status asked for (the deal moved back) keeps its own:
    // statuses never go backwards. But a closed order (no way out of its status) that
    // the table did not close is a divergence a person must settle, never silence.
    const closed = (transitions[order.status] ?? []).length === 0;
    const ahead = !closed && statusPath(transitions, desired.status, order.status) !== undefined;
    if (forward) walk = forward;
    else if (!ahead) {
      const stage = mappings.statuses.get(deal.statusId)?.name ?? String(deal.statusId);
      return {
        type: 'unreachable',
        reason:
          `order ${order.id} is "${order.status}" and deal ${deal.id} stands at "${stage}", which asks for ` +
          `"${desired.status}": no allowed transition leads there. Move the deal to a stage that fits the ` +
          `order, or settle the order in Company 1, then replay this job.`,
      };
    }
  }

  const steps: Array<Omit<OrderPatch, 'additionalInfo'>> = walk.map((status) => ({ status }));
  if (Object.keys(fields).length > 0) {
    // Fields go with the last status step: approved, then in_work, then cost and paid.
    if (steps.length > 0) Object.assign(steps[steps.length - 1]!, fields);
    else steps.push(fields);
  }
  return steps.length === 0 ? { type: 'nothing' } : { type: 'update', steps };
}
