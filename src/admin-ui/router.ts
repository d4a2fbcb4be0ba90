import cookieParser from 'cookie-parser';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { type Scope, verifyApiKey } from '../admin/api-keys.js';
import type { Db } from '../db/connect.js';
import type { HealthState } from '../health/service-health.js';
import type { Logger } from '../logger.js';
import { listDeadJobs, replayDeadJob } from '../queue/dead-letter.js';
import { QUEUE_STATES, readQueueDepth } from '../queue/depth.js';
import { oldestWaitingJob } from '../queue/oldest-waiting.js';
import type { Locale } from '../webview/messages/index.js';
import { createAdminFormat } from './format.js';
import { adminMessagesFor } from './messages/index.js';
import { queueOverviewOf } from './overview.js';
import {
  ADMIN_SESSION_COOKIE,
  ADMIN_UI_PATH,
  adminCookieOptions,
  type AdminSession,
  cookieOf,
  endAdminSession,
  type Flash,
  loadAdminSession,
  newToken,
  sameToken,
  setAdminFlash,
  startAdminSession,
  takeAdminFlash,
} from './session.js';
import { type AdminPageData, adminStylesheet, createAdminRenderer } from './views.js';

/**
 * The admin page at /admin/ui (issue #12): the admin API's operations for a person with a
 * browser. Sign-in with an API key (a form, then a session cookie), an overview of the
 * queue and the outside services, and the dead letters with replay. Server-rendered HTML
 * that works without JavaScript, in ADMIN_LOCALE (Russian by default); every form carries
 * a CSRF token, and every page and action needs the scope its API route needs.
 */

export interface AdminUiDeps {
  /** ADMIN_LOCALE, else WEBVIEW_LOCALE. */
  locale: Locale;
  /** Where times are shown (the mappings file's webview time zone). */
  timeZone: string;
  /** The job kinds the queue knows, so that an idle kind still shows as 0. */
  jobKinds: readonly string[];
  /** What /readyz says of the outside services, as states. */
  health(): { amocrm: HealthState; partner: HealthState; mappingsResolved: boolean };
}

export interface AdminUiRouterDeps extends AdminUiDeps {
  db: Db;
  logger: Logger;
  onWorkEnqueued(): void;
}

/** The sign-in form's CSRF cookie (double submit: there is no session yet to keep a token in). */
const SIGNIN_CSRF_COOKIE = 'amobridge_admin_signin';
const SIGNIN_CSRF_TTL_MS = 60 * 60 * 1000;
/** Dead letters shown on one page. */
const DEAD_LIMIT = 100;

const CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Message {
  heading: string;
  paragraphs: string[];
  link?: { href: string; text: string };
}

