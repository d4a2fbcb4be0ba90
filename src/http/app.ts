import express, { type Express } from 'express';
import { type AdminUiDeps, adminUiRouter } from '../admin-ui/router.js';
import type { QuotaSources } from '../admin/quota.js';
import type { Db } from '../db/connect.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { problemErrorHandler, sendProblem } from './problem.js';
import { adminRouter } from './routes/admin/index.js';
import { amoWebhookRouter } from './routes/amocrm-webhook.js';
import { partnerWebhookRouter } from './routes/partner-webhook.js';
import { type WebviewDeps, webviewRouter } from '../webview/router.js';

export interface AppDeps {
  db: Db;
  logger: Logger;
  metrics: Metrics;
  partnerWebhookSecret: string;
  amoWebhookSecret: string;
  /** The configured amoCRM account; `id` once known. */
  amoAccount(): { id?: number; subdomain: string };
  /** Readiness beyond the database: mappings resolved, and what each outside service last answered. */
  readiness(): Promise<{ ready: boolean; checks: Record<string, string> }>;
  onWorkEnqueued(): void;
  /** How long amoCRM stage events wait to gather into one batch (default 2 s). */
  amoEventGatherMs?: number;
  /** What GET /admin/quota reads beside the database. */
  quota: QuotaSources;
  /** The admin page: mounted at /admin/ui when given. */
  adminUi?: AdminUiDeps;
  /** The webview (stage 3): mounted at /webview when given. */
  webview?: WebviewDeps;
}

/** The HTTP edge. Routes validate, authenticate and persist; the worker does the rest. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    let ready = true;
    try {
      await deps.db.kysely.selectFrom('kv').select('key').limit(1).execute();
      checks.database = 'ok';
    } catch (error) {
      ready = false;
      checks.database = `unreachable: ${(error as Error).message}`;
    }
    const more = await deps.readiness().catch((error: Error) => ({ ready: false, checks: { readiness: error.message } }));
    Object.assign(checks, more.checks);
    ready &&= more.ready;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });

  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  app.use(
    partnerWebhookRouter({
      db: deps.db,
      secret: deps.partnerWebhookSecret,
      logger: deps.logger,
      metrics: deps.metrics,
      onAccepted: deps.onWorkEnqueued,
    }),
  );
  app.use(
    amoWebhookRouter({
      db: deps.db,
      secret: deps.amoWebhookSecret,
      account: deps.amoAccount,
      logger: deps.logger,
      metrics: deps.metrics,
      onAccepted: deps.onWorkEnqueued,
      gatherMs: deps.amoEventGatherMs,
    }),
  );

  // Admin page: HTML under /admin/ui with its own sign-in, not-found and error pages.
  if (deps.adminUi) {
    app.use(adminUiRouter({ ...deps.adminUi, quota: deps.quota, db: deps.db, logger: deps.logger, onWorkEnqueued: deps.onWorkEnqueued }));
  }
  app.use(adminRouter({ db: deps.db, logger: deps.logger, onWorkEnqueued: deps.onWorkEnqueued, quota: deps.quota }));

  // Webview: HTML pages with their own not-found and error pages under /webview.
  if (deps.webview) {
    app.use(webviewRouter({ ...deps.webview, db: deps.db, logger: deps.logger, onWorkEnqueued: deps.onWorkEnqueued }));
  }

  app.use((_req, res) => sendProblem(res, 404, 'Not Found'));
  app.use(problemErrorHandler((error) => deps.logger.error('http.error', { error: String(error) })));
  return app;
}
