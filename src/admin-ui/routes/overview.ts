import express, { type Router } from 'express';
import { QUEUE_STATES, readQueueDepth } from '../../queue/depth.js';
import { oldestWaitingJob } from '../../queue/oldest-waiting.js';
import type { AdminKit } from '../kit.js';
import { queueOverviewOf } from '../queue-overview.js';
import { ADMIN_UI_PATH } from '../session.js';

/** The overview: the outside services as /readyz sees them, and the queue for a key with jobs:read. */
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
    kit.sendPage(res, 200, 'overview', kit.pageData(req, kit.t.overview.title, 'overview'), {
      queue,
      states: QUEUE_STATES,
      health: kit.deps.health(),
    });
  });

  return router;
}
