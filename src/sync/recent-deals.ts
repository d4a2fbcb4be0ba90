import type { Db } from '../db/connect.js';
import type { DiffCase } from '../mappings/diff.js';
import type { Mappings } from '../mappings/resolve.js';
import { orderSchema } from '../partner/schema.js';
import type { AmoPort } from './ports.js';
import { PermanentError } from '../lib/http-error.js';
import { orderOfDeal } from './reconcile.js';

/**
 * The deals of the given pipelines updated since a time (every page, through the
 * rate-limited client), each with the order the bridge knows for it, as the reconcile
 * finds it (by deal id, else by detmirOrderId). Reads only: the mapping dry-run.
 */
export async function recentDealCases(
  deps: { db: Db; amo: AmoPort; mappings: Pick<Mappings, 'fields'> },
  pipelineIds: number[],
  sinceMs: number,
): Promise<{ dealsRead: number; cases: DiffCase[] }> {
  let dealsRead = 0;
  const cases: DiffCase[] = [];
  for (const pipelineId of new Set(pipelineIds)) {
    for (let page = 1; ; page++) {
      const { leads, hasMore } = await deps.amo.listLeadsUpdatedSince({ pipelineId, fromUnix: Math.floor(sinceMs / 1000), page });
      dealsRead += leads.length;
      for (const lead of leads) {
        // A deal that does not carry its order's id is never planned on (the bridge would
        // dead-letter it), so the dry-run leaves it out too.
        const row = await orderOfDeal(deps, lead).catch((error: unknown) => {
          if (error instanceof PermanentError) return undefined;
          throw error;
        });
        if (row) cases.push({ lead, order: orderSchema.parse(JSON.parse(row.snapshot)), closedByPartner: row.closed_by_partner === 1 });
      }
      if (!hasMore || leads.length === 0) break;
    }
  }
  return { dealsRead, cases };
}
