import { isDeepStrictEqual } from 'node:util';
import type { CreateOrderRequest, Order, OrderPatch, OrderStatus } from '../../partner/schema.js';
import type { OrderPosition } from './cursor.js';
import { canTransition, isFinalStatus } from './transitions.js';

export type PatchOutcome =
  | { kind: 'ok'; order: Order; changed: boolean }
  | { kind: 'not_found' }
  | { kind: 'conflict'; error: string; currentStatus: OrderStatus };

/**
 * Company 1's order store, with the rules that do not depend on HTTP (so the API routes
 * and the simulator's own actions, like auto-close, share them).
 *
 * Stored orders are replaced, never mutated, and callers get copies: an order handed out
 * (a response, a webhook payload, a remembered idempotent answer) never changes later.
 */
export class OrderBook {
  readonly orders = new Map<string, Order>();
  private seq = 0;

  constructor(private readonly clock: () => number) {}

  create(input: Omit<CreateOrderRequest, 'comment'>): Order {
    const at = new Date(this.clock()).toISOString();
    const order: Order = {
      id: this.nextId(),
      userId: input.userId,
      serviceId: input.serviceId,
      status: 'on_approval',
      cost: null,
      paid: false,
      subscriptionStatus: null,
      customer: structuredClone(input.customer),
      additionalInfo: input.additionalInfo ? structuredClone(input.additionalInfo) : null,
      createdAt: at,
      updatedAt: at,
    };
    this.orders.set(order.id, order);
    return structuredClone(order);
  }

  get(id: string): Order | undefined {
    const order = this.orders.get(id);
    return order && structuredClone(order);
  }

  listByUser(userId: string): Order[] {
    return [...this.orders.values()]
      .filter((order) => order.userId === userId)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
      .map((order) => structuredClone(order));
  }

  /**
   * Orders whose updatedAt is at or after `since` (ms), ascending by (updatedAt, id),
   * starting after `after` when given; `more` says whether orders remain past this page.
   */
  listChangedSince(since: number, after: OrderPosition | undefined, limit: number): { items: Order[]; more: boolean } {
    const changed = [...this.orders.values()]
      .map((order) => ({ order, at: Date.parse(order.updatedAt) }))
      .filter(({ order, at }) => at >= since && (!after || comparePositions({ updatedAt: at, id: order.id }, after) > 0))
      .sort((a, b) => comparePositions({ updatedAt: a.at, id: a.order.id }, { updatedAt: b.at, id: b.order.id }));
    return { items: changed.slice(0, limit).map(({ order }) => structuredClone(order)), more: changed.length > limit };
  }

  /**
   * Applies a patch atomically: a forbidden status transition refuses the whole patch.
   * Setting the status an order already has is not a transition and is accepted (so a
   * reconciling client may send the full desired state); other fields may change on
   * any order, final ones included, so the bridge can always write additionalInfo back.
   */
  patch(id: string, patch: OrderPatch): PatchOutcome {
    const current = this.orders.get(id);
    if (!current) return { kind: 'not_found' };
    if (patch.status !== undefined && patch.status !== current.status && !canTransition(current.status, patch.status)) {
      return {
        kind: 'conflict',
        error: `status ${current.status} cannot change to ${patch.status}`,
        currentStatus: current.status,
      };
    }
    const next: Order = { ...current };
    if (patch.status !== undefined) next.status = patch.status;
    if (patch.cost !== undefined) next.cost = patch.cost;
    if (patch.paid !== undefined) next.paid = patch.paid;
    if (patch.subscriptionStatus !== undefined) next.subscriptionStatus = patch.subscriptionStatus;
    if (patch.additionalInfo !== undefined) next.additionalInfo = structuredClone(patch.additionalInfo);
    return this.commit(current, next);
  }

  /**
   * Stage-1 behaviour: Company 1 closes every order that is not final after `maxAgeMs`,
   * as executed with closedByDetmir = true, keeping the bridge's ids if it wrote them.
   * The transition bypasses the machine on purpose: Company 1 does it, not a client.
   */
  closeExpired(maxAgeMs: number): Order[] {
    const now = this.clock();
    const closed: Order[] = [];
    for (const current of [...this.orders.values()]) {
      if (isFinalStatus(current.status) || now - Date.parse(current.createdAt) < maxAgeMs) continue;
      const result = this.commit(current, {
        ...current,
        status: 'executed',
        additionalInfo: {
          contactId: current.additionalInfo?.contactId ?? 0,
          externalId: current.additionalInfo?.externalId ?? 0,
          closedByDetmir: true,
        },
      });
      if (result.kind === 'ok') closed.push(result.order);
    }
    return closed;
  }

  private commit(current: Order, next: Order): PatchOutcome & { kind: 'ok' } {
    if (isDeepStrictEqual({ ...current, updatedAt: '' }, { ...next, updatedAt: '' })) {
      return { kind: 'ok', order: structuredClone(current), changed: false };
    }
    // Strictly increasing even within one millisecond, so updatedAt orders the changes.
    next.updatedAt = new Date(Math.max(this.clock(), Date.parse(current.updatedAt) + 1)).toISOString();
    this.orders.set(next.id, next);
    return { kind: 'ok', order: structuredClone(next), changed: true };
  }

  private nextId(): string {
    // Tests may put orders into the map directly; never reuse their ids.
    let id: string;
    do id = `DM-${String(++this.seq).padStart(6, '0')}`;
    while (this.orders.has(id));
    return id;
  }
}

/** Keyset order: by updatedAt, then by id (code units, so every client agrees). */
function comparePositions(a: OrderPosition, b: OrderPosition): number {
  if (a.updatedAt !== b.updatedAt) return a.updatedAt - b.updatedAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
