import type { Db } from '../db/connect.js';
import { type CatalogSource, fetchAccountCatalog } from '../mappings/account-catalog.js';
import { describeDiff, diffMappings } from '../mappings/diff.js';
import { loadMappingsFile, MappingsError } from '../mappings/load.js';
import { type AccountCatalog, type Mappings, resolveMappings } from '../mappings/resolve.js';
import type { AmoPort } from '../sync/ports.js';
import { recentDealCases } from '../sync/recent-deals.js';

/**
 * `amobridge mappings diff <file> [--since 7d]`: the orders of the deals changed in the
 * span whose outcome the edited table would change, with both outcomes. Reads amoCRM and
 * the database; writes nothing to either, nor to Company 1.
 */
export async function mappingsDiff(
  deps: { db: Db; amo: AmoPort & CatalogSource },
  paths: { current: string; edited: string },
  sinceMs: number,
): Promise<string> {
  const catalog = await fetchAccountCatalog(deps.amo);
  const current = resolveFile(paths.current, catalog);
  const edited = resolveFile(paths.edited, catalog);
  const { dealsRead, cases } = await recentDealCases(
    { db: deps.db, amo: deps.amo, mappings: current },
    [current.pipeline.id, edited.pipeline.id],
    sinceMs,
  );
  const diffs = diffMappings(current, edited, cases);
  return describeDiff(diffs, { dealsRead, ordersPlanned: cases.length, since: new Date(sinceMs) });
}

/** Resolution errors name the file, as `mappings check` names MAPPINGS_PATH. */
function resolveFile(path: string, catalog: AccountCatalog): Mappings {
  const file = loadMappingsFile(path);
  try {
    return resolveMappings(file, catalog);
  } catch (error) {
    throw error instanceof MappingsError ? new MappingsError(`${path}: ${error.message}`) : error;
  }
}
