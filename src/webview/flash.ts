import type { CookieOptions, Request, Response } from 'express';

/**
 * One-time notices after a POST ("your order is placed"): post/redirect/get, with the
 * notice in a short-lived signed cookie that the next page of that order shows once and
 * clears, so a reload does not bring it back. Works without JavaScript.
 */

export const FLASH_COOKIE = 'amobridge_flash';
/** Long enough for the redirect to be followed, short enough not to surface later. */
const FLASH_TTL_MS = 60_000;

export type FlashKind = 'created' | 'cancelled';
export interface Flash {
  kind: FlashKind;
  orderId: string;
}

export function flashCookie(flash: Flash, secure: boolean): { name: string; value: string; options: CookieOptions } {
  return {
    name: FLASH_COOKIE,
    value: `${flash.kind}:${flash.orderId}`,
    // As the session cookie (session.ts), signed with the same key.
    options: { httpOnly: true, sameSite: 'lax', secure, path: '/webview', signed: true, maxAge: FLASH_TTL_MS },
  };
}

/** The notice waiting for this order's page, cleared as it is read; undefined when none. */
export function readFlash(req: Request, res: Response, orderId: string): FlashKind | undefined {
  const signed: Record<string, unknown> = req.signedCookies ?? {};
  const value = signed[FLASH_COOKIE];
  if (typeof value !== 'string') return undefined;
  res.clearCookie(FLASH_COOKIE, { path: '/webview' });
  const [kind, id] = value.split(':', 2);
  return id === orderId && (kind === 'created' || kind === 'cancelled') ? kind : undefined;
}
