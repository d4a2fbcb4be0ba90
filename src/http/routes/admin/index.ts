import express, { type Router } from 'express';
import type { QuotaSources } from '../../../admin/quota.js';
import type { Db } from '../../../db/connect.js';
import type { Logger } from '../../../logger.js';
import { adminContactsRouter } from './contacts.js';
import { adminJobsRouter } from './jobs.js';
import { adminOrdersRouter } from './orders.js';
import { adminQuotaRouter } from './quota.js';
import { scopeGuard } from './require-scope.js';

export interface AdminDeps {
  db: Db;
  logger: Logger;
  onWorkEnqueued(): void;
  /** What GET /admin/quota reads beside peer_calls. */
  quota: QuotaSources;
}

/**
 * /admin: what a person needs when something is stuck. Every route names the scope it
 * needs; a key without it gets 403, no key or a bad one 401.
 */
export function adminRouter(deps: AdminDeps): Router {
  const router = express.Router();

  const requireScope = scopeGuard(deps.db);

  router.use(adminJobsRouter(deps, requireScope));
  router.use(adminOrdersRouter(deps, requireScope));
  router.use(adminContactsRouter(deps, requireScope));
  router.use(adminQuotaRouter(deps, requireScope));

  return router;
}
