import type { Server } from 'node:http';
import type { AmoClient } from './amo/client.js';
import { amoClientFromConfig } from './amo/from-config.js';
import type { Config } from './config.js';
import type { Db } from './db/connect.js';
import { openDatabase } from './db/open.js';
import { PeerCallRecorder } from './db/peer-calls.js';
import { startIdleProbe, type IdleProbe } from './health/idle-probe.js';
import { ServiceHealth } from './health/service-health.js';
import { createApp } from './http/app.js';
import { closeServer } from './http/close-server.js';
import { INBOX_KEY_WINDOW_MS } from './inbox/dedupe-window.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { loadMappingsFile, MappingsError } from './mappings/load.js';
import { fetchAccountCatalog } from './mappings/account-catalog.js';
import { type Mappings, resolveMappings } from './mappings/resolve.js';
import { finalStatuses } from './mappings/schema.js';
import { PartnerClient } from './partner/client.js';
import { backoffDelay, type BackoffPolicy } from './queue/backoff.js';
import { readQueueDepth } from './queue/depth.js';
import { reclaimAllLeases } from './queue/finish.js';
import { Worker } from './queue/worker.js';
import { syncJobs } from './sync/jobs.js';
import { recordJobOutcome } from './sync/order-log.js';
import { orderSyncHandler } from './sync/order-sync.js';
import { partnerSweepHandler, schedulePartnerSweep } from './sync/partner-sweep.js';
import { reconcileHandler } from './sync/reconcile.js';
import { retentionJob } from './sync/retention-job.js';
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
  /** Waits between attempts to resolve the mappings while amoCRM refuses or fails (default 2 s doubling to 60 s). */
  resolveBackoff?: BackoffPolicy;
  /** A service idle this long gets one cheap read to keep its health current (default 60 s). */
  healthProbeMs?: number;
}

const RESOLVE_BACKOFF: BackoffPolicy = { baseMs: 2_000, maxMs: 60_000 };

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
  /**
   * Stops accepting requests and leasing jobs, lets requests and jobs under way finish
   * within `graceMs` (default 10 s), hands back the leases of jobs still running then, and
   * closes the database. Calling it again answers the same promise.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
}

/**
 * Assembles one bridge process: storage (migrated), clients, the HTTP edge and the
 * worker. The HTTP edge accepts webhooks from the first moment, even while amoCRM is
 * unreachable and the mappings are not yet resolved: work waits in the queue, nothing
 * is refused that could be kept.
 */
