import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueDepth } from './queue/depth.js';

export interface MetricSources {
  /** The queue as it stands, read at scrape time (src/queue/depth.ts). */
  queueDepth?: () => Promise<QueueDepth>;
}

/**
 * Prometheus metrics of one bridge process. Each app instance owns a registry, so tests
 * that start several bridges in one process do not share counters.
 */
export function createMetrics(sources: MetricSources = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'amobridge_' });
  const queue = onePerScrape(sources.queueDepth);
  return {
    registry,
    amoRequests: new Counter({
      name: 'amobridge_amo_requests_total',
      help: 'amoCRM API requests by endpoint and outcome (2xx, 4xx, 429, 5xx, timeout, network)',
      labelNames: ['endpoint', 'outcome'] as const,
      registers: [registry],
    }),
    amoRequestSeconds: new Histogram({
      name: 'amobridge_amo_request_seconds',
      help: 'amoCRM API request duration',
      labelNames: ['endpoint'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15],
      registers: [registry],
    }),
    amoRateLimitWaitSeconds: new Histogram({
      name: 'amobridge_amo_rate_limit_wait_seconds',
      help: 'Time a request waited for the shared rate limiter',
      buckets: [0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers: [registry],
    }),
    partnerRequests: new Counter({
      name: 'amobridge_partner_requests_total',
      help: 'Company 1 API requests by endpoint (method and path) and outcome (2xx, 4xx, 429, 5xx, timeout, network)',
      labelNames: ['endpoint', 'outcome'] as const,
      registers: [registry],
    }),
    dependencyUp: new Gauge({
      name: 'amobridge_dependency_up',
      help: 'Whether an outside service (amocrm, partner) last answered and accepted our credentials (1) or not (0); /readyz says why',
      labelNames: ['service'] as const,
      registers: [registry],
    }),
    webhooksReceived: new Counter({
      name: 'amobridge_webhooks_received_total',
      help: 'Inbound webhooks by source and result (accepted, duplicate, rejected)',
      labelNames: ['source', 'result'] as const,
      registers: [registry],
    }),
    webhooksPerCommit: new Histogram({
      name: 'amobridge_webhooks_per_commit',
      help: 'Partner webhooks written by one accept transaction (group commit); _count is the number of commits',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    jobsFinished: new Counter({
      name: 'amobridge_jobs_finished_total',
      help: 'Jobs finished by kind and result (done, retry, dead, abandoned)',
      labelNames: ['kind', 'result'] as const,
      registers: [registry],
    }),
    queueDepth: new Gauge({
      name: 'amobridge_queue_depth',
      help: 'Jobs by kind and state (waiting, running, retrying, dead), read at scrape time',
      labelNames: ['kind', 'state'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const { kind, state, jobs } of (await queue())?.depth ?? []) this.set({ kind, state }, jobs);
      },
    }),
    queueOldestWaitingSeconds: new Gauge({
      name: 'amobridge_queue_oldest_waiting_seconds',
      help: 'Seconds the oldest due waiting job of each kind has waited, read at scrape time',
      labelNames: ['kind'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        for (const { kind, seconds } of (await queue())?.oldestWaitingSeconds ?? []) this.set({ kind }, seconds);
      },
    }),
  };
}

/**
 * The registry collects every metric at once, so the gauges fed by one query share one
 * read per scrape. A failed read leaves them without samples (an absent series is
 * visible, a stale one would not be); /readyz reports the database.
 */
function onePerScrape<T>(read: (() => Promise<T>) | undefined): () => Promise<T | undefined> {
  let pending: Promise<T | undefined> | undefined;
  return () => {
    if (!read) return Promise.resolve(undefined);
    pending ??= read()
      .catch(() => undefined)
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Buckets a status code (or a transport failure) into the outcome label. */
export function outcomeOf(status: number | 'timeout' | 'network'): string {
  if (typeof status === 'string') return status;
  if (status === 429) return '429';
  return `${Math.floor(status / 100)}xx`;
}
