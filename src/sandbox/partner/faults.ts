import { setTimeout as delay } from 'node:timers/promises';
import type { RequestHandler } from 'express';
import type { Order } from '../../partner/schema.js';

/** Knobs a test turns to see how the bridge copes with a misbehaving Company 1. */
export interface PartnerFaults {
  /** Added before every API answer. */
  latencyMs: number;
  /** Share (0..1) of API requests answered 500 before anything is applied. */
  errorRate: number;
  /** Every API request is answered 503 with Retry-After. */
  outage: boolean;
  /** Requests are accepted and never answered (the client must time out). */
  hang: boolean;
  /**
   * Every write (POST, PATCH) is refused with this status and an answer that echoes the
   * order, customer and all, as order systems often do: what the bridge keeps of such
   * an answer (logs, jobs.last_error) must not keep the customer. Null: off.
   */
  refuseWrites: 409 | 422 | null;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** The query string without '?', when there was one. */
  query?: string;
  /** 0 when no answer was sent (hang, client gave up). */
  status: number;
  idempotencyKey?: string;
  body?: unknown;
}

export interface PartnerStats {
  requests: RecordedRequest[];
  count(filter?: { method?: string; pathPrefix?: string }): number;
  reset(): void;
}

export function createFaults(): PartnerFaults {
  return { latencyMs: 0, errorRate: 0, outage: false, hang: false, refuseWrites: null };
}

export function createStats(): PartnerStats {
  const stats: PartnerStats = {
    requests: [],
    count(filter = {}) {
      return stats.requests.filter(
        (r) =>
          (filter.method === undefined || r.method === filter.method.toUpperCase()) &&
          (filter.pathPrefix === undefined || r.path.startsWith(filter.pathPrefix)),
      ).length;
    },
    reset() {
      stats.requests.length = 0;
    },
  };
  return stats;
}

/** Records each request once, when it is answered or abandoned; the path excludes the query, kept apart. */
export function recordRequests(stats: PartnerStats): RequestHandler {
  return (req, res, next) => {
    let recorded = false;
    const record = () => {
      if (recorded) return;
      recorded = true;
      const entry: RecordedRequest = {
        method: req.method,
        path: req.path,
        status: res.headersSent ? res.statusCode : 0,
      };
      const query = req.originalUrl.split('?')[1];
      if (query) entry.query = query;
      const key = req.get('idempotency-key');
      if (key !== undefined) entry.idempotencyKey = key;
      if (req.body !== undefined) entry.body = req.body as unknown;
      stats.requests.push(entry);
    };
    res.on('finish', record);
    res.on('close', record);
    next();
  };
}

/**
 * Applied before authentication and handlers, so a faulted request changes nothing.
 * `orderOf` finds a stored order for the echo of a refused PATCH.
 */
export function injectFaults(faults: PartnerFaults, orderOf: (id: string) => Order | undefined): RequestHandler {
  return async (req, res, next) => {
    if (faults.latencyMs > 0) await delay(faults.latencyMs);
    if (faults.hang) return; // never answered; close() drops the connection
    if (faults.outage) {
      res.status(503).set('Retry-After', '1').json({ error: 'service unavailable (simulated outage)' });
      return;
    }
    if (faults.errorRate > 0 && Math.random() < faults.errorRate) {
      res.status(500).json({ error: 'internal error (simulated)' });
      return;
    }
    if (faults.refuseWrites !== null && (req.method === 'POST' || req.method === 'PATCH')) {
      const id = /^\/orders\/([^/]+)$/.exec(req.path)?.[1];
      const order = (id !== undefined ? orderOf(decodeURIComponent(id)) : undefined) ?? (req.body as unknown);
      const echo = { error: 'order refused (simulated)', ...(order && typeof order === 'object' && 'status' in order ? { currentStatus: order.status } : {}), order };
      res.status(faults.refuseWrites).json(echo);
      return;
    }
    next();
  };
}
