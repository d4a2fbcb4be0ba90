import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { HealthSignal, ServiceHealth } from '../health/service-health.js';
import { HttpError, PermanentError, TransportError, parseRetryAfter } from '../lib/http-error.js';
import { callOutcomeOf, type PeerCallSink } from '../db/peer-calls.js';
import { outcomeOf, type Metrics } from '../metrics.js';
import {
  changedOrdersQuerySchema,
  conflictSchema,
  isOrderId,
  orderListSchema,
  orderPageSchema,
  orderSchema,
  type CreateOrderRequest,
  type Order,
  type OrderPage,
  type OrderPatch,
  type OrderStatus,
} from './schema.js';

/**
 * Client of the Company 1 integration API (docs/contracts.md, "Company 1 integration API").
 * This is the one place to change if Company 1's real API differs from the contract.
 *
 * It never retries: the job queue owns retries (with backoff and the dead letter), and a
 * retry here would multiply attempts and hide failures from it. Errors are classified
 * for the queue: HttpError (non-2xx; body kept raw so a 409 can be parsed by the
 * caller, its message carrying only a scrubbed excerpt), TransportError (no answer at
 * all), PartnerResponseError (2xx that breaks the contract; permanent, a person must look).
 */

export interface PartnerClientOptions {
  baseUrl: string;
  token: string;
  /** Per request, covering the whole exchange including the body; default 10000. */
  timeoutMs?: number;
  /** Injectable for tests; defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Counts every request in amobridge_partner_requests_total. */
  metrics?: Metrics;
  /** Told the outcome of every request (readiness). */
  health?: ServiceHealth;
  /** Told of every exchange, for GET /admin/quota. */
  calls?: PeerCallSink;
}

/** The user whose orders a health probe lists: reserved, so the answer is an empty list. */
export const PROBE_USER_ID = 'amobridge-health-probe';

/** What one answer (or none, with the reason) says about Company 1's health. */
export function partnerSignal(outcome: number | 'timeout' | 'network', reason = ''): HealthSignal {
  if (typeof outcome !== 'number') return { kind: 'unreachable', reason };
  if (outcome >= 500) return { kind: 'unreachable', reason: `answered ${outcome}` };
  if (outcome === 401 || outcome === 403) {
    return { kind: 'unauthorized', fix: 'PARTNER_API_TOKEN was refused by Company 1: set the token Company 1 issued for the bridge' };
  }
  if (outcome === 408 || outcome === 429) return { kind: 'reachable' };
  // Any other answer (a 404 or 409 included) got past Company 1's authentication.
  return { kind: 'ok' };
}

/** A 2xx answer that is not what the contract promises. Retrying will not fix it. */
export class PartnerResponseError extends PermanentError {
  override name = 'PartnerResponseError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    reason: string,
  ) {
    super(`partner ${method} ${path} answered ${status} with an unexpected body: ${reason}`);
  }
}

export class PartnerClient {
  private readonly baseUrl: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly fetchFn: typeof fetch;
  private readonly metrics: Metrics | undefined;
  private readonly health: ServiceHealth | undefined;
  private readonly calls: PeerCallSink | undefined;

