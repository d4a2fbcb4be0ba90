import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Stack } from '../../src/sandbox/stack.js';

/** The sandbox's webview settings (src/sandbox/stack.ts). */
export const WEBVIEW = {
  secret: 'sandbox-webview-jwt-secret-0123456789abcdef',
  issuer: 'company1',
  audience: 'amobridge',
};

export interface TokenOptions {
  sub?: string;
  givenName?: string;
  familyName?: string;
  phone?: string;
  /** Seconds from now; negative for an expired token. Default 300. */
  expiresIn?: number;
  issuer?: string;
  audience?: string;
  secret?: string;
  alg?: 'HS256' | 'HS512';
  /** undefined = a fresh random jti; null = no jti claim. */
  jti?: string | null;
}

/** A sign-in token as Company 1 makes it. */
export async function signWebviewToken(options: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({
    given_name: options.givenName ?? 'Ольга',
    family_name: options.familyName ?? 'Смирнова',
    phone_number: options.phone ?? '+79035550101',
  })
    .setProtectedHeader({ alg: options.alg ?? 'HS256', typ: 'JWT' })
    .setSubject(options.sub ?? 'user-1')
    .setIssuer(options.issuer ?? WEBVIEW.issuer)
    .setAudience(options.audience ?? WEBVIEW.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 300));
  if (options.jti !== null) jwt.setJti(options.jti ?? randomUUID());
  return jwt.sign(new TextEncoder().encode(options.secret ?? WEBVIEW.secret));
}

/** An unsecured token (`alg: none`) with otherwise valid claims: must never sign in. */
export function unsignedWebviewToken(sub = 'user-1'): string {
  const now = Math.floor(Date.now() / 1000);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({
    sub,
    iss: WEBVIEW.issuer,
    aud: WEBVIEW.audience,
    exp: now + 300,
    iat: now,
    jti: randomUUID(),
  })}.`;
}

/** The value of the hidden input `name` in an HTML page. */
export function hiddenField(html: string, name: string): string {
  const match = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(html);
  if (!match) throw new Error(`no hidden field ${name} in the page`);
  return match[1]!;
}

/** Orders the partner simulator holds for a user. */
export function partnerOrdersOf(stack: Stack, userId: string) {
  return [...stack.partner.orders.values()].filter((o) => o.userId === userId);
}

/** Deals in the amoCRM simulator whose detmirOrderId is the order's id. */
export function dealsOfOrder(stack: Stack, orderId: string) {
  const field = stack.amo.fieldIdByName('leads', 'detmirOrderId');
  return [...stack.amo.state.leads.values()].filter((lead) =>
    (lead.custom_fields_values ?? []).some((f) => f.field_id === field && f.values.some((v) => v.value === orderId)),
  );
}
