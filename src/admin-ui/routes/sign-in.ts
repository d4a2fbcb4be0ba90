import express, { type Router } from 'express';
import { verifyApiKey } from '../../admin/api-keys.js';
import { type AdminKit, SIGNIN_CSRF_COOKIE } from '../kit.js';
import { ADMIN_SESSION_COOKIE, ADMIN_UI_PATH, adminCookieOptions, cookieOf, endAdminSession, sameToken, startAdminSession } from '../session.js';

/** Sign-in with an API key (a form, then a session), and sign-out. */
export function signInRoutes(kit: AdminKit): Router {
  const { db, logger } = kit.deps;
  const { t } = kit;
  const router = express.Router();

  router.get(`${ADMIN_UI_PATH}/sign-in`, kit.withSession, (req, res) => {
    if (kit.sessionOf(req)) return res.redirect(303, ADMIN_UI_PATH);
    kit.sendSignIn(req, res, 200);
  });

  router.post(`${ADMIN_UI_PATH}/sign-in`, kit.readForm, async (req, res) => {
    const body = req.body as Record<string, unknown>;
    if (!sameToken(body._csrf, cookieOf(req, SIGNIN_CSRF_COOKIE))) {
      logger.warn('admin_ui.csrf_rejected', { path: req.path });
      return kit.sendSignIn(req, res, 403, { error: t.pages.formExpiredText });
    }
    const key = typeof body.key === 'string' ? body.key.trim() : '';
    if (!key) return kit.sendSignIn(req, res, 400, { error: t.signIn.empty });
    const caller = await verifyApiKey(db.kysely, key);
    if (!caller) {
      // Neither the key nor any part of it is logged.
      logger.warn('admin_ui.signin_rejected', {});
      return kit.sendSignIn(req, res, 401, { error: t.signIn.refused });
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

  router.post(`${ADMIN_UI_PATH}/sign-out`, kit.readForm, kit.withSession, kit.requireSession, kit.requireCsrf, async (req, res) => {
    const session = kit.sessionOf(req)!;
    const id = cookieOf(req, ADMIN_SESSION_COOKIE);
    if (id) await endAdminSession(db, id);
    kit.forget(req);
    logger.info('admin_ui.signout', { keyId: session.keyId });
    res.clearCookie(ADMIN_SESSION_COOKIE, { path: ADMIN_UI_PATH });
    kit.sendSignIn(req, res, 200, { notice: t.signIn.signedOut });
  });

  return router;
}
