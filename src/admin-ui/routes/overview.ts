import express, { type Router } from 'express';
import { readQuota } from '../../admin/quota.js';
import { QUEUE_STATES, readQueueDepth } from '../../queue/depth.js';
import { oldestWaitingJob } from '../../queue/oldest-waiting.js';
import type { AdminKit } from '../kit.js';
import { queueOverviewOf } from '../queue-overview.js';
import { ADMIN_UI_PATH } from '../session.js';

/** The overview: the outside services as /readyz sees them, the queue (jobs:read) and today's calls (quota:read). */
export function overviewRoutes(kit: AdminKit): Router {
  const { db, jobKinds } = kit.deps;
  const router = express.Router();

  router.get([ADMIN_UI_PATH, `${ADMIN_UI_PATH}/`], kit.withSession, kit.requireSession, async (req, res) => {
    const session = kit.sessionOf(req)!;
    const now = Date.now();
    // The queue needs the scope its API needs (jobs:read); the services' health is what /readyz shows anyone.
    const queue = session.scopes.has('jobs:read')
      ? queueOverviewOf(await readQueueDepth(db.kysely, jobKinds, now), await oldestWaitingJob(db.kysely, now), now)
      : undefined;
    // Today's calls to amoCRM and Company 1, as GET /admin/quota reports them (quota:read).
    const quota = session.scopes.has('quota:read') && kit.deps.quota ? await readQuota(db.kysely, kit.deps.quota, now) : undefined;
    kit.sendPage(res, 200, 'overview', kit.pageData(req, kit.t.overview.title, 'overview'), {
      queue,
      quota,
      canQuota: session.scopes.has('quota:read'),
      states: QUEUE_STATES,
      health: kit.deps.health(),
    });
  });

  return router;
}
