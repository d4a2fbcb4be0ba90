import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Scope } from '../admin/api-keys.js';
import type { QuotaSources } from '../admin/quota.js';
import type { Db } from '../db/connect.js';
import type { HealthState } from '../health/service-health.js';
import type { Logger } from '../logger.js';
import type { Locale } from '../webview/messages/index.js';
import { type AdminFormat, createAdminFormat } from './format.js';
import { type AdminMessages, adminMessagesFor } from './messages/index.js';
import {
  ADMIN_SESSION_COOKIE,
  ADMIN_UI_PATH,
  adminCookieOptions,
  type AdminSession,
  cookieOf,
  type Flash,
  loadAdminSession,
  newToken,
  sameToken,
  setAdminFlash,
} from './session.js';
import { type AdminPageData, createAdminRenderer } from './views.js';

export interface AdminUiDeps {
  /** ADMIN_LOCALE, else WEBVIEW_LOCALE. */
  locale: Locale;
  /** Where times are shown (the mappings file's webview time zone). */
  timeZone: string;
  /** The job kinds the queue knows, so that an idle kind still shows as 0. */
  jobKinds: readonly string[];
  /** What /readyz says of the outside services, as states. */
  health(): { amocrm: HealthState; partner: HealthState; mappingsResolved: boolean };
  /** What GET /admin/quota reads beside the database; without it the overview has no quota section. */
  quota?: QuotaSources;
}

export interface AdminUiRouterDeps extends AdminUiDeps {
  db: Db;
  logger: Logger;
  onWorkEnqueued(): void;
}

export interface Message {
  heading: string;
  paragraphs: string[];
  link?: { href: string; text: string };
}

/** The sign-in form's CSRF cookie (double submit: there is no session yet to keep a token in). */
export const SIGNIN_CSRF_COOKIE = 'amobridge_admin_signin';
const SIGNIN_CSRF_TTL_MS = 60 * 60 * 1000;

/**
 * What every page of the admin page shares: its words, rendering, the session of a
 * request, and the guards each route starts with. One per router; the page modules
 * (routes/*.ts) take it.
 */
export interface AdminKit {
  deps: AdminUiRouterDeps;
  t: AdminMessages;
  fmt: AdminFormat;
  sessionOf(req: Request): AdminSession | undefined;
  forget(req: Request): void;
  pageData(req: Request, title: string, section?: AdminPageData['section']): AdminPageData;
  sendPage(res: Response, status: number, view: string, page: AdminPageData, data?: Record<string, unknown>): void;
  sendMessage(req: Request, res: Response, status: number, message: Message): void;
  sendSignIn(req: Request, res: Response, status: number, extra?: { error?: string; notice?: string }): void;
  notFound(req: Request, res: Response): void;
  /** Form bodies: small, flat. */
  readForm: RequestHandler;
  /** Loads the session of the request's cookie, if any is live. */
  withSession: RequestHandler;
  /** Without a session: the sign-in form (a GET is redirected to it). */
  requireSession: RequestHandler;
  /** Without the scope: a 403 page naming it. */
  requireScope(scope: Scope): RequestHandler;
  /** A POST must carry its session's CSRF token: otherwise a 403 page, and nothing done. */
  requireCsrf: RequestHandler;
  /** Post/redirect/get: the notice waits in the session for the page redirected to. */
  flashAndGo(req: Request, res: Response, flash: Flash, to: string): Promise<void>;
}

export function createAdminKit(deps: AdminUiRouterDeps): AdminKit {
  const { db, logger } = deps;
  const t = adminMessagesFor(deps.locale);
  const fmt = createAdminFormat(deps.locale, deps.timeZone, t);
  const render = createAdminRenderer(t, fmt);
  const sessions = new WeakMap<Request, AdminSession>();
  const sessionOf = (req: Request) => sessions.get(req);
  const toOverview = { href: ADMIN_UI_PATH, text: t.pages.toOverview };

  const pageData: AdminKit['pageData'] = (req, title, section) => {
    const session = sessionOf(req);
    return session ? { title, section, session: { keyName: session.keyName, scopes: session.scopes, csrf: session.csrfToken } } : { title };
  };
  const sendPage: AdminKit['sendPage'] = (res, status, view, page, data = {}) => {
    res.status(status).type('html').send(render(view, { ...page, ...data }));
  };
  const sendMessage: AdminKit['sendMessage'] = (req, res, status, message) =>
    sendPage(res, status, 'message', pageData(req, message.heading), { ...message });
  const sendSignIn: AdminKit['sendSignIn'] = (req, res, status, extra = {}) => {
    // The double-submit token of this browser's sign-in forms (kept, so two open tabs both
    // work); the cookie is Strict, so no other site's form is sent with it.
    const token = cookieOf(req, SIGNIN_CSRF_COOKIE) ?? newToken();
    res.cookie(SIGNIN_CSRF_COOKIE, token, adminCookieOptions(req.secure, SIGNIN_CSRF_TTL_MS));
    sendPage(res, status, 'sign-in', { title: t.signIn.title }, { csrf: token, ...extra });
  };

  return {
    deps,
    t,
    fmt,
    sessionOf,
    forget: (req) => sessions.delete(req),
    pageData,
    sendPage,
    sendMessage,
    sendSignIn,
    notFound: (req, res) =>
      sendMessage(req, res, 404, {
        heading: t.pages.notFound,
        paragraphs: [t.pages.nothingHere],
        link: sessionOf(req) ? toOverview : { href: `${ADMIN_UI_PATH}/sign-in`, text: t.pages.toSignIn },
      }),
    readForm: express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 20 }),
    withSession: async (req: Request, _res: Response, next: NextFunction) => {
      const id = cookieOf(req, ADMIN_SESSION_COOKIE);
      const session = id ? await loadAdminSession(db, id) : undefined;
      if (session) sessions.set(req, session);
      next();
    },
    requireSession: (req: Request, res: Response, next: NextFunction) => {
      if (sessionOf(req)) return next();
      if (cookieOf(req, ADMIN_SESSION_COOKIE)) {
        // Expired, signed out elsewhere, or its key revoked.
        res.clearCookie(ADMIN_SESSION_COOKIE, { path: ADMIN_UI_PATH });
        return sendSignIn(req, res, 401, { notice: t.signIn.sessionEnded });
      }
      if (req.method === 'GET') return res.redirect(303, `${ADMIN_UI_PATH}/sign-in`);
      sendSignIn(req, res, 401, { notice: t.signIn.sessionEnded });
    },
    requireScope: (scope) => (req: Request, res: Response, next: NextFunction) => {
      const session = sessionOf(req)!;
      if (session.scopes.has(scope)) return next();
      logger.warn('admin_ui.forbidden', { path: req.path, keyId: session.keyId, scope });
      sendMessage(req, res, 403, { heading: t.pages.forbidden, paragraphs: [t.pages.forbiddenText(scope)], link: toOverview });
    },
    requireCsrf: (req: Request, res: Response, next: NextFunction) => {
      const body = req.body as Record<string, unknown> | undefined;
      if (sameToken(body?._csrf, sessionOf(req)?.csrfToken)) return next();
      logger.warn('admin_ui.csrf_rejected', { path: req.path, keyId: sessionOf(req)?.keyId });
      sendMessage(req, res, 403, { heading: t.pages.formExpired, paragraphs: [t.pages.formExpiredText], link: toOverview });
    },
    flashAndGo: async (req, res, flash, to) => {
      await setAdminFlash(db, sessionOf(req)!, flash);
      res.redirect(303, to);
    },
  };
}
