import fs from 'node:fs';
import path from 'node:path';
import cookieParser from 'cookie-parser';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Db } from '../db/connect.js';
import { HttpError, isRetryable } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import type { MappingsFile } from '../mappings/schema.js';
import { isOrderId } from '../partner/schema.js';
import type { PartnerPort } from '../sync/ports.js';
import {
  cancelWebviewOrder,
  createWebviewOrder,
  getUserOrder,
  listUserOrders,
  type OrderLimit,
  OrderLimitReached,
  OrdersOnHold,
  orderLimitState,
  type WebviewMappings,
  type WebviewOrdersDeps,
} from '../sync/webview-orders.js';
import { createCsrf, CSRF_COOKIE } from './csrf.js';
import { type Flash, flashCookie, readFlash } from './flash.js';
import type { Locale } from './messages/index.js';
import { FORM_FIELDS, type FormError, formErrorText, type FormValues, newNonce, parseNewOrderForm } from './new-order-form.js';
import { type TokenRejection, useToken, verifyWebviewToken, type WebviewTokenSettings } from './seamless-auth.js';
import {
  deriveKey,
  endSession,
  loadSession,
  rememberPendingSignIn,
  SESSION_COOKIE,
  sessionCookieOptions,
  sessionIdOf,
  type SessionUser,
  startSession,
  takePendingSignIn,
  type WebviewSession,
} from './session.js';
import { webviewTexts } from './texts.js';
import { createRenderer, type PageData, webviewAssetDir } from './views.js';
import { privatePageHeaders } from '../http/private-page-headers.js';

/**
 * The webview (stage 3, docs/architecture.md): Company 1 opens GET /webview?token=<JWT> in its app,
 * the user is signed in without a form and sees their orders, creates new ones and
 * cancels where the order's status allows. Server-rendered HTML in the configured locale
 * (Russian by default) that works without JavaScript; every form carries a CSRF token.
 *
 * It is mounted at every integration stage, so users can always see their orders; the
 * new-order form exists only at stage 3, the stage at which Company 1 stops taking orders
 * for the service on its own side and the webview becomes the way in. Before that, an
 * order made here would bypass the flow Company 1 still runs itself.
 */

export interface WebviewDeps {
  partner: PartnerPort;
  /** From the mappings file as loaded: the webview needs no amoCRM ids, so it works before they resolve. */
  mappings: WebviewMappings & Pick<MappingsFile, 'webview'>;
  auth: WebviewTokenSettings;
  sessionSecret: string;
  /** WEBVIEW_LOCALE. */
  locale: Locale;
  /** WEBVIEW_ORDER_LIMIT, with its window as configured (for the limit page's words). */
  orderLimit: OrderLimit & { window: { count: number; unit: 's' | 'm' | 'h' | 'd' } };
}

export interface WebviewRouterDeps extends WebviewDeps {
  db: Db;
  logger: Logger;
  onWorkEnqueued(): void;
}

interface Message {
  heading: string;
  paragraphs: string[];
  retry?: { action: string; fields: Record<string, string> };
  link?: { href: string; text: string };
}

const orderPath = (id: string) => `/webview/orders/${encodeURIComponent(id)}`;

