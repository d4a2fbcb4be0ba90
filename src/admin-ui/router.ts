import cookieParser from 'cookie-parser';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { type AdminUiRouterDeps, createAdminKit } from './kit.js';
import { deadRoutes } from './routes/dead.js';
import { ordersRoutes } from './routes/orders.js';
import { overviewRoutes } from './routes/overview.js';
import { signInRoutes } from './routes/sign-in.js';
import { ADMIN_UI_PATH } from './session.js';
import { adminStylesheet } from './views.js';
import { privatePageHeaders } from '../http/private-page-headers.js';

export type { AdminUiDeps, AdminUiRouterDeps } from './kit.js';

/**
 * The admin page at /admin/ui (issue #12): the admin API's operations for a person with a
 * browser. Sign-in with an API key (a form, then a session cookie), an overview of the
 * queue and the outside services, and the dead letters with replay. Server-rendered HTML
 * that works without JavaScript, in ADMIN_LOCALE (Russian by default); every form carries
 * a CSRF token, and every page and action needs the scope its API route needs.
 */

export function adminUiRouter(deps: AdminUiRouterDeps): Router {
  const kit = createAdminKit(deps);
  const { t } = kit;
  const stylesheet = adminStylesheet();
  const router = express.Router();

  router.use(ADMIN_UI_PATH, privatePageHeaders({ script: false }));
  // No secret: the session id is random and only looked up, never trusted as data.
  router.use(ADMIN_UI_PATH, cookieParser());

  router.get(`${ADMIN_UI_PATH}/static/admin.css`, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').type('text/css; charset=utf-8').send(stylesheet);
  });

  router.use(signInRoutes(kit));
  router.use(overviewRoutes(kit));
  router.use(deadRoutes(kit));
  router.use(ordersRoutes(kit));

  // --- the rest of /admin/ui --------------------------------------------------------------

  router.use(ADMIN_UI_PATH, kit.withSession, (req, res) => kit.notFound(req, res));

  router.use(ADMIN_UI_PATH, (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return kit.sendMessage(req, res, status, { heading: t.pages.badRequest, paragraphs: [t.pages.goBack] });
    }
    deps.logger.error('admin_ui.error', { path: req.path, error: String(error) });
    kit.sendMessage(req, res, 500, {
      heading: t.pages.serverError,
      paragraphs: [t.pages.later],
      link: kit.sessionOf(req) ? { href: ADMIN_UI_PATH, text: t.pages.toOverview } : undefined,
    });
  });

  return router;
}
