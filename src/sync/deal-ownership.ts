import type { Mappings } from '../mappings/resolve.js';
import { type AmoLeadView, customFieldText } from './ports.js';

/**
 * Before the bridge acts on a deal for an order, the deal must say it is that order's:
 * its detmirOrderId is the order's id. amoCRM ids can come back on other records (an
 * account restored from a backup, a restarted simulator), and a recorded deal id alone
 * would then map one order onto another order's deal without a word.
 */

export type DealOwnership =
  | { type: 'ok' }
  | {
      type: 'mismatch';
      dealId: number;
      orderId: string;
      /** The detmirOrderId the deal carries, or null when the field is empty. */
      carries: string | null;
      /** What happened and what a person does about it, for the dead letter. */
      reason: string;
    };

/**
 * Whether `lead` is `orderId`'s deal. `alsoLinked`: other orders the bridge has linked to
 * the same deal id, named in the reason.
 *
 * @example dealBelongsTo(lead, 'DM-1', mappings) // { type: 'ok' } when the deal's detmirOrderId is "DM-1"
 */
export function dealBelongsTo(
  lead: AmoLeadView,
  orderId: string,
  mappings: Pick<Mappings, 'fields'>,
  alsoLinked: readonly string[] = [],
): DealOwnership {
  // Exact, as intake's search filter: the deal the bridge makes carries the id verbatim.
  const carries = customFieldText(lead, mappings.fields.detmirOrderId) ?? null;
  if (carries === orderId) return { type: 'ok' };
  const others = alsoLinked.filter((id) => id !== orderId);
  const reason =
    `deal ${lead.id} is linked to order ${orderId} but carries ` +
    (carries === null ? 'no detmirOrderId' : `detmirOrderId ${carries}`) +
    (others.length > 0 ? ` (order${others.length > 1 ? 's' : ''} ${others.join(', ')} ${others.length > 1 ? 'are' : 'is'} linked to it too)` : '') +
    `: amoCRM ids may have been reused (an account restored from a backup?), so nothing was written to ` +
    `Company 1 or amoCRM. Open deal ${lead.id} in amoCRM: if it is order ${orderId}'s deal, set its ` +
    `detmirOrderId to ${orderId}; if not, link the order to its own deal (amobridge orders relink ${orderId} ` +
    `<deal-id>; a deal made in amoCRM for it needs detmirOrderId ${orderId}). Then replay this job.`;
  return { type: 'mismatch', dealId: lead.id, orderId, carries, reason };
}
