import express, { type Request, type Response, type Router } from 'express';
import { orderTimeline } from '../../admin/order-timeline.js';
import { BadCursor, orderSearchSchema, searchOrders } from '../../admin/orders.js';
import { isOrderId, orderStatusSchema } from '../../partner/schema.js';
import { isUserPaused, pauseOrder, resumeOrder } from '../../sync/pause.js';
import type { AdminKit } from '../kit.js';
import { ADMIN_UI_PATH, takeAdminFlash } from '../session.js';
import { timelineLine } from '../timeline.js';

const ORDERS_PATH = `${ADMIN_UI_PATH}/orders`;
/** Orders on one page of the search. */
const PAGE_SIZE = 25;
const orderPath = (id: string) => `${ORDERS_PATH}/${encodeURIComponent(id)}`;

/**
 * Orders (orders:read): the search with its pages, an order with its jobs and timeline;
 * pause and resume (orders:write). The same functions as the admin API's order routes.
 */
export function ordersRoutes(kit: AdminKit): Router {
  const { db, logger } = kit.deps;
  const { t } = kit;
  const router = express.Router();

  router.get(ORDERS_PATH, kit.withSession, kit.requireSession, kit.requireScope('orders:read'), async (req, res) => {
    // An empty field is no filter: the form sends every field.
    const given = Object.fromEntries(Object.entries(req.query).filter(([, v]) => typeof v === 'string' && v.trim() !== ''));
    const form = { q: typeof given.q === 'string' ? given.q : '', status: typeof given.status === 'string' ? given.status : '' };
    const page = kit.pageData(req, t.orders.title, 'orders');
    const view = { form, statuses: orderStatusSchema.options };
    const search = orderSearchSchema.safeParse({ q: given.q, status: given.status, cursor: given.cursor, limit: PAGE_SIZE });
    if (!search.success) return kit.sendPage(res, 400, 'orders', page, { ...view, error: t.orders.badQuery });
    try {
      const result = await searchOrders(db.kysely, search.data);
      const query = (extra: Record<string, string>) => new URLSearchParams({ ...(form.q ? { q: form.q } : {}), ...(form.status ? { status: form.status } : {}), ...extra }).toString();
      kit.sendPage(res, 200, 'orders', page, {
        ...view,
        items: result.items,
        next: result.nextCursor ? `${ORDERS_PATH}?${query({ cursor: result.nextCursor })}` : undefined,
        first: search.data.cursor ? `${ORDERS_PATH}?${query({})}` : undefined,
      });
    } catch (error) {
      if (error instanceof BadCursor) return kit.sendPage(res, 400, 'orders', page, { ...view, error: t.orders.badQuery });
      throw error;
    }
  });

  const orderNotFound = (req: Request, res: Response, id: string) =>
    kit.sendMessage(req, res, 404, { heading: t.order.notFound, paragraphs: [t.order.notFoundText(id)], link: { href: ORDERS_PATH, text: t.order.back } });

  router.get(`${ORDERS_PATH}/:id`, kit.withSession, kit.requireSession, kit.requireScope('orders:read'), async (req: Request<{ id: string }>, res) => {
    const id = req.params.id;
    if (!isOrderId(id)) return orderNotFound(req, res, id);
    const order = await db.kysely.selectFrom('orders').selectAll().where('order_id', '=', id).executeTakeFirst();
    if (!order) return orderNotFound(req, res, id);
    const session = kit.sessionOf(req)!;
    const flash = await takeAdminFlash(db, session);
    // What GET /admin/orders/:id answers: the order's jobs and its timeline, oldest first.
    const [jobs, userPaused, timeline] = await Promise.all([
      db.kysely.selectFrom('jobs').selectAll().where('job_key', '=', `order:${id}`).orderBy('id').execute(),
      isUserPaused(db.kysely, order.user_id),
      orderTimeline(db.kysely, order),
    ]);
    const notice =
      flash?.kind === 'paused' && flash.id === id ? t.order.paused(id) : flash?.kind === 'resumed' && flash.id === id ? t.order.resumed(id) : undefined;
    kit.sendPage(res, 200, 'order', kit.pageData(req, t.order.title(id), 'orders'), {
      order,
      jobs,
      timeline: timeline.map((entry) => timelineLine(entry, t)),
      orderPaused: order.paused_at !== null,
      userPaused,
      notice,
      canWrite: session.scopes.has('orders:write'),
    });
  });

  for (const action of ['pause', 'resume'] as const) {
    router.post(
      `${ORDERS_PATH}/:id/${action}`,
      kit.readForm,
      kit.withSession,
      kit.requireSession,
      kit.requireCsrf,
      kit.requireScope('orders:write'),
      async (req: Request<{ id: string }>, res) => {
        const id = req.params.id;
        if (!isOrderId(id)) return orderNotFound(req, res, id);
        const keyId = kit.sessionOf(req)!.keyId;
        const state = action === 'pause' ? await pauseOrder(db.kysely, id, keyId) : await resumeOrder(db.kysely, id, keyId);
        if (!state) return orderNotFound(req, res, id);
        logger.info(action === 'pause' ? 'admin.order_paused' : 'admin.order_resumed', { orderId: id, keyId, via: 'admin_ui', queued: state.queued });
        if (state.queued.length > 0) kit.deps.onWorkEnqueued();
        await kit.flashAndGo(req, res, { kind: action === 'pause' ? 'paused' : 'resumed', id }, orderPath(id));
      },
    );
  }

  return router;
}
