import express, { type Router } from 'express';
import { readQuota } from '../../../admin/quota.js';
import type { AdminDeps } from './index.js';
import type { RequireScope } from './require-scope.js';

/** How much of amoCRM's and Company 1's patience the bridge is using. */
export function adminQuotaRouter(deps: AdminDeps, requireScope: RequireScope): Router {
  const router = express.Router();

  router.get('/admin/quota', requireScope('quota:read'), async (_req, res) => {
    res.json(await readQuota(deps.db.kysely, deps.quota));
  });

  return router;
}
