import type { Server } from 'node:http';
import type { AmoClient } from './amo/client.js';
import { amoClientFromConfig } from './amo/from-config.js';
import type { Config } from './config.js';
import { connect, type Db } from './db/connect.js';
import { migrate } from './db/migrate.js';
import { createApp } from './http/app.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { loadMappingsFile, MappingsError } from './mappings/load.js';
import { fetchAccountCatalog } from './mappings/account-catalog.js';
import { type Mappings, resolveMappings } from './mappings/resolve.js';
import { PartnerClient } from './partner/client.js';
import type { BackoffPolicy } from './queue/backoff.js';
import { reclaimAllLeases } from './queue/finish.js';
import { Worker } from './queue/worker.js';
import { orderSyncHandler } from './sync/order-sync.js';
import { reconcileHandler } from './sync/reconcile.js';
import { scheduleSweep, sweepHandler } from './sync/sweep.js';

/** Knobs that are not part of the operator contract: tests and the demo turn them. */
export interface BridgeTuning {
  /** How long a create of unknown outcome sits before one empty search counts. */
  settleMs?: number;
  backoff?: BackoffPolicy;
  pollMs?: number;
  leaseMs?: number;
  amoTimeoutMs?: number;
  amoMinRetryDelayMs?: number;
  partnerTimeoutMs?: number;
  /** Start the worker (default true); `npm start -- --no-worker` runs HTTP only. */
  worker?: boolean;
  /** How long amoCRM stage events wait to gather into one batched read (default 2 s). */
  reconcileGatherMs?: number;
  /** PostgreSQL schema (tests isolate themselves). */
  dbSchema?: string;
}

export interface Bridge {
  config: Config;
  db: Db;
  amo: AmoClient;
  metrics: Metrics;
  app: ReturnType<typeof createApp>;
  worker: Worker | undefined;
  /** Resolves once the mappings are resolved against the account and the worker runs. */
  ready: Promise<Mappings>;
  /** Binds the HTTP edge; tests use the loopback default, `npm start` all interfaces. */
  listen(port?: number, host?: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Assembles one bridge process: storage (migrated), clients, the HTTP edge and the
 * worker. The HTTP edge accepts webhooks from the first moment, even while amoCRM is
 * unreachable and the mappings are not yet resolved: work waits in the queue, nothing
 * is refused that could be kept.
 */
export async function createBridge(config: Config, logger: Logger, tuning: BridgeTuning = {}): Promise<Bridge> {
  const metrics = createMetrics();
  const db = connect(config.DATABASE_URL, { schema: tuning.dbSchema });
  await migrate(db);
  if (db.dialect === 'sqlite') {
    // One process owns an SQLite file: whatever it held when it last died is free now,
    // with no need to wait for the leases to run out.
    const freed = await reclaimAllLeases(db.kysely);
    if (freed > 0) logger.info('queue.leases_reclaimed', { jobs: freed });
  }

  const amo = amoClientFromConfig(
    config,
    { db, logger, metrics },
    { timeoutMs: tuning.amoTimeoutMs, minRetryDelayMs: tuning.amoMinRetryDelayMs },
  );
  const partner = new PartnerClient({
    baseUrl: config.PARTNER_API_URL,
    token: config.PARTNER_API_TOKEN,
    timeoutMs: tuning.partnerTimeoutMs,
  });
  const file = loadMappingsFile(config.MAPPINGS_PATH);

  let mappings: Mappings | undefined;
  /** The account's id, learnt at start; amoCRM webhooks must come from this account. */
  let accountId: number | undefined;
  let worker: Worker | undefined;
  let stopping = false;

  const app = createApp({
    db,
    logger,
    metrics,
    partnerWebhookSecret: config.PARTNER_WEBHOOK_SECRET,
    amoWebhookSecret: config.AMO_WEBHOOK_SECRET,
    amoAccount: () => ({ subdomain: config.AMO_SUBDOMAIN, id: accountId }),
    onWorkEnqueued: () => worker?.wake(),
    amoEventGatherMs: tuning.reconcileGatherMs,
    // The webview reads the mappings file as loaded (services, transitions, stage): it
    // needs no amoCRM ids, so users can sign in even while amoCRM is unreachable.
    webview: {
      partner,
      mappings: file,
      auth: {
        secret: config.WEBVIEW_JWT_SECRET,
        issuer: config.WEBVIEW_JWT_ISSUER,
        audience: config.WEBVIEW_JWT_AUDIENCE,
        maxAgeSeconds: config.WEBVIEW_TOKEN_MAX_AGE,
      },
      sessionSecret: config.SESSION_SECRET,
      locale: config.WEBVIEW_LOCALE,
      orderLimit: config.WEBVIEW_ORDER_LIMIT,
    },
    readiness: async () => {
      const credentials = await amo.hasCredentials();
      return {
        ready: credentials && mappings !== undefined,
        checks: {
          amocrm_token: credentials ? 'ok' : 'missing: run `amobridge oauth <code>` or set AMO_LONG_LIVED_TOKEN',
          mappings: mappings ? 'resolved' : 'not resolved yet',
        },
      };
    },
  });

  const ready = (async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        const account = await amo.getAccount();
        if (account.subdomain !== config.AMO_SUBDOMAIN) {
          logger.warn('amocrm.account_subdomain_differs', { configured: config.AMO_SUBDOMAIN, actual: account.subdomain });
        }
        accountId = account.id;
        mappings = resolveMappings(file, await fetchAccountCatalog(amo));
        break;
      } catch (error) {
        if (error instanceof MappingsError || stopping) throw error;
        logger.warn('mappings.resolve_failed', { attempt, error: String(error) });
        await new Promise((r) => setTimeout(r, Math.min(60_000, 1000 * 2 ** attempt)).unref());
      }
    }
    logger.info('mappings.resolved', {
      pipelineId: mappings.pipeline.id,
      initialStatusId: mappings.initialStatus.id,
      integrationStage: mappings.integrationStage,
    });
    if (tuning.worker !== false && !stopping) {
      worker = new Worker({
        db,
        logger,
        metrics,
        pollMs: tuning.pollMs,
        leaseMs: tuning.leaseMs ?? config.JOB_LEASE_SECONDS * 1000,
        backoff: tuning.backoff,
        handlers: [
          orderSyncHandler({ db, amo, partner, mappings, logger, settleMs: tuning.settleMs ?? config.AMO_SEARCH_SETTLE_SECONDS * 1000 }),
          reconcileHandler({ db, amo, partner, mappings, logger, gatherMs: tuning.reconcileGatherMs }),
          sweepHandler({ db, amo, mappings, logger, intervalMs: config.SWEEP_INTERVAL * 1000 }),
        ],
      });
      // Stage 1 pushes nothing from amoCRM, so there is nothing to sweep for.
      if (mappings.integrationStage >= 2) await scheduleSweep(db, config.SWEEP_INTERVAL * 1000);
      worker.start();
    }
    return mappings;
  })();
  ready.catch(() => undefined);

  let server: Server | undefined;
  return {
    config,
    db,
    amo,
    metrics,
    app,
    get worker() {
      return worker;
    },
    ready,
    listen(port = config.PORT, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server = app.listen(port, host, (error?: Error) => {
          if (error) return reject(error);
          const address = server!.address();
          resolve(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : port}`);
        });
      });
    },
    async stop() {
      stopping = true;
      if (server) await new Promise<void>((r) => server!.close(() => r()));
      await worker?.stop();
      await db.close();
    },
  };
}
