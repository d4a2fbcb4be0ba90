import type { Request, Response } from 'express';
import type { ParsedQs } from 'qs';
import qs from 'qs';
import { ProblemError, ValidationError, problem } from './problem.js';

/**
 * HTTP plumbing shared by the routes: reading amoCRM-style query parameters, paging, and
 * answering `application/hal+json` (or failing after the write when a fault says so).
 */

/** Per-request flags set by the fault middleware and read when answering. */
interface RequestMeta {
  /** Answer a mutating request with 500, never, or with a TCP reset, after its write was applied. */
  failAfterWrite: 'error' | 'hang' | 'reset' | null;
}

const metas = new WeakMap<Request, RequestMeta>();

export function requestMeta(req: Request): RequestMeta {
  let meta = metas.get(req);
  if (!meta) {
    meta = { failAfterWrite: null };
    metas.set(req, meta);
  }
  return meta;
}

/** Base URL for `_links`: the simulator's own address, so that clients can follow them. */
export function baseUrl(req: Request): string {
  return `${req.protocol}://${req.get('host') ?? '127.0.0.1'}`;
}

export function selfLink(href: string): { self: { href: string } } {
  return { self: { href } };
}

/** Answers a successful request; `body` undefined means an empty answer (204). */
export function sendHal(req: Request, res: Response, status: number, body?: unknown): void {
  const { failAfterWrite } = requestMeta(req);
  if (failAfterWrite === 'hang') return; // the write happened; the answer never comes
  if (failAfterWrite === 'reset') {
    req.socket.resetAndDestroy(); // the write happened; the connection dies before the answer
    return;
  }
  if (failAfterWrite === 'error') {
    res.status(500).type('application/problem+json').send(JSON.stringify(problem(500, 'Internal server error')));
    return;
  }
  if (body === undefined) {
    res.status(status).end();
    return;
  }
  res.status(status).type('application/hal+json').send(JSON.stringify(body));
}

// ---------------------------------------------------------------------------------------------
// Query parameters
// ---------------------------------------------------------------------------------------------

type QueryValue = ParsedQs[string];

/** Express query parser: qs with limits wide enough for `filter[id][]` batches of 250+. */
export function parseQuery(search: string): ParsedQs {
  return qs.parse(search, { arrayLimit: 1000, parameterLimit: 5000, depth: 6 });
}

export function queryString(value: QueryValue): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

/**
 * A list of ids from `filter[id][]=1&filter[id][]=2`, `filter[id][0]=1`, `filter[id]=1` or
 * `filter[id]=1,2`. qs turns indices it will not make an array of into an object's keys, so
 * objects count too. Anything not a positive integer makes the whole filter invalid.
 */
export function queryIds(value: QueryValue, path: string): number[] | undefined {
  if (value === undefined) return undefined;
  let raw: unknown[];
  if (typeof value === 'string') raw = value.split(',');
  else if (Array.isArray(value)) raw = value;
  else raw = Object.values(value);
  const ids = raw.map((v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN));
  if (ids.some((n) => !Number.isSafeInteger(n) || n <= 0)) {
    throw ValidationError.single('InvalidType', path, 'This value should be a list of ids.');
  }
  return ids;
}

/** `filter[updated_at][from]=…&[to]=…` (inclusive), or a bare timestamp meaning "from". */
export function queryRange(value: QueryValue, path: string): { from?: number; to?: number } | undefined {
  if (value === undefined) return undefined;
  const num = (v: unknown, at: string): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
    throw ValidationError.single('InvalidType', at, 'This value should be a unix timestamp.');
  };
  if (typeof value === 'string') return { from: num(value, path) };
  if (Array.isArray(value)) throw ValidationError.single('InvalidType', path, 'This value should be a range.');
  return { from: num(value.from, `${path}.from`), to: num(value.to, `${path}.to`) };
}

export function inRange(t: number, range: { from?: number; to?: number } | undefined): boolean {
  if (!range) return true;
  return (range.from === undefined || t >= range.from) && (range.to === undefined || t <= range.to);
}

/** The comma-separated `with` parameter. */
export function queryWith(query: ParsedQs): Set<string> {
  const value = queryString(query.with);
  return new Set((value ?? '').split(',').map((s) => s.trim()).filter(Boolean));
}

export interface Paging {
  page: number;
  limit: number;
}

/** `page` (from 1) and `limit` (default 50; more than `maxLimit` is refused, as amoCRM documents 250 as the maximum). */
export function readPaging(query: ParsedQs, maxLimit = 250, defaultLimit = 50): Paging {
  const read = (key: 'page' | 'limit', fallback: number): number => {
    const raw = queryString(query[key]);
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < 1) throw ValidationError.single('InvalidType', key, 'This value should be a positive integer.');
    return Number(raw);
  };
  const page = read('page', 1);
  const limit = read('limit', defaultLimit);
  if (limit > maxLimit) {
    throw ValidationError.single('OutOfRange', 'limit', `This value should be ${maxLimit} or less.`);
  }
  return { page, limit };
}

/** `_links` of a page of a list: self, and next/prev when they exist. */
export function pageLinks(req: Request, page: number, limit: number, hasNext: boolean): Record<string, { href: string }> {
  const path = req.path;
  const href = (p: number): string => {
    const query = { ...req.query, page: String(p), limit: String(limit) };
    return `${baseUrl(req)}${req.baseUrl}${path}?${qs.stringify(query, { encodeValuesOnly: true })}`;
  };
  const links: Record<string, { href: string }> = { self: { href: href(page) } };
  if (hasNext) links.next = { href: href(page + 1) };
  if (page > 1) {
    links.first = { href: href(1) };
    links.prev = { href: href(page - 1) };
  }
  return links;
}

/**
 * Answers one page of a list, or 204 with no body when the page is empty: amoCRM answers an
 * empty list (or a page past the end) with `204 No Content`, not with `[]`.
 */
export function sendPage<T>(
  req: Request,
  res: Response,
  key: string,
  items: T[],
  paging: Paging,
  render: (item: T) => unknown,
): void {
  const start = (paging.page - 1) * paging.limit;
  const slice = items.slice(start, start + paging.limit);
  if (slice.length === 0) {
    sendHal(req, res, 204);
    return;
  }
  sendHal(req, res, 200, {
    _page: paging.page,
    _links: pageLinks(req, paging.page, paging.limit, start + paging.limit < items.length),
    _embedded: { [key]: slice.map(render) },
  });
}

export function notFound(what: string): ProblemError {
  return new ProblemError(404, `${what} not found`);
}

/** A positive integer path parameter, or undefined (the route then does not match). */
export function idParam(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}
