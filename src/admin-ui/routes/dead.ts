import express, { type Request, type Router } from 'express';
import { listDeadJobs, replayDeadJob } from '../../queue/dead-letter.js';
import type { AdminKit } from '../kit.js';
import { ADMIN_UI_PATH, takeAdminFlash } from '../session.js';

/** Dead letters shown on one page. */
const DEAD_LIMIT = 100;
const DEAD_PATH = `${ADMIN_UI_PATH}/dead`;

/** The dead letters (jobs:read) and their replay (jobs:replay), as the admin API's jobs routes. */
export function deadRoutes(kit: AdminKit): Router {
  const { db, logger } = kit.deps;
  const { t } = kit;
  const router = express.Router();

  router.get(DEAD_PATH, kit.withSession, kit.requireSession, kit.requireScope('jobs:read'), async (req, res) => {
    const session = kit.sessionOf(req)!;
    const flash = await takeAdminFlash(db, session);
    const jobs = await listDeadJobs(db.kysely, DEAD_LIMIT);
    const notice =
      flash?.kind === 'replayed' ? { ok: true, text: t.dead.replayed(flash.id) } : flash?.kind === 'notDead' ? { ok: false, text: t.dead.notDead(flash.id) } : undefined;
    kit.sendPage(res, 200, 'dead', kit.pageData(req, t.dead.title, 'dead'), {
      jobs,
      notice,
      canReplay: session.scopes.has('jobs:replay'),
      more: t.dead.shown(jobs.length, DEAD_LIMIT),
    });
  });

  router.post(
    `${DEAD_PATH}/:id/replay`,
    kit.readForm,
    kit.withSession,
    kit.requireSession,
    kit.requireCsrf,
    kit.requireScope('jobs:replay'),
    async (req: Request<{ id: string }>, res) => {
      if (!/^\d{1,15}$/.test(req.params.id)) return kit.notFound(req, res);
      const id = Number(req.params.id);
      if (!(await replayDeadJob(db.kysely, id))) return kit.flashAndGo(req, res, { kind: 'notDead', id: String(id) }, DEAD_PATH);
      logger.info('admin.job_replayed', { jobId: id, keyId: kit.sessionOf(req)!.keyId, via: 'admin_ui' });
      kit.deps.onWorkEnqueued();
      await kit.flashAndGo(req, res, { kind: 'replayed', id: String(id) }, DEAD_PATH);
    },
  );

  return router;
}
