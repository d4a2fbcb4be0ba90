import type { OrderStatus } from '../../partner/schema.js';

/**
 * Company 1's own status machine. The bridge declares these transitions in its mappings
 * (it must not assume them); the simulator plays Company 1, so it enforces them in code
 * and answers 409 to anything else.
 */
const ALLOWED: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  on_approval: ['approved', 'rejected', 'cancelled'],
  approved: ['in_work', 'rejected', 'cancelled'],
  in_work: ['executed', 'rejected'],
  executed: [],
  rejected: [],
  cancelled: [],
};

export function isFinalStatus(status: OrderStatus): boolean {
  return ALLOWED[status].length === 0;
}

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return ALLOWED[from].includes(to);
}
