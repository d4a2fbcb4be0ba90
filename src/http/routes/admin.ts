import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { type Scope, verifyApiKey } from '../../admin/api-keys.js';
import type { Db } from '../../db/connect.js';
import { JOB_STATUSES } from '../../db/schema.js';
import type { Logger } from '../../logger.js';
import { listDeadJobs, replayDeadJob } from '../../queue/dead-letter.js';
import { sendProblem } from '../problem.js';
import { isOrderId } from '../../partner/schema.js';

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

  const requireScope = (scope: Scope) => async (req: Request, res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const key = header.startsWith('Bearer ') ? header.slice('Bearer '.length).trim() : '';
    const caller = key ? await verifyApiKey(deps.db.kysely, key) : undefined;
    if (!caller) {
      res.set('WWW-Authenticate', 'Bearer realm="amobridge-admin"');
      return sendProblem(res, 401, 'Unauthorized', 'send an admin API key as a Bearer token');
    }
    if (!caller.scopes.has(scope)) return sendProblem(res, 403, 'Forbidden', `this key lacks the scope ${scope}`);
    res.locals.apiKey = caller.id;
    next();
  };

  router.get('/admin/jobs', requireScope('jobs:read'), async (req, res) => {
    const query = z
      .object({ status: z.enum(JOB_STATUSES).exclude(['done']).default('dead'), limit: z.coerce.number().int().min(1).max(500).default(100) })
      .safeParse(req.query);
    if (!query.success) return sendProblem(res, 400, 'Bad query', query.error.issues.map((i) => i.message).join('; '));
    const jobs =
      query.data.status === 'dead'
        ? await listDeadJobs(deps.db.kysely, query.data.limit)
        : await deps.db.kysely
            .selectFrom('jobs')
            .selectAll()
            .where('status', '=', query.data.status)
            .orderBy('id')
            .limit(query.data.limit)
            .execute();
    res.json({ items: jobs.map(view) });
  });

  router.post('/admin/jobs/:id/replay', requireScope('jobs:replay'), async (req, res) => {
    const id = Number(req.params.id);
    if (!Number.isInteger(id)) return sendProblem(res, 400, 'Bad job id');
    if (!(await replayDeadJob(deps.db.kysely, id))) return sendProblem(res, 404, 'Not Found', `job ${id} is not in the dead letter`);
    deps.logger.info('admin.job_replayed', { jobId: id, apiKey: res.locals.apiKey });
    deps.onWorkEnqueued();
    res.status(202).json({ status: 'queued', id });
  });

  router.get('/admin/orders/:id', requireScope('orders:read'), async (req, res) => {
    if (!isOrderId(req.params.id)) return sendProblem(res, 400, 'Bad order id', 'an order id is 1 to 100 of A-Z a-z 0-9 _ -');
    const order = await deps.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', req.params.id).executeTakeFirst();
    if (!order) return sendProblem(res, 404, 'Not Found', `order ${req.params.id} is not known to the bridge`);
    const jobs = await deps.db.kysely.selectFrom('jobs').selectAll().where('job_key', '=', `order:${order.order_id}`).orderBy('id').execute();
    res.json({
      orderId: order.order_id,
      userId: order.user_id,
      contactId: order.contact_id,
      dealId: order.deal_id,
      status: order.partner_status,
      origin: order.origin,
      closedByPartner: order.closed_by_partner === 1,
      note: order.note,
      jobs: jobs.map(view),
    });
  });

  return router;
}

function view(job: { id: number; kind: string; job_key: string; status: string; attempts: number; max_attempts: number; run_at: number; last_error: string | null; updated_at: number }) {
  return {
    id: job.id,
    kind: job.kind,
    key: job.job_key,
    status: job.status,
    attempts: job.attempts,
    maxAttempts: job.max_attempts,
    runAt: new Date(job.run_at).toISOString(),
    updatedAt: new Date(job.updated_at).toISOString(),
    lastError: job.last_error,
  };
}
