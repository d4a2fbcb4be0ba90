import type { Request } from 'express';
import type { ParsedQs } from 'qs';
import { inRange, queryIds, queryRange, queryString } from '../http.js';

/**
 * The filters and order that GET /api/v4/leads and /api/v4/contacts share
 * (amocrm.ru/developers/content/crm_platform/filters-api): `filter[id]`,
 * `filter[created_at]`, `filter[updated_at]`, `order[created_at|updated_at|id]=asc|desc`.
 */

interface Listable {
  id: number;
  created_at: number;
  updated_at: number;
}

export function filterObject(req: Request): ParsedQs {
  const filter = req.query.filter;
  return typeof filter === 'object' && filter !== null && !Array.isArray(filter) ? filter : {};
}

/** The common filters as a predicate. */
export function commonFilter(filter: ParsedQs): (item: Listable) => boolean {
  const ids = queryIds(filter.id, 'filter.id');
  const idSet = ids ? new Set(ids) : undefined;
  const created = queryRange(filter.created_at, 'filter.created_at');
  const updated = queryRange(filter.updated_at, 'filter.updated_at');
  return (item) =>
    (idSet === undefined || idSet.has(item.id)) && inRange(item.created_at, created) && inRange(item.updated_at, updated);
}

/**
 * Sorts by `order[field]=asc|desc`. Without an order the simulator lists by id ascending
 * (amoCRM documents no default order, so callers should not rely on one).
 */
export function sortItems<T extends Listable>(req: Request, items: T[]): T[] {
  const order = req.query.order;
  let field: keyof Listable = 'id';
  let dir = 1;
  if (typeof order === 'object' && order !== null && !Array.isArray(order)) {
    for (const key of ['updated_at', 'created_at', 'id'] as const) {
      const value = queryString(order[key]);
      if (value !== undefined) {
        field = key;
        dir = value.toLowerCase() === 'desc' ? -1 : 1;
        break;
      }
    }
  }
  return [...items].sort((a, b) => (a[field] - b[field]) * dir || (a.id - b.id) * dir);
}
