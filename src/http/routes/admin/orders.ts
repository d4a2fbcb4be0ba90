import express, { type Response, type Router } from 'express';
import { z } from 'zod';
import { orderTimeline } from '../../../admin/order-timeline.js';
import { BadCursor, orderSearchSchema, searchOrders } from '../../../admin/orders.js';
import { isOrderId } from '../../../partner/schema.js';
import { isOrderPaused, pauseOrder, pauseUser, resumeOrder, resumeUser } from '../../../sync/pause.js';
import { sendProblem } from '../../problem.js';
import type { AdminDeps } from './index.js';
import { jobView } from './jobs.js';
import type { RequireScope } from './require-scope.js';

const userIdSchema = z.string().min(1).max(100);

const badOrderId = (res: Response) => sendProblem(res, 400, 'Bad order id', 'an order id is 1 to 100 of A-Z a-z 0-9 _ -');
const unknownOrder = (res: Response, id: string) => sendProblem(res, 404, 'Not Found', `order ${id} is not known to the bridge`);

/** Orders as the bridge knows them: search, one order with its jobs and timeline, pause and resume. */
export function adminOrdersRouter(deps: AdminDeps, requireScope: RequireScope): Router {
  const router = express.Router();

  router.get('/admin/orders', requireScope('orders:read'), async (req, res) => {
    const query = orderSearchSchema.safeParse(req.query);
    if (!query.success) {
      return sendProblem(res, 400, 'Bad query', query.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    }
    try {
      res.json(await searchOrders(deps.db.kysely, query.data));
    } catch (error) {
      if (error instanceof BadCursor) return sendProblem(res, 400, 'Bad cursor', error.message);
      throw error;
    }
  });

  router.get('/admin/orders/:id', requireScope('orders:read'), async (req, res) => {
    if (!isOrderId(req.params.id)) return badOrderId(res);
    const order = await deps.db.kysely.selectFrom('orders').selectAll().where('order_id', '=', req.params.id).executeTakeFirst();
    if (!order) return unknownOrder(res, req.params.id);
    const jobs = await deps.db.kysely.selectFrom('jobs').selectAll().where('job_key', '=', `order:${order.order_id}`).orderBy('id').execute();
    res.json({
      orderId: order.order_id,
      userId: order.user_id,
      contactId: order.contact_id,
      dealId: order.deal_id,
      status: order.partner_status,
      origin: order.origin,
      closedByPartner: order.closed_by_partner === 1,
      paused: (await isOrderPaused(deps.db.kysely, order.order_id)) === true,
      note: order.note,
      jobs: jobs.map(jobView),
      timeline: await orderTimeline(deps.db.kysely, order),
    });
  });

  router.post('/admin/orders/:id/pause', requireScope('orders:write'), async (req, res) => {
    if (!isOrderId(req.params.id)) return badOrderId(res);
    const state = await pauseOrder(deps.db.kysely, req.params.id, keyOf(res));
    if (!state) return unknownOrder(res, req.params.id);
    deps.logger.info('admin.order_paused', { orderId: state.orderId, keyId: keyOf(res) });
    res.json({ ...state, paused: true });
  });

  router.post('/admin/orders/:id/resume', requireScope('orders:write'), async (req, res) => {
    if (!isOrderId(req.params.id)) return badOrderId(res);
    const state = await resumeOrder(deps.db.kysely, req.params.id, keyOf(res));
    if (!state) return unknownOrder(res, req.params.id);
    deps.logger.info('admin.order_resumed', { orderId: state.orderId, keyId: keyOf(res), queued: state.queued });
    if (state.queued.length > 0) deps.onWorkEnqueued();
    res.json({ ...state, paused: state.userPaused });
  });

  router.post('/admin/users/:userId/pause', requireScope('orders:write'), async (req, res) => {
    const userId = userIdSchema.safeParse(req.params.userId);
    if (!userId.success) return sendProblem(res, 400, 'Bad user id', 'a user id is 1 to 100 characters');
    const state = await pauseUser(deps.db.kysely, userId.data, keyOf(res));
    deps.logger.info('admin.user_paused', { userId: state.userId, keyId: keyOf(res), orders: state.orders });
    res.json(state);
  });

  router.post('/admin/users/:userId/resume', requireScope('orders:write'), async (req, res) => {
    const userId = userIdSchema.safeParse(req.params.userId);
    if (!userId.success) return sendProblem(res, 400, 'Bad user id', 'a user id is 1 to 100 characters');
    const state = await resumeUser(deps.db.kysely, userId.data, keyOf(res));
    deps.logger.info('admin.user_resumed', { userId: state.userId, keyId: keyOf(res), resumed: state.resumed });
    if (state.resumed > 0) deps.onWorkEnqueued();
    res.json(state);
  });

  return router;
}

/** The caller's key id, left by the scope guard. */
const keyOf = (res: Response): string => String(res.locals.apiKey);
