import fs from 'node:fs';
import path from 'node:path';
import cookieParser from 'cookie-parser';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Db } from '../db/connect.js';
import { HttpError, isRetryable } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import { isOrderId } from '../partner/schema.js';
import type { PartnerPort } from '../sync/ports.js';
import {
  cancelWebviewOrder,
  createWebviewOrder,
  getUserOrder,
  listUserOrders,
  type WebviewMappings,
  type WebviewOrdersDeps,
} from '../sync/webview-orders.js';
import { createCsrf, CSRF_COOKIE } from './csrf.js';
import { statusLabel } from './format.js';
import { FORM_FIELDS, type FormValues, newNonce, parseNewOrderForm } from './new-order-form.js';
import { type TokenRejection, useToken, verifyWebviewToken, type WebviewTokenSettings } from './seamless-auth.js';
import {
  deriveKey,
  endSession,
  loadSession,
  SESSION_COOKIE,
  sessionCookieOptions,
  sessionIdOf,
  startSession,
  type WebviewSession,
} from './session.js';
import { createRenderer, type PageData, webviewAssetDir } from './views.js';

/**
 * The webview (stage 3, DESIGN.md): Company 1 opens GET /webview?token=<JWT> in its app,
 * the user is signed in without a form and sees their orders, creates new ones and
 * cancels where the order's status allows. Server-rendered HTML that works without
 * JavaScript; every form carries a CSRF token.
 *
 * It is mounted at every integration stage, so users can always see their orders; the
 * new-order form exists only at stage 3, the stage at which Company 1 stops taking orders
 * for the service on its own side and the webview becomes the way in. Before that, an
 * order made here would bypass the flow Company 1 still runs itself.
 */

export interface WebviewDeps {
  partner: PartnerPort;
  /** From the mappings file as loaded: the webview needs no amoCRM ids, so it works before they resolve. */
  mappings: WebviewMappings;
  auth: WebviewTokenSettings;
  sessionSecret: string;
}

export interface WebviewRouterDeps extends WebviewDeps {
  db: Db;
  logger: Logger;
  onWorkEnqueued(): void;
}

/** A page's Content-Security-Policy: own styles and script only, no framing, forms post home. */
const CSP = [
  "default-src 'none'",
  "style-src 'self'",
  "script-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Message {
  heading: string;
  paragraphs: string[];
  retry?: { action: string; fields: Record<string, string> };
  link?: { href: string; text: string };
}

const REOPEN = "Go back to the Company 1 app and open Company 2's page again: you will be signed in automatically.";

const TOKEN_MESSAGES: Record<TokenRejection | 'missing', Message> = {
  missing: { heading: 'Please open this page from the Company 1 app', paragraphs: [REOPEN] },
  expired: { heading: 'This sign-in link has expired', paragraphs: [REOPEN] },
  replayed: { heading: 'This sign-in link has already been used', paragraphs: ['A sign-in link works only once.', REOPEN] },
  malformed: { heading: 'This sign-in link is not valid', paragraphs: [REOPEN] },
  algorithm: { heading: 'This sign-in link is not valid', paragraphs: [REOPEN] },
  signature: { heading: 'This sign-in link is not valid', paragraphs: [REOPEN] },
  issuer: { heading: 'This sign-in link is not valid', paragraphs: [REOPEN] },
  audience: { heading: 'This sign-in link is not valid', paragraphs: [REOPEN] },
  claims: { heading: 'This sign-in link is not valid', paragraphs: [REOPEN] },
};

