import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics of one bridge process. Each app instance owns a registry, so tests
 * that start several bridges in one process do not share counters.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'amobridge_' });
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
    jobsFinished: new Counter({
      name: 'amobridge_jobs_finished_total',
      help: 'Jobs finished by kind and result (done, retry, dead)',
      labelNames: ['kind', 'result'] as const,
      registers: [registry],
    }),
    jobsWaiting: new Gauge({
      name: 'amobridge_jobs_waiting',
      help: 'Jobs by status, sampled at scrape time',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Buckets a status code (or a transport failure) into the outcome label. */
export function outcomeOf(status: number | 'timeout' | 'network'): string {
  if (typeof status === 'string') return status;
  if (status === 429) return '429';
  return `${Math.floor(status / 100)}xx`;
}
