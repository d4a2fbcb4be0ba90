import express, { type Router } from 'express';
import type { Db } from '../../../db/connect.js';
import type { Logger } from '../../../logger.js';
import { adminJobsRouter } from './jobs.js';
import { adminOrdersRouter } from './orders.js';
import { scopeGuard } from './require-scope.js';

export interface AdminDeps {
  db: Db;
  logger: Logger;
  onWorkEnqueued(): void;
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

  return router;
}
