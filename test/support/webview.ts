import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { SignJWT } from 'jose';
import request from 'supertest';
import { expect } from 'vitest';
import type { Stack } from '../../src/sandbox/stack.js';
import { waitFor } from './stack.js';

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
  /** `iat` in seconds from now (negative: issued in the past); null = no iat claim. Default 0. */
  issuedAt?: number | null;
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
    .setExpirationTime(now + (options.expiresIn ?? 300));
  if (options.issuedAt !== null) jwt.setIssuedAt(now + (options.issuedAt ?? 0));
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

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Other spellings of the same signed token, which a lenient base64url decoder reads as
 * the same signature: `=` or a newline appended (`%3D`, `%0A` in the link), and another
 * last character (an HS256 signature is 43 characters, whose last one carries two unused
 * low bits).
 */
export function respellings(token: string): Array<[string, string]> {
  const last = BASE64URL.indexOf(token.at(-1)!);
  const twin = BASE64URL[(last & ~3) | ((last + 1) & 3)]!;
  return [
    ['with %3D appended', `${token}=`],
    ['with %0A appended', `${token}\n`],
    ['with another last base64 character', `${token.slice(0, -1)}${twin}`],
  ];
}

/**
 * One HTTP request sent as written: unlike supertest (WHATWG URL parsing), the path keeps
 * its `.` and `..` segments, as a hand-made request or `curl --path-as-is` sends them.
 */
export function rawRequest(
  baseUrl: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request({ hostname, port, method: options.method ?? 'GET', path: options.path, headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The `name=value` pairs of a response's Set-Cookie headers, for a Cookie header. */
export function cookiesOf(headers: http.IncomingHttpHeaders | Record<string, unknown>): string[] {
  const header = headers['set-cookie'] as string[] | string | undefined;
  const all = header === undefined ? [] : Array.isArray(header) ? header : [header];
  return all.map((c) => c.split(';')[0]!);
}

export type Agent = ReturnType<typeof request.agent>;

/** Signs a fresh agent in as `sub` (it lands on /webview/orders). */
export async function signIn(stack: Stack, sub = 'user-1', claims: TokenOptions = {}): Promise<Agent> {
  const agent = request.agent(stack.bridgeUrl);
  const res = await agent.get('/webview').query({ token: await signWebviewToken({ sub, ...claims }) });
  expect(res.status).toBe(303);
  expect(res.headers.location).toBe('/webview/orders');
  return agent;
}

/** The new-order form's CSRF token and nonce, as a browser would submit them. */
export async function openForm(agent: Agent): Promise<{ csrf: string; nonce: string; html: string }> {
  const res = await agent.get('/webview/orders/new');
  expect(res.status).toBe(200);
  return { csrf: hiddenField(res.text, '_csrf'), nonce: hiddenField(res.text, 'nonce'), html: res.text };
}

/** The new-order form as filled in and sent. */
export const orderForm = (form: { csrf: string; nonce: string }, extra: Record<string, string> = {}) => ({
  _csrf: form.csrf,
  nonce: form.nonce,
  serviceId: 'trial-lesson',
  firstName: 'Ольга',
  lastName: 'Смирнова',
  phone: '+7 903 555-01-01',
  comment: '',
  ...extra,
});

/**
 * A manager moves the order's deal: "Recorded for trial", then straight to "Waiting for
 * payment" at 4 900 ₽ (skipping "Confirmed VU"), then "Payment received". Resolves once
 * Company 1's order shows each step.
 */
export async function confirmAndPay(stack: Stack, orderId: string): Promise<void> {
  const order = () => stack.partner.orders.get(orderId)!;
  const dealId = (await waitFor('the deal', () => order().additionalInfo ?? undefined)).externalId;
  await stack.amo.moveLead(dealId, { statusName: 'Recorded for trial' });
  await waitFor('approved', () => order().status === 'approved');
  await stack.amo.moveLead(dealId, { statusName: 'Waiting for payment' }, { price: 4900 });
  await waitFor('the cost', () => order().cost === 4900);
  await stack.amo.moveLead(dealId, { statusName: 'Payment received' });
  await waitFor('paid', () => order().paid);
}

/** An order's history after confirmAndPay, as its page words it (spaces plain). */
export const CONFIRMED_AND_PAID = [
  'Заказ оформлен',
  'Заказ передан менеджеру',
  'Заказ подтверждён',
  'Заказ в работе',
  'Стоимость: 4 900 ₽',
  'Заказ оплачен',
];