export function webviewRouter(deps: WebviewRouterDeps): Router {
  const { db, logger, mappings } = deps;
  const render = createRenderer();
  const sessions = new WeakMap<Request, WebviewSession>();
  const sessionOf = (req: Request) => sessions.get(req);
  const csrf = createCsrf(deriveKey(deps.sessionSecret, 'csrf'), (req) => sessionOf(req)?.idHash);
  const domain: WebviewOrdersDeps = { db, partner: deps.partner, mappings, logger, onWorkEnqueued: deps.onWorkEnqueued };
  const canOrder = mappings.integrationStage === 3;
  const staticFiles = loadStaticFiles();
  const router = express.Router();

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
    sendMessage(req, res, 401, { heading: 'Your session has ended', paragraphs: [REOPEN] });
  };

  const notFound = (req: Request, res: Response, what = 'Page') =>
    sendMessage(req, res, 404, {
      heading: `${what} not found`,
      paragraphs: [what === 'Order' ? 'There is no such order among yours.' : 'There is nothing at this address.'],
      link: sessionOf(req) ? { href: '/webview/orders', text: 'Back to my orders' } : undefined,
    });

  const newOrderClosed = (req: Request, res: Response) =>
    sendMessage(req, res, 403, {
      heading: 'New orders are placed in the Company 1 app',
      paragraphs: ['For now, please order this service in the Company 1 app. Your orders from there are shown here too.'],
      link: { href: '/webview/orders', text: 'Back to my orders' },
    });

  const renderForm = (req: Request, res: Response, status: number, values: FormValues, extra: Record<string, unknown> = {}) =>
    sendPage(req, res, status, 'new-order', 'New order', {
      services: mappings.services,
      fields: FORM_FIELDS,
      values,
      nonce: values.nonce ?? newNonce(),
      ...extra,
    });

  // --- middleware ------------------------------------------------------------------------

  router.use('/webview', (_req, res, next) => {
    res.set({
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      // Personal data: never kept by the webview's cache or a proxy.
      'Cache-Control': 'no-store',
    });
    next();
  });
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

  const rejectCsrf = (req: Request, res: Response) => {
    logger.warn('webview.csrf_rejected', { path: req.path, userId: sessionOf(req)?.userId });
    sendMessage(req, res, 403, {
      heading: 'This form has expired',
      paragraphs: ['For your safety the form was not sent. Please go back, reload the page and try again.'],
      link: { href: '/webview/orders', text: 'Back to my orders' },
    });
  };

  /** An id that is not an order id is no order of the user's, and never goes further. */
  const requireOrderId = (req: Request, res: Response, next: NextFunction) => {
    if (!isOrderId(req.params.id)) return notFound(req, res, 'Order');
    next();
  };

  const requireCsrf = (req: Request, res: Response, next: NextFunction) => {
    if (csrf.valid(req)) return next();
    rejectCsrf(req, res);
  };

  // --- static ----------------------------------------------------------------------------

  router.get('/webview/static/:file', (req: Request<{ file: string }>, res, next) => {
    const file = staticFiles.get(req.params.file);
    if (!file) return next();
    res.set('Cache-Control', 'public, max-age=300').type(file.type).send(file.body);
  });

  // --- sign-in ---------------------------------------------------------------------------

  router.get('/webview', withSession, async (req, res) => {
    const token = req.query.token;
    if (token === undefined) {
      if (sessionOf(req)) return res.redirect(303, '/webview/orders');
      return sendMessage(req, res, 401, TOKEN_MESSAGES.missing);
    }
    const checked = typeof token === 'string' ? await verifyWebviewToken(token, deps.auth) : undefined;
    if (!checked || !checked.ok) {
      const reason = checked ? checked.reason : 'malformed';
      logger.warn('webview.signin.rejected', { reason, detail: checked && !checked.ok ? checked.detail : 'token is not one string' });
      return sendMessage(req, res, 401, TOKEN_MESSAGES[reason]);
    }
    const verified = checked.token;
    if (!(await useToken(db, verified))) {
      const current = sessionOf(req);
      if (current && current.userId === verified.userId) {
        // The app reopened its first URL (some webviews do on restore): this browser is
        // already signed in as that user, so nothing is granted by the repeat.
        logger.info('webview.signin.token_reused_in_session', { userId: verified.userId });
        return res.redirect(303, '/webview/orders');
      }
      logger.warn('webview.signin.rejected', { reason: 'replayed', userId: verified.userId });
      sessions.delete(req);
      return sendMessage(req, res, 401, TOKEN_MESSAGES.replayed);
    }
    // Whoever was signed in on this device before, the token's user is now.
    const previous = sessionIdOf(req);
    if (previous) await endSession(db, previous);
    const id = await startSession(db, verified);
    res.cookie(SESSION_COOKIE, id, sessionCookieOptions(req.secure));
    logger.info('webview.signin.accepted', { userId: verified.userId });
    // Away from the token: it leaves the address bar and the history.
    res.redirect(303, '/webview/orders');
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
    sendMessage(req, res, 200, { heading: 'You have signed out', paragraphs: ['To come back, open Company 2 from the Company 1 app.'] });
  });

  // --- orders ----------------------------------------------------------------------------

  router.get('/webview/orders', withSession, requireSession, async (req, res) => {
    const session = sessionOf(req)!;
    const { orders, live } = await listUserOrders(domain, session.userId);
    sendPage(req, res, 200, 'orders', 'My orders', { orders, live, canOrder });
  });

  router.get('/webview/orders/new', withSession, requireSession, (req, res) => {
    if (!canOrder) return newOrderClosed(req, res);
    const session = sessionOf(req)!;
    renderForm(req, res, 200, { firstName: session.givenName, lastName: session.familyName, phone: session.phone });
  });

  router.post('/webview/orders', readForm, withSession, requireSession, requireCsrf, async (req, res) => {
    if (!canOrder) return newOrderClosed(req, res);
    const session = sessionOf(req)!;
    const form = parseNewOrderForm(req.body, mappings);
    if (!form.ok) {
      const { nonce, ...errors } = form.errors;
      return renderForm(req, res, 400, nonce ? { ...form.values, nonce: undefined } : form.values, {
        errors,
        formError: nonce,
      });
    }
    const { input } = form;
    try {
      const order = await createWebviewOrder(domain, { userId: session.userId, ...input });
      return res.redirect(303, `/webview/orders/${encodeURIComponent(order.id)}?created=1`);
    } catch (error) {
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
        return sendMessage(req, res, 409, {
          heading: 'This form was already sent',
          paragraphs: ['It was sent before with different details. Please check your orders, then start a new order if you still need one.'],
          link: { href: '/webview/orders', text: 'Back to my orders' },
        });
      }
      const transient = isRetryable(error);
      if (!transient) logger.error('webview.order.create_refused', { userId: session.userId, error: String(error) });
      return sendMessage(req, res, transient ? 503 : 502, {
        heading: 'We could not place your order just now',
        paragraphs: [
          transient
            ? 'Company 1, which takes the orders, is not answering at the moment.'
            : 'Company 1, which takes the orders, did not accept it. We have been told about it.',
          'Trying again is safe: your order will not be placed twice.',
        ],
        retry,
        link: { href: '/webview/orders', text: 'Back to my orders' },
      });
    }
  });

  router.get('/webview/orders/:id', withSession, requireSession, requireOrderId, async (req: Request<{ id: string }>, res) => {
    const session = sessionOf(req)!;
    const orderId = req.params.id;
    let details;
    try {
      details = await getUserOrder(domain, session.userId, orderId);
    } catch {
      return sendMessage(req, res, 503, {
        heading: 'Company 1 is not answering',
        paragraphs: ['We cannot show this order right now. Please try again in a minute.'],
        link: { href: `/webview/orders/${encodeURIComponent(orderId)}`, text: 'Try again' },
      });
    }
    if (!details) return notFound(req, res, 'Order');
    const notice =
      req.query.created === '1'
        ? 'Your order is placed. A Company 2 manager will contact you soon.'
        : req.query.cancelled === '1'
          ? 'Your order is cancelled.'
          : undefined;
    sendPage(req, res, 200, 'order', `Order ${details.summary.id}`, { ...details, notice });
  });

  router.post('/webview/orders/:id/cancel', readForm, withSession, requireSession, requireOrderId, requireCsrf, async (req: Request<{ id: string }>, res) => {
    const session = sessionOf(req)!;
    const orderId = req.params.id;
    const back = `/webview/orders/${encodeURIComponent(orderId)}`;
    let outcome;
    try {
      outcome = await cancelWebviewOrder(domain, session.userId, orderId);
    } catch (error) {
      logger.warn('webview.order.cancel_failed', { userId: session.userId, orderId, error: String(error) });
      return sendMessage(req, res, 503, {
        heading: 'We could not cancel your order just now',
        paragraphs: ['Company 1, which holds the orders, is not answering at the moment. Your order is unchanged.', 'Trying again is safe.'],
        retry: { action: `${back}/cancel`, fields: {} },
        link: { href: back, text: 'Back to the order' },
      });
    }
    if (outcome.type === 'not_found') return notFound(req, res, 'Order');
    if (outcome.type === 'not_allowed') {
      return sendMessage(req, res, 409, {
        heading: 'This order can no longer be cancelled',
        paragraphs: [`It is now “${statusLabel(outcome.status)}”. Please contact your Company 2 manager about it.`],
        link: { href: back, text: 'Back to the order' },
      });
    }
    res.redirect(303, `${back}?cancelled=1`);
  });

  // --- the rest of /webview ---------------------------------------------------------------

  router.use('/webview', withSession, (req, res) => notFound(req, res));

  router.use('/webview', (error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Body too large, malformed form: the client's doing.
      return sendMessage(req, res, status, { heading: 'This request could not be read', paragraphs: ['Please go back and try again.'] });
    }
    logger.error('webview.error', { path: req.path, error: String(error) });
    sendMessage(req, res, 500, {
      heading: 'Something went wrong',
      paragraphs: ['Please try again in a minute.'],
      link: sessionOf(req) ? { href: '/webview/orders', text: 'Back to my orders' } : undefined,
    });
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