export function adminUiRouter(deps: AdminUiRouterDeps): Router {
  const { db, logger } = deps;
  const t = adminMessagesFor(deps.locale);
  const fmt = createAdminFormat(deps.locale, deps.timeZone, t);
  const render = createAdminRenderer(t, fmt);
  const stylesheet = adminStylesheet();
  const sessions = new WeakMap<Request, AdminSession>();
  const sessionOf = (req: Request) => sessions.get(req);
  const router = express.Router();
  const toOverview = { href: ADMIN_UI_PATH, text: t.pages.toOverview };

  // --- rendering -------------------------------------------------------------------------

  const pageData = (req: Request, title: string, section?: AdminPageData['section']): AdminPageData => {
    const session = sessionOf(req);
    return session ? { title, section, session: { keyName: session.keyName, scopes: session.scopes, csrf: session.csrfToken } } : { title };
  };

  const sendPage = (req: Request, res: Response, status: number, view: string, page: AdminPageData, data: Record<string, unknown> = {}) => {
    res.status(status).type('html').send(render(view, { ...page, ...data }));
  };

  const sendMessage = (req: Request, res: Response, status: number, message: Message) =>
    sendPage(req, res, status, 'message', pageData(req, message.heading), { ...message });

  const sendSignIn = (req: Request, res: Response, status: number, extra: { error?: string; notice?: string } = {}) => {
    // The double-submit token of this browser's sign-in forms (kept, so two open tabs both
    // work); the cookie is Strict, so no other site's form is sent with it.
    const token = cookieOf(req, SIGNIN_CSRF_COOKIE) ?? newToken();
    res.cookie(SIGNIN_CSRF_COOKIE, token, adminCookieOptions(req.secure, SIGNIN_CSRF_TTL_MS));
    sendPage(req, res, status, 'sign-in', { title: t.signIn.title }, { csrf: token, ...extra });
  };

  // --- middleware ------------------------------------------------------------------------

  router.use(ADMIN_UI_PATH, (_req, res, next) => {
    res.set({
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      // Operational data: never kept by a browser cache or a proxy.
      'Cache-Control': 'no-store',
    });
    next();
  });
  // No secret: the session id is random and only looked up, never trusted as data.
  router.use(ADMIN_UI_PATH, cookieParser());

  const readForm = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 20 });

  const withSession = async (req: Request, _res: Response, next: NextFunction) => {
    const id = cookieOf(req, ADMIN_SESSION_COOKIE);
    const session = id ? await loadAdminSession(db, id) : undefined;
    if (session) sessions.set(req, session);
    next();
  };

  /** A page needs a session: without one (or with an expired one, or a revoked key) the sign-in form. */
  const requireSession = (req: Request, res: Response, next: NextFunction) => {
    if (sessionOf(req)) return next();
    if (cookieOf(req, ADMIN_SESSION_COOKIE)) {
      res.clearCookie(ADMIN_SESSION_COOKIE, { path: ADMIN_UI_PATH });
      return sendSignIn(req, res, 401, { notice: t.signIn.sessionEnded });
    }
    if (req.method === 'GET') return res.redirect(303, `${ADMIN_UI_PATH}/sign-in`);
    sendSignIn(req, res, 401, { notice: t.signIn.sessionEnded });
  };

  const requireScope = (scope: Scope) => (req: Request, res: Response, next: NextFunction) => {
    const session = sessionOf(req)!;
    if (session.scopes.has(scope)) return next();
    logger.warn('admin_ui.forbidden', { path: req.path, keyId: session.keyId, scope });
    sendMessage(req, res, 403, { heading: t.pages.forbidden, paragraphs: [t.pages.forbiddenText(scope)], link: toOverview });
  };

  const requireCsrf = (req: Request, res: Response, next: NextFunction) => {
    const body = req.body as Record<string, unknown> | undefined;
    if (sameToken(body?._csrf, sessionOf(req)?.csrfToken)) return next();
    logger.warn('admin_ui.csrf_rejected', { path: req.path, keyId: sessionOf(req)?.keyId });
    sendMessage(req, res, 403, { heading: t.pages.formExpired, paragraphs: [t.pages.formExpiredText], link: toOverview });
  };

  const flashAndGo = async (req: Request, res: Response, flash: Flash, to: string) => {
    await setAdminFlash(db, sessionOf(req)!, flash);
    res.redirect(303, to);
  };

  // --- static ----------------------------------------------------------------------------

  router.get(`${ADMIN_UI_PATH}/static/admin.css`, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').type('text/css; charset=utf-8').send(stylesheet);
  });

  // --- sign-in ---------------------------------------------------------------------------

  router.get(`${ADMIN_UI_PATH}/sign-in`, withSession, (req, res) => {
    if (sessionOf(req)) return res.redirect(303, ADMIN_UI_PATH);
    sendSignIn(req, res, 200);
  });

  router.post(`${ADMIN_UI_PATH}/sign-in`, readForm, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    if (!sameToken(body._csrf, cookieOf(req, SIGNIN_CSRF_COOKIE))) {
      logger.warn('admin_ui.csrf_rejected', { path: req.path });
      return sendSignIn(req, res, 403, { error: t.pages.formExpiredText });
    }
    const key = typeof body.key === 'string' ? body.key.trim() : '';
    if (!key) return sendSignIn(req, res, 400, { error: t.signIn.empty });
    const caller = await verifyApiKey(db.kysely, key);
    if (!caller) {
      // Neither the key nor any part of it is logged.
      logger.warn('admin_ui.signin_rejected', {});
      return sendSignIn(req, res, 401, { error: t.signIn.refused });
    }
    // Whatever session this browser had, this key's is the one now.
    const previous = cookieOf(req, ADMIN_SESSION_COOKIE);
    if (previous) await endAdminSession(db, previous);
    const id = await startAdminSession(db, caller.id);
    logger.info('admin_ui.signin', { keyId: caller.id });
    res.clearCookie(SIGNIN_CSRF_COOKIE, { path: ADMIN_UI_PATH });
    res.cookie(ADMIN_SESSION_COOKIE, id, adminCookieOptions(req.secure));
    res.redirect(303, ADMIN_UI_PATH);
  });

  router.post(`${ADMIN_UI_PATH}/sign-out`, readForm, withSession, requireSession, requireCsrf, async (req, res) => {
    const session = sessionOf(req)!;
    const id = cookieOf(req, ADMIN_SESSION_COOKIE);
    if (id) await endAdminSession(db, id);
    sessions.delete(req);
    logger.info('admin_ui.signout', { keyId: session.keyId });
    res.clearCookie(ADMIN_SESSION_COOKIE, { path: ADMIN_UI_PATH });
    sendSignIn(req, res, 200, { notice: t.signIn.signedOut });
  });

  // --- overview --------------------------------------------------------------------------

  router.get([ADMIN_UI_PATH, `${ADMIN_UI_PATH}/`], withSession, requireSession, async (req, res) => {
    const session = sessionOf(req)!;
    const now = Date.now();
    // The queue needs the scope its API needs (jobs:read); the services' health is what /readyz shows anyone.
    const queue = session.scopes.has('jobs:read')
      ? queueOverviewOf(await readQueueDepth(db.kysely, deps.jobKinds, now), await oldestWaitingJob(db.kysely, now), now)
      : undefined;
    sendPage(req, res, 200, 'overview', pageData(req, t.overview.title, 'overview'), { queue, states: QUEUE_STATES, health: deps.health() });
  });

  // --- dead letters ----------------------------------------------------------------------

  router.get(`${ADMIN_UI_PATH}/dead`, withSession, requireSession, requireScope('jobs:read'), async (req, res) => {
    const session = sessionOf(req)!;
    const flash = await takeAdminFlash(db, session);
    const jobs = await listDeadJobs(db.kysely, DEAD_LIMIT);
    const notice =
      flash?.kind === 'replayed' ? { ok: true, text: t.dead.replayed(flash.id) } : flash?.kind === 'notDead' ? { ok: false, text: t.dead.notDead(flash.id) } : undefined;
    sendPage(req, res, 200, 'dead', pageData(req, t.dead.title, 'dead'), {
      jobs,
      notice,
      canReplay: session.scopes.has('jobs:replay'),
      more: t.dead.shown(jobs.length, DEAD_LIMIT),
    });
  });

  router.post(
    `${ADMIN_UI_PATH}/dead/:id/replay`,
    readForm,
    withSession,
    requireSession,
    requireCsrf,
    requireScope('jobs:replay'),
    async (req: Request<{ id: string }>, res) => {
      const id = Number(req.params.id);
      if (!/^\d{1,15}$/.test(req.params.id) || !Number.isSafeInteger(id)) return notFound(req, res);
      const session = sessionOf(req)!;
      if (!(await replayDeadJob(db.kysely, id))) return flashAndGo(req, res, { kind: 'notDead', id: String(id) }, `${ADMIN_UI_PATH}/dead`);
      logger.info('admin.job_replayed', { jobId: id, keyId: session.keyId, via: 'admin_ui' });
      deps.onWorkEnqueued();
      await flashAndGo(req, res, { kind: 'replayed', id: String(id) }, `${ADMIN_UI_PATH}/dead`);
    },
  );

  // --- the rest of /admin/ui --------------------------------------------------------------

  const notFound = (req: Request, res: Response) =>
    sendMessage(req, res, 404, {
      heading: t.pages.notFound,
      paragraphs: [t.pages.nothingHere],
      link: sessionOf(req) ? toOverview : { href: `${ADMIN_UI_PATH}/sign-in`, text: t.pages.toSignIn },
    });

  router.use(ADMIN_UI_PATH, withSession, (req, res) => notFound(req, res));

  router.use(ADMIN_UI_PATH, (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return sendMessage(req, res, status, { heading: t.pages.badRequest, paragraphs: [t.pages.goBack] });
    }
    logger.error('admin_ui.error', { path: req.path, error: String(error) });
    sendMessage(req, res, 500, { heading: t.pages.serverError, paragraphs: [t.pages.later], link: sessionOf(req) ? toOverview : undefined });
  });

  return router;
}
