import type { Db } from '../db/connect.js';
import type { Mappings } from '../mappings/resolve.js';
import { ORDER_SYNC, syncJobs } from './jobs.js';
import { dealClaimKey, settleClaim } from './claims.js';
import { dealBelongsTo } from './deal-ownership.js';
import type { AmoPort } from './ports.js';

export interface RelinkDeps {
  db: Db;
  amo: Pick<AmoPort, 'getLeadsByIds'>;
  mappings: Pick<Mappings, 'fields'>;
}

export type RelinkOutcome =
  | { type: 'relinked'; orderId: string; dealId: number; previous: number | null }
  | { type: 'refused'; reason: string };

/**
 * A person's fix for an order linked to a deal that is not its own (dealBelongsTo): the
 * order is linked to `dealId`, which must carry the order's id, and its sync is queued so
 * Company 1's additionalInfo names the new deal. It runs after the order's dead jobs,
 * once they are replayed.
 *
 * @example await relinkOrderDeal(deps, 'DM-000001', 20100007) // { type: 'relinked', previous: 20100001, … }
 */
export async function relinkOrderDeal(deps: RelinkDeps, orderId: string, dealId: number): Promise<RelinkOutcome> {
  const row = await deps.db.kysely.selectFrom('orders').select(['deal_id', 'contact_id']).where('order_id', '=', orderId).executeTakeFirst();
  if (!row) return { type: 'refused', reason: `the bridge has no order ${orderId}` };
  const [lead] = await deps.amo.getLeadsByIds([dealId]);
  if (!lead) return { type: 'refused', reason: `amoCRM has no deal ${dealId}` };
  const owned = dealBelongsTo(lead, orderId, deps.mappings);
  if (owned.type === 'mismatch') {
    const carries = owned.carries === null ? 'no detmirOrderId' : `detmirOrderId ${owned.carries}`;
    return { type: 'refused', reason: `deal ${dealId} carries ${carries}, not ${orderId}: set it in amoCRM first` };
  }
  // additionalInfo names the deal's contact, so the order takes the deal's main one.
  const contactId = (lead._embedded?.contacts?.find((c) => c.is_main) ?? lead._embedded?.contacts?.[0])?.id ?? row.contact_id;
  await deps.db.kysely.transaction().execute(async (trx) => {
    await trx.updateTable('orders').set({ deal_id: dealId, contact_id: contactId, updated_at: Date.now() }).where('order_id', '=', orderId).execute();
    await settleClaim(trx, dealClaimKey(orderId), dealId);
    await syncJobs.enqueue(trx, ORDER_SYNC, { orderId }, { key: `order:${orderId}` });
  });
  return { type: 'relinked', orderId, dealId, previous: row.deal_id };
}