export function webviewRouter(deps: WebviewRouterDeps): Router {
  const { db, logger, mappings } = deps;
  const texts = webviewTexts(mappings, deps.locale);
  const { t, fmt } = texts;
  const render = createRenderer(texts);
  const sessions = new WeakMap<Request, WebviewSession>();
  const sessionOf = (req: Request) => sessions.get(req);
  const csrf = createCsrf(deriveKey(deps.sessionSecret, 'csrf'), (req) => sessionOf(req)?.idHash);
  const domain: WebviewOrdersDeps = {
    db,
    partner: deps.partner,
    mappings,
    logger,
    orderLimit: deps.orderLimit,
    onWorkEnqueued: deps.onWorkEnqueued,
  };
  const canOrder = mappings.integrationStage === 3;
  const staticFiles = loadStaticFiles();
  const router = express.Router();

  const tokenMessages: Record<TokenRejection | 'missing', Message> = {
    missing: { heading: t.pages.missing, paragraphs: [t.pages.reopen] },
    expired: { heading: t.pages.expired, paragraphs: [t.pages.reopen] },
    replayed: { heading: t.pages.replayed, paragraphs: [t.pages.onceOnly, t.pages.reopen] },
    malformed: { heading: t.pages.invalid, paragraphs: [t.pages.reopen] },
    algorithm: { heading: t.pages.invalid, paragraphs: [t.pages.reopen] },
    signature: { heading: t.pages.invalid, paragraphs: [t.pages.reopen] },
    issuer: { heading: t.pages.invalid, paragraphs: [t.pages.reopen] },
    audience: { heading: t.pages.invalid, paragraphs: [t.pages.reopen] },
    claims: { heading: t.pages.invalid, paragraphs: [t.pages.reopen] },
  };
  const backToOrders = { href: '/webview/orders', text: t.pages.backToOrders };
  const nameOf = (user: { givenName: string }) => user.givenName || t.continueAs.someone;

  // --- rendering -------------------------------------------------------------------------

  const pageData = (req: Request, res: Response, title: string): PageData => {
    const session = sessionOf(req);
    // A CSRF token (and its cookie) only within a session: pages outside one have no forms.
    return session ? { title, userName: session.givenName, csrf: csrf.tokenFor(req, res) } : { title };
  };

  const sendPage = (req: Request, res: Response, status: number, view: string, title: string, data: Record<string, unknown> = {}) => {
    res.status(status).type('html').send(render(view, { ...pageData(req, res, title), ...data }));
  };

  const sendMessage = (req: Request, res: Response, status: number, message: Message) => {
    sendPage(req, res, status, 'message', message.heading, { ...message });
  };

  const sessionEnded = (req: Request, res: Response) => {
    if (sessionIdOf(req)) res.clearCookie(SESSION_COOKIE, { path: '/webview' });
    sendMessage(req, res, 401, { heading: t.pages.sessionEnded, paragraphs: [t.pages.reopen] });
  };

  const notFound = (req: Request, res: Response) =>
    sendMessage(req, res, 404, { heading: t.pages.notFound, paragraphs: [t.pages.nothingHere], link: sessionOf(req) ? backToOrders : undefined });

  const orderNotFound = (req: Request, res: Response) =>
    sendMessage(req, res, 404, { heading: t.pages.orderNotFound, paragraphs: [t.pages.noSuchOrder], link: backToOrders });

  const newOrderClosed = (req: Request, res: Response) =>
    sendMessage(req, res, 403, { heading: t.pages.ordersClosed, paragraphs: [t.pages.ordersClosedText], link: backToOrders });

  /** WEBVIEW_ORDER_LIMIT reached: how many, in what window, and when the next one is possible. */
  const limitReached = (req: Request, res: Response, count: number, retryAt: number) => {
    const wait = Math.max(0, retryAt - Date.now());
    res.set('Retry-After', String(Math.max(1, Math.ceil(wait / 1000))));
    sendMessage(req, res, 429, {
      heading: t.limit.title,
      paragraphs: [t.limit.placed(count, deps.orderLimit.window), t.limit.retry(fmt.inTime(wait))],
      link: backToOrders,
    });
  };

  const renderForm = (
    req: Request,
    res: Response,
    status: number,
    values: FormValues,
    extra: { errors?: Record<string, FormError>; formError?: FormError } = {},
  ) =>
    sendPage(req, res, status, 'new-order', t.form.title, {
      fields: FORM_FIELDS,
      values,
      nonce: values.nonce ?? newNonce(),
      errors: Object.fromEntries(Object.entries(extra.errors ?? {}).map(([field, error]) => [field, formErrorText(error, t)])),
      formError: extra.formError && formErrorText(extra.formError, t),
    });

  // --- middleware ------------------------------------------------------------------------

  router.use('/webview', privatePageHeaders({ script: true }));
  router.use('/webview', cookieParser(deriveKey(deps.sessionSecret, 'cookie')));

  const readForm = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });

  /** Loads the session, if any, for this request. */
  const withSession = async (req: Request, _res: Response, next: NextFunction) => {
    const id = sessionIdOf(req);
    const session = id ? await loadSession(db, id) : undefined;
    if (session) sessions.set(req, session);
    next();
  };

  const requireSession = (req: Request, res: Response, next: NextFunction) => {
    if (!sessionOf(req)) return sessionEnded(req, res);
    next();
  };

  /** An id that is not an order id is no order of the user's, and never goes further. */
  const requireOrderId = (req: Request, res: Response, next: NextFunction) => {
    if (!isOrderId(req.params.id)) return orderNotFound(req, res);
    next();
  };

  const rejectCsrf = (req: Request, res: Response) => {
    logger.warn('webview.csrf_rejected', { path: req.path, userId: sessionOf(req)?.userId });
    sendMessage(req, res, 403, { heading: t.pages.formExpired, paragraphs: [t.pages.formExpiredText], link: backToOrders });
  };

  const requireCsrf = (req: Request, res: Response, next: NextFunction) => {
    if (csrf.valid(req)) return next();
    rejectCsrf(req, res);
  };

  const setFlash = (req: Request, res: Response, flash: Flash) => {
    const { name, value, options } = flashCookie(flash, req.secure);
    res.cookie(name, value, options);
  };

  // --- static ----------------------------------------------------------------------------

  router.get('/webview/static/:file', (req: Request<{ file: string }>, res, next) => {
    const file = staticFiles.get(req.params.file);
    if (!file) return next();
    res.set('Cache-Control', 'public, max-age=300').type(file.type).send(file.body);
  });

  // --- sign-in ---------------------------------------------------------------------------

  const beginSession = async (req: Request, res: Response, user: SessionUser) => {
    // Whoever was signed in on this device before, this user is now.
    const previous = sessionIdOf(req);
    if (previous) await endSession(db, previous);
    const id = await startSession(db, user);
    res.cookie(SESSION_COOKIE, id, sessionCookieOptions(req.secure));
    // Away from the token: it leaves the address bar and the history.
    res.redirect(303, '/webview/orders');
  };

  router.get('/webview', withSession, async (req, res) => {
    const token = req.query.token;
    const current = sessionOf(req);
    if (token === undefined) {
      if (current) return res.redirect(303, '/webview/orders');
      return sendMessage(req, res, 401, tokenMessages.missing);
    }
    const checked = typeof token === 'string' ? await verifyWebviewToken(token, deps.auth) : undefined;
    if (!checked || !checked.ok) {
      const reason = checked ? checked.reason : 'malformed';
      logger.warn('webview.signin.rejected', { reason, detail: checked && !checked.ok ? checked.detail : 'token is not one string' });
      return sendMessage(req, res, 401, tokenMessages[reason]);
    }
    const verified = checked.token;
    if (!(await useToken(db, verified))) {
      if (current && current.userId === verified.userId) {
        // The app reopened its first URL (some webviews do on restore): this browser is
        // already signed in as that user, so nothing is granted by the repeat.
        logger.info('webview.signin.token_reused_in_session', { userId: verified.userId });
        return res.redirect(303, '/webview/orders');
      }
      logger.warn('webview.signin.rejected', { reason: 'replayed', userId: verified.userId });
      return sendMessage(req, res, 401, tokenMessages.replayed);
    }
    if (current && current.userId !== verified.userId) {
      // Someone else's link in this browser (login CSRF, or a shared phone): the session
      // stays until the user confirms with a POST this page's form makes.
      await rememberPendingSignIn(db, current, verified);
      logger.warn('webview.signin.confirmation_asked', { userId: current.userId, newUserId: verified.userId });
      return sendPage(req, res, 200, 'continue-as', t.continueAs.title(nameOf(verified)), {
        current: nameOf(current),
        next: nameOf(verified),
        nextUserId: verified.userId,
      });
    }
    logger.info('webview.signin.accepted', { userId: verified.userId });
    await beginSession(req, res, verified);
  });

  router.post('/webview/sign-in', readForm, withSession, requireSession, requireCsrf, async (req, res) => {
    const current = sessionOf(req)!;
    const body = req.body as Record<string, unknown>;
    const userId = typeof body.user === 'string' ? body.user : '';
    const pending = userId ? await takePendingSignIn(db, current, userId) : undefined;
    if (!pending) {
      logger.warn('webview.signin.confirmation_refused', { userId: current.userId });
      return sendMessage(req, res, 409, { heading: t.pages.pendingGone, paragraphs: [t.pages.reopen], link: backToOrders });
    }
    logger.info('webview.signin.accepted', { userId: pending.userId, replaced: current.userId });
    await beginSession(req, res, pending);
  });

  router.post('/webview/sign-out', readForm, withSession, async (req, res) => {
    const session = sessionOf(req);
    if (session) {
      if (!csrf.valid(req)) return rejectCsrf(req, res);
      const id = sessionIdOf(req);
      if (id) await endSession(db, id);
      sessions.delete(req);
      logger.info('webview.signout', { userId: session.userId });
    }
    res.clearCookie(SESSION_COOKIE, { path: '/webview' });
    res.clearCookie(CSRF_COOKIE, { path: '/webview' });
    sendMessage(req, res, 200, { heading: t.pages.signedOut, paragraphs: [t.pages.comeBack] });
  });

  // --- orders ----------------------------------------------------------------------------

  router.get('/webview/orders', withSession, requireSession, async (req, res) => {
    const session = sessionOf(req)!;
    const { orders, live } = await listUserOrders(domain, session.userId);
    sendPage(req, res, 200, 'orders', t.orders.title, { orders, live, canOrder });
  });

  router.get('/webview/orders/new', withSession, requireSession, async (req, res) => {
    if (!canOrder) return newOrderClosed(req, res);
    const session = sessionOf(req)!;
    const limit = await orderLimitState(domain, session.userId);
    if (!limit.allowed) return limitReached(req, res, limit.count, limit.retryAt);
    renderForm(req, res, 200, { firstName: session.givenName, lastName: session.familyName, phone: session.phone });
  });

  router.post('/webview/orders', readForm, withSession, requireSession, requireCsrf, async (req, res) => {
    if (!canOrder) return newOrderClosed(req, res);
    const session = sessionOf(req)!;
    const form = parseNewOrderForm(req.body, mappings);
    if (!form.ok) {
      const { nonce, ...errors } = form.errors;
      return renderForm(req, res, 400, nonce ? { ...form.values, nonce: undefined } : form.values, { errors, formError: nonce });
    }
    const { input } = form;
    try {
      const order = await createWebviewOrder(domain, { userId: session.userId, ...input });
      // Post/redirect/get with a one-time notice: a reload of the order's page does not repeat it.
      setFlash(req, res, { kind: 'created', orderId: order.id });
      return res.redirect(303, orderPath(order.id));
    } catch (error) {
      if (error instanceof OrderLimitReached) return limitReached(req, res, error.count, error.retryAt);
      if (error instanceof OrdersOnHold) return sendMessage(req, res, 409, { heading: t.pages.onHold, paragraphs: [t.pages.onHoldText], link: backToOrders });
      const retry = {
        action: '/webview/orders',
        fields: {
          nonce: input.nonce,
          serviceId: input.serviceId,
          firstName: input.customer.firstName,
          lastName: input.customer.lastName,
          phone: input.customer.phone,
          comment: input.comment ?? '',
        },
      };
      if (error instanceof HttpError && error.status === 422) {
        // The same form was sent before with other details (edited after an error).
        return sendMessage(req, res, 409, { heading: t.pages.alreadySent, paragraphs: [t.pages.alreadySentText], link: backToOrders });
      }
      const transient = isRetryable(error);
      if (!transient) logger.error('webview.order.create_refused', { userId: session.userId, error: String(error) });
      return sendMessage(req, res, transient ? 503 : 502, {
        heading: t.pages.createFailed,
        paragraphs: [transient ? t.pages.partnerDown : t.pages.partnerRefused, t.pages.safeRetry],
        retry,
        link: backToOrders,
      });
    }
  });

  /** The user's order with its timeline, or a page saying why not (then undefined). */
  const loadOrder = async (req: Request<{ id: string }>, res: Response) => {
    const session = sessionOf(req)!;
    const orderId = req.params.id;
    let details;
    try {
      details = await getUserOrder(domain, session.userId, orderId);
    } catch {
      sendMessage(req, res, 503, {
        heading: t.pages.orderUnavailable,
        paragraphs: [t.pages.orderUnavailableText],
        link: { href: orderPath(orderId), text: t.pages.tryAgain },
      });
      return undefined;
    }
    if (!details) orderNotFound(req, res);
    return details;
  };

  router.get('/webview/orders/:id', withSession, requireSession, requireOrderId, async (req: Request<{ id: string }>, res) => {
    const flash = readFlash(req, res, req.params.id);
    const details = await loadOrder(req, res);
    if (!details) return;
    const notice = flash === 'created' ? t.order.created : flash === 'cancelled' ? t.order.cancelled : undefined;
    sendPage(req, res, 200, 'order', `${texts.serviceName(details.summary.serviceId)} · ${t.orders.orderNo(details.summary.id)}`, {
      ...details,
      notice,
    });
  });

  /** The second step of a cancel: a page that asks, whose form (CSRF-protected) cancels. */
  router.get('/webview/orders/:id/cancel', withSession, requireSession, requireOrderId, async (req: Request<{ id: string }>, res) => {
    const details = await loadOrder(req, res);
    if (!details) return;
    const back = orderPath(details.summary.id);
    if (details.onHold) {
      return sendMessage(req, res, 409, { heading: t.pages.onHold, paragraphs: [t.pages.onHoldText], link: { href: back, text: t.pages.backToOrder } });
    }
    if (!details.cancellable) {
      return sendMessage(req, res, 409, {
        heading: t.pages.cannotCancel,
        paragraphs: [t.pages.cannotCancelText(t.status[details.summary.status])],
        link: { href: back, text: t.pages.backToOrder },
      });
    }
    sendPage(req, res, 200, 'cancel', t.cancel.title, { summary: details.summary, back });
  });

  router.post('/webview/orders/:id/cancel', readForm, withSession, requireSession, requireOrderId, requireCsrf, async (req: Request<{ id: string }>, res) => {
    const session = sessionOf(req)!;
    const orderId = req.params.id;
    const back = orderPath(orderId);
    let outcome;
    try {
      outcome = await cancelWebviewOrder(domain, session.userId, orderId);
    } catch (error) {
      logger.warn('webview.order.cancel_failed', { userId: session.userId, orderId, error: String(error) });
      return sendMessage(req, res, 503, {
        heading: t.pages.cancelFailed,
        paragraphs: [t.pages.cancelFailedText, t.pages.safeRetry],
        retry: { action: `${back}/cancel`, fields: {} },
        link: { href: back, text: t.pages.backToOrder },
      });
    }
    if (outcome.type === 'not_found') return orderNotFound(req, res);
    if (outcome.type === 'on_hold') {
      return sendMessage(req, res, 409, { heading: t.pages.onHold, paragraphs: [t.pages.onHoldText], link: { href: back, text: t.pages.backToOrder } });
    }
    if (outcome.type === 'not_allowed') {
      return sendMessage(req, res, 409, {
        heading: t.pages.cannotCancel,
        paragraphs: [t.pages.cannotCancelText(t.status[outcome.status])],
        link: { href: back, text: t.pages.backToOrder },
      });
    }
    setFlash(req, res, { kind: 'cancelled', orderId });
    res.redirect(303, back);
  });

  // --- the rest of /webview ---------------------------------------------------------------

  router.use('/webview', withSession, (req, res) => notFound(req, res));

  router.use('/webview', (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Body too large, malformed form: the client's doing.
      return sendMessage(req, res, status, { heading: t.pages.badRequest, paragraphs: [t.pages.goBack] });
    }
    logger.error('webview.error', { path: req.path, error: String(error) });
    sendMessage(req, res, 500, { heading: t.pages.serverError, paragraphs: [t.pages.later], link: sessionOf(req) ? backToOrders : undefined });
  });

  return router;
}

function loadStaticFiles(): Map<string, { type: string; body: string }> {
  const dir = webviewAssetDir('static');
  const types: Record<string, string> = { '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };
  const files = new Map<string, { type: string; body: string }>();
  for (const name of fs.readdirSync(dir)) {
    const type = types[path.extname(name)];
    if (type) files.set(name, { type, body: fs.readFileSync(path.join(dir, name), 'utf8') });
  }
  return files;
}
