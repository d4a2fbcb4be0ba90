import express, { type Router } from 'express';
import { isOrderId } from '../../../partner/schema.js';
import { sendProblem } from '../../problem.js';
import type { AdminDeps } from './index.js';
import { jobView } from './jobs.js';
import type { RequireScope } from './require-scope.js';

/** Orders as the bridge knows them: their ids on both sides and their jobs. */
export function adminOrdersRouter(deps: AdminDeps, requireScope: RequireScope): Router {
  const router = express.Router();

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
      jobs: jobs.map(jobView),
    });
  });

  return router;
}
