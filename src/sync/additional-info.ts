import type { AdditionalInfo, Order } from '../partner/schema.js';

/**
 * additionalInfo is the one format every stage writes back on the partner order:
 * {contactId, externalId (the deal id), closedByDetmir}. Pure, so the rule is tested alone.
 */
export function desiredAdditionalInfo(order: Order, ids: { contactId: number; dealId: number }): AdditionalInfo {
  return {
    contactId: ids.contactId,
    externalId: ids.dealId,
    // Once Company 1 says it closed the order itself, that fact is never written back false.
    closedByDetmir: order.additionalInfo?.closedByDetmir === true,
  };
}

export function sameAdditionalInfo(a: AdditionalInfo | null, b: AdditionalInfo): boolean {
  return a !== null && a.contactId === b.contactId && a.externalId === b.externalId && a.closedByDetmir === b.closedByDetmir;
}