export async function createBridge(config: Config, logger: Logger, tuning: BridgeTuning = {}): Promise<Bridge> {
  const db = await openDatabase(config.DATABASE_URL, { schema: tuning.dbSchema });
  const metrics = createMetrics({ queueDepth: () => readQueueDepth(db.kysely, syncJobs.kinds) });
  if (db.dialect === 'sqlite') {
    // One process owns an SQLite file: whatever it held when it last died is free now,
    // with no need to wait for the leases to run out.
    const freed = await reclaimAllLeases(db.kysely);
    if (freed > 0) logger.info('queue.leases_reclaimed', { jobs: freed });
  }

  // What /readyz says of each service: fed by every call its client makes, never by /readyz.
  const amoHealth = new ServiceHealth('amocrm', { logger, metrics });
  const partnerHealth = new ServiceHealth('partner', { logger, metrics });
  // Every exchange with either service, for GET /admin/quota: buffered, written about once a second.
  const calls = new PeerCallRecorder({ db, logger });
  calls.start();
  const amo = amoClientFromConfig(
    config,
    { db, logger, metrics, health: amoHealth, calls },
    { timeoutMs: tuning.amoTimeoutMs, minRetryDelayMs: tuning.amoMinRetryDelayMs },
  );
  const partner = new PartnerClient({
    baseUrl: config.PARTNER_API_URL,
    token: config.PARTNER_API_TOKEN,
    timeoutMs: tuning.partnerTimeoutMs,
    metrics,
    health: partnerHealth,
    calls,
  });
  const probeMs = tuning.healthProbeMs ?? 60_000;
  // Company 1 is probed at once (nothing else calls it at start), amoCRM once the start-up
  // reads are done: until then they are its probe.
  const probes: IdleProbe[] = [startIdleProbe({ health: partnerHealth, probe: () => partner.probe(), intervalMs: probeMs, logger })];
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
    quota: { flush: () => calls.flush(), amoLimiterWaitMs: () => amo.limiterWaitMs() },
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
    adminUi: {
      locale: config.ADMIN_LOCALE ?? config.WEBVIEW_LOCALE,
      timeZone: file.webview.timeZone,
      jobKinds: syncJobs.kinds,
      // The same states /readyz describes.
      health: () => ({ amocrm: amoHealth.state, partner: partnerHealth.state, mappingsResolved: mappings !== undefined }),
    },
    // Webhooks can be accepted once the mappings are resolved, and they stay resolved
    // through later trouble with amoCRM; the services' states explain, they do not decide.
    readiness: () =>
      Promise.resolve({
        ready: mappings !== undefined,
        checks: {
          mappings: mappings ? 'resolved' : 'not resolved yet',
          amocrm: amoHealth.describe(),
          partner: partnerHealth.describe(),
        },
      }),
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
        // A refusal was logged once, with its fix, by the health tracker: retrying it is
        // no news. Other failures are worth a line per attempt.
        if (amoHealth.state.kind === 'unauthorized') logger.debug('mappings.resolve_failed', { attempt, error: String(error) });
        else logger.warn('mappings.resolve_failed', { attempt, error: String(error) });
        await new Promise((r) => setTimeout(r, backoffDelay(attempt, tuning.resolveBackoff ?? RESOLVE_BACKOFF)).unref());
      }
    }
    if (!stopping) probes.push(startIdleProbe({ health: amoHealth, probe: () => amo.probe(), intervalMs: probeMs, logger }));
    logger.info('mappings.resolved', {
      pipelineId: mappings.pipeline.id,
      initialStatusId: mappings.initialStatus.id,
      integrationStage: mappings.integrationStage,
    });
    if (tuning.worker !== false && !stopping) {
      const retention = retentionJob({
        db,
        logger,
        retentionMs: config.RETENTION * 1000,
        keyWindowMs: INBOX_KEY_WINDOW_MS,
        finalStatuses: finalStatuses(file.partner.transitions),
        intervalMs: config.RETENTION_INTERVAL * 1000,
        retryBaseMs: tuning.backoff?.baseMs,
      });
      worker = new Worker({
        db,
        logger,
        metrics,
        pollMs: tuning.pollMs,
        leaseMs: tuning.leaseMs ?? config.JOB_LEASE_SECONDS * 1000,
        backoff: tuning.backoff,
        onSettled: recordJobOutcome(db.kysely),
        handlers: [
          orderSyncHandler({ db, amo, partner, mappings, logger, settleMs: tuning.settleMs ?? config.AMO_SEARCH_SETTLE_SECONDS * 1000 }),
          reconcileHandler({ db, amo, partner, mappings, logger, gatherMs: tuning.reconcileGatherMs }),
          sweepHandler({ db, amo, mappings, logger, intervalMs: config.SWEEP_INTERVAL * 1000, retryBaseMs: tuning.backoff?.baseMs }),
          partnerSweepHandler({ db, partner, logger, intervalMs: config.PARTNER_SWEEP_INTERVAL * 1000, retryBaseMs: tuning.backoff?.baseMs }),
          retention.handler,
        ],
      });
      await retention.schedule();
      // Periodic jobs: created, re-timed to their interval, or turned off (src/queue/schedule.ts).
      // Stage 1 pushes nothing from amoCRM, so there is nothing to sweep for.
      await scheduleSweep(db, mappings.integrationStage >= 2 ? config.SWEEP_INTERVAL * 1000 : 0, undefined, logger);
      // Company 1's webhooks can be lost at every stage.
      await schedulePartnerSweep(db, config.PARTNER_SWEEP_INTERVAL * 1000, undefined, logger);
      if (!stopping) worker.start();
    }
    return mappings;
  })();
  ready.catch(() => undefined);

  let server: Server | undefined;
  let stopped: Promise<void> | undefined;
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
    stop({ graceMs = 10_000 } = {}) {
      stopping = true;
      stopped ??= (async () => {
        for (const probe of probes) probe.stop();
        await Promise.all([server && closeServer(server, graceMs), worker?.stop(graceMs)]);
        await calls.stop().catch(() => undefined);
        await db.close();
      })();
      return stopped;
    },
  };
}
