import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { orderTimeline } from '../../admin/order-timeline.js';
import { BadCursor, orderSearchSchema, searchOrders } from '../../admin/orders.js';
import { isOrderId, orderStatusSchema } from '../../partner/schema.js';
import { isUserPaused, pauseOrder, pauseUser, resumeOrder, resumeUser } from '../../sync/pause.js';
import type { AdminKit } from '../kit.js';
import { ADMIN_UI_PATH, takeAdminFlash } from '../session.js';
import { timelineLine } from '../timeline.js';

const ORDERS_PATH = `${ADMIN_UI_PATH}/orders`;
/** Orders on one page of the search. */
const PAGE_SIZE = 25;
const orderPath = (id: string) => `${ORDERS_PATH}/${encodeURIComponent(id)}`;
/** As the API's user routes take it. */
const userIdSchema = z.string().min(1).max(100);

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
    const flash = await takeAdminFlash(db, kit.sessionOf(req)!);
    const notice = flash?.kind === 'userPaused' ? t.order.userPaused(flash.id) : flash?.kind === 'userResumed' ? t.order.userResumed(flash.id) : undefined;
    const view = { form, statuses: orderStatusSchema.options, notice };
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
    const notices: Partial<Record<string, string>> = {
      paused: t.order.paused(id),
      resumed: t.order.resumed(id),
      userPaused: t.order.userPaused(order.user_id),
      userResumed: t.order.userResumed(order.user_id),
    };
    const forThis = flash && (flash.kind === 'userPaused' || flash.kind === 'userResumed' ? flash.id === order.user_id : flash.id === id);
    const notice = flash && forThis ? notices[flash.kind] : undefined;
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

  /** A user's pause (every order of theirs, new ones too), from one of their orders' page, which the form names. */
  for (const action of ['pause', 'resume'] as const) {
    router.post(
      `${ADMIN_UI_PATH}/users/:userId/${action}`,
      kit.readForm,
      kit.withSession,
      kit.requireSession,
      kit.requireCsrf,
      kit.requireScope('orders:write'),
      async (req: Request<{ userId: string }>, res) => {
        const userId = userIdSchema.safeParse(req.params.userId);
        if (!userId.success) return kit.notFound(req, res);
        const keyId = kit.sessionOf(req)!.keyId;
        const state = action === 'pause' ? await pauseUser(db.kysely, userId.data, keyId) : await resumeUser(db.kysely, userId.data, keyId);
        logger.info(action === 'pause' ? 'admin.user_paused' : 'admin.user_resumed', { userId: userId.data, keyId, via: 'admin_ui', orders: state.orders, resumed: state.resumed });
        if (state.resumed > 0) kit.deps.onWorkEnqueued();
        const order = (req.body as Record<string, unknown>).order;
        // Back to the order the form was on; without one, to the user's orders.
        const back = typeof order === 'string' && isOrderId(order) ? orderPath(order) : `${ORDERS_PATH}?${new URLSearchParams({ q: userId.data }).toString()}`;
        await kit.flashAndGo(req, res, { kind: action === 'pause' ? 'userPaused' : 'userResumed', id: userId.data }, back);
      },
    );
  }

  return router;
}