  constructor(options: PartnerClientOptions) {
    // A trailing slash makes `new URL('orders', base)` keep any path prefix of the base.
    this.baseUrl = options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`;
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    // Wrapped so a bare global fetch is never called with a foreign `this`.
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.metrics = options.metrics;
    this.health = options.health;
    this.calls = options.calls;
  }

  async getOrder(id: string): Promise<Order> {
    return this.request('GET', orderPath(id), '/orders/:id', orderSchema);
  }

  async listOrders(userId: string): Promise<Order[]> {
    const query = new URLSearchParams({ userId }).toString();
    const list = await this.request('GET', `/orders?${query}`, '/orders', orderListSchema);
    return list.items;
  }

  /**
   * One page of the orders changed at or after `since`, oldest change first; pass the
   * page's nextCursor back (with the same `since`) for the next, until it is null.
   */
  async listOrdersChangedSince(params: { since: Date; limit?: number; cursor?: string }): Promise<OrderPage> {
    const query = changedOrdersQuerySchema.parse({ updatedSince: params.since.toISOString(), limit: params.limit, cursor: params.cursor });
    const search = new URLSearchParams({ updatedSince: query.updatedSince, limit: String(query.limit) });
    if (query.cursor !== undefined) search.set('cursor', query.cursor);
    return this.request('GET', `/orders?${search.toString()}`, '/orders?updatedSince', orderPageSchema);
  }

  /** A harmless read (the orders of a reserved user) that tells whether Company 1 answers and accepts our token. */
  async probe(): Promise<void> {
    await this.listOrders(PROBE_USER_ID);
  }

  createOrder(input: CreateOrderRequest, idempotencyKey: string): Promise<Order> {
    return this.request('POST', '/orders', '/orders', orderSchema, { body: input, idempotencyKey });
  }

  async patchOrder(id: string, patch: OrderPatch, idempotencyKey: string): Promise<Order> {
    return this.request('PATCH', orderPath(id), '/orders/:id', orderSchema, {
      body: patch,
      idempotencyKey,
    });
  }

  /** `route` is the path without ids or query, the metric's endpoint label after the method. */
  private async request<S extends z.ZodType>(
    method: string,
    path: string,
    route: string,
    schema: S,
    options: { body?: unknown; idempotencyKey?: string } = {},
  ): Promise<z.infer<S>> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.token}`,
      Accept: 'application/json',
    };
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    if (options.idempotencyKey !== undefined) {
      if (!options.idempotencyKey) throw new TypeError('idempotencyKey must not be empty');
      headers['Idempotency-Key'] = headerSafeKey(options.idempotencyKey);
    }
    const url = new URL(path.replace(/^\//, ''), this.baseUrl);

    // One signal for headers and body: a server that sends headers and then stalls
    // must time out too, not hang the worker.
    const signal = AbortSignal.timeout(this.timeoutMs);
    const started = performance.now();
    let status: number;
    let text: string;
    let retryAfter: string | null;
    try {
      const response = await this.fetchFn(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal,
      });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      text = await response.text();
    } catch (error) {
      const failure = new TransportError('partner', method, path, describeTransportFailure(error, this.timeoutMs));
      this.observe(method, route, isTimeout(error) ? 'timeout' : 'network', started, failure.reason);
      throw failure;
    }
    this.observe(method, route, status, started);

    if (status < 200 || status > 299) {
      throw new HttpError('partner', method, path, status, text, parseRetryAfter(retryAfter));
    }

    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new PartnerResponseError(method, path, status, 'not JSON');
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issues = parsed.error.issues
        .slice(0, 5)
        .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
        .join('; ');
      throw new PartnerResponseError(method, path, status, issues);
    }
    return parsed.data;
  }

  private observe(method: string, route: string, outcome: number | 'timeout' | 'network', started: number, reason?: string): void {
    this.metrics?.partnerRequests.inc({ endpoint: `${method} ${route}`, outcome: outcomeOf(outcome) });
    // The route keeps its query's name: listing a user's orders and the sweep's changes differ.
    this.calls?.record({ peer: 'partner', endpoint: `${method} ${route.replace(/:id/g, '{id}')}`, outcome: callOutcomeOf(outcome), durationMs: performance.now() - started });
    this.health?.record(partnerSignal(outcome, reason));
  }
}

/**
 * A key as an HTTP header value can carry it: fetch refuses anything beyond Latin-1, and a
 * key made of a step's values (a Russian subscription status, say) would fail every
 * attempt. Such a key goes as its SHA-256, the same for the same key, so it still dedupes.
 */
export function headerSafeKey(key: string): string {
  return /^[\x21-\x7e]+$/.test(key) ? key : `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** `/orders/{id}`; an id that is not one (`..` would resolve to `/`) is never sent. */
function orderPath(id: string): string {
  if (!isOrderId(id)) throw new InvalidOrderIdError(id);
  return `/orders/${id}`;
}

/** A caller passed something that is not an order id: a bug or unchecked input, never retried. */
export class InvalidOrderIdError extends PermanentError {
  override name = 'InvalidOrderIdError';
  constructor(id: string) {
    super(`not an order id: ${JSON.stringify(id.slice(0, 120))}`);
  }
}

/**
 * The body of a 409 (a status transition the order's current status does not allow),
 * or undefined when the error is not such a conflict. The caller decides what a
 * conflict means (often: re-read the order and reconcile from its current status).
 */
export function parseConflict(
  error: HttpError,
): { error: string; currentStatus: OrderStatus } | undefined {
  if (error.status !== 409) return undefined;
  try {
    const parsed = conflictSchema.safeParse(JSON.parse(error.body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.name === 'TimeoutError';
}

function describeTransportFailure(error: unknown, timeoutMs: number): string {
  if (error instanceof Error) {
    if (isTimeout(error)) return `no answer within ${timeoutMs} ms`;
    // undici puts the useful part (ECONNREFUSED, ECONNRESET…) in `cause`.
    const cause = (error as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) return `${error.message}: ${cause.message}`;
    return error.message;
  }
  return String(error);
}
