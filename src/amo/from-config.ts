import { type AmoConfig, amoBaseUrl } from '../config.js';
import type { Db } from '../db/connect.js';
import type { PeerCallSink } from '../db/peer-calls.js';
import type { ServiceHealth } from '../health/service-health.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { AmoClient } from './client.js';

/** The amoCRM client as the operator contract configures it (bridge and CLI alike). */
export function amoClientFromConfig(
  config: AmoConfig,
  deps: { db: Db; logger: Logger; metrics: Metrics; health?: ServiceHealth; calls?: PeerCallSink },
  tuning: { timeoutMs?: number; minRetryDelayMs?: number } = {},
): AmoClient {
  return AmoClient.create({
    baseUrl: amoBaseUrl(config),
    subdomain: config.AMO_SUBDOMAIN,
    auth: config.AMO_LONG_LIVED_TOKEN
      ? { kind: 'long-lived', token: config.AMO_LONG_LIVED_TOKEN }
      : {
          kind: 'oauth',
          // withAmoAuth guarantees these three when there is no long-lived token.
          clientId: config.AMO_CLIENT_ID ?? '',
          clientSecret: config.AMO_CLIENT_SECRET ?? '',
          redirectUri: config.AMO_REDIRECT_URI ?? '',
        },
    db: deps.db,
    rateLimitRps: config.AMO_RATE_LIMIT_RPS,
    timeoutMs: tuning.timeoutMs,
    minRetryDelayMs: tuning.minRetryDelayMs,
    logger: deps.logger,
    metrics: deps.metrics,
    health: deps.health,
    calls: deps.calls,
  });
}
