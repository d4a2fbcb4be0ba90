import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../src/sandbox/stack.js';
import { testStack, waitFor } from './support/stack.js';
import { dealsOfOrder, partnerOrdersOf, signWebviewToken } from './support/webview.js';

/**
 * The webview in a real browser: Debian's Chromium driven by playwright-core (nothing is
 * downloaded), on a phone-sized viewport. Runs on SQLite only: the storage paths it
 * touches are the ones test/webview.test.ts runs on both databases. It also writes the
 * screenshots the README links to (docs/screenshots/).
 */

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.resolve('docs/screenshots');
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'en-GB' };

describe('webview in Chromium', () => {
  let stack: Stack;
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    [stack, browser] = await Promise.all([
      testStack('sqlite', 'webview-browser'),
      chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      }),
    ]);
    await stack.bridge.ready;
    mkdirSync(SCREENSHOTS, { recursive: true });
  });

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await stack?.stop();
  });

  const newContext = async (options: { javaScriptEnabled?: boolean } = {}) => {
    const context = await browser.newContext({ ...PHONE, ...options });
    contexts.push(context);
    return context;
  };

  it('signs in from the token, creates an order, and shows it in work once the deal is confirmed', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const token = await signWebviewToken({ sub: 'browser-user', givenName: 'Ольга', familyName: 'Смирнова', phone: '+79035550101' });

    await page.goto(`${stack.bridgeUrl}/webview?token=${encodeURIComponent(token)}`);
    // The token is gone from the address bar (and from the history entry).
    expect(page.url()).toBe(`${stack.bridgeUrl}/webview/orders`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('My orders');
    const session = (await context.cookies()).find((c) => c.name === 'amobridge_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/webview' });

    await page.getByRole('link', { name: 'New order' }).click();
    await page.waitForURL('**/webview/orders/new');
    // Name and phone come from the token.
    expect(await page.getByLabel('First name').inputValue()).toBe('Ольга');
    expect(await page.getByLabel('Last name').inputValue()).toBe('Смирнова');
    expect(await page.getByLabel('Phone').inputValue()).toBe('+79035550101');
    await page.getByLabel('Trial lesson').check();
    await page.getByLabel('Comment for Company 2').fill('Weekday evenings suit us best. <script>alert(1)</script>');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'webview-new-order.png'), fullPage: true });

    // A double click on the submit button.
    await page.getByRole('button', { name: 'Place order' }).dblclick();
    await page.waitForURL(/\/webview\/orders\/DM-\d+\?created=1$/);
    const orders = partnerOrdersOf(stack, 'browser-user');
    expect(orders).toHaveLength(1);
    const orderId = orders[0]!.id;

    // Company 1 has the order with additionalInfo; amoCRM has its one deal.
    const info = await waitFor('additionalInfo', () => stack.partner.orders.get(orderId)?.additionalInfo ?? undefined);
    const deals = dealsOfOrder(stack, orderId);
    expect(deals).toHaveLength(1);
    expect(info).toEqual({ contactId: expect.any(Number), externalId: deals[0]!.id, closedByDetmir: false });
    expect(await page.locator('.comment').textContent()).toBe('Weekday evenings suit us best. <script>alert(1)</script>');

    // The manager confirms: the deal moves to "Confirmed VU" in amoCRM.
    await stack.amo.moveLead(deals[0]!.id, { statusName: 'Confirmed VU' });
    await waitFor('the order in work at Company 1', () => stack.partner.orders.get(orderId)?.status === 'in_work');
    await page.goto(`${stack.bridgeUrl}/webview/orders/${orderId}`);
    await waitFor('the page to show in_work', async () => {
      if ((await page.locator('[data-status]').first().getAttribute('data-status')) === 'in_work') return true;
      await page.reload();
      return false;
    });
    expect(await page.locator('[data-status]').first().textContent()).toBe('In work');
    expect(await page.getByRole('button', { name: 'Cancel this order' }).count()).toBe(0);
    const timeline = await page.locator('.timeline .event').allTextContents();
    expect(timeline).toEqual(expect.arrayContaining(['Order placed', 'Received by Company 2', 'Passed to a Company 2 manager', 'Now: In work']));
    await page.screenshot({ path: path.join(SCREENSHOTS, 'webview-order.png'), fullPage: true });

    // A second order, still cancellable, so the list shows more than one state.
    await page.goto(`${stack.bridgeUrl}/webview/orders/new`);
    await page.getByLabel('Monthly subscription').check();
    await page.getByRole('button', { name: 'Place order' }).click();
    await page.waitForURL(/\?created=1$/);
    await page.goto(`${stack.bridgeUrl}/webview/orders`);
    expect(await page.locator('.order-card').count()).toBe(2);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'webview-orders.png'), fullPage: true });

    // Signing out ends the session; the pages then ask to come back through the app.
    await page.getByRole('button', { name: /Sign out/ }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('You have signed out');
    await page.goto(`${stack.bridgeUrl}/webview/orders`);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Your session has ended');
  });

  it('an expired token gets the error page and no cookie', async () => {
    const context = await newContext();
    const page = await context.newPage();
    const response = await page.goto(`${stack.bridgeUrl}/webview?token=${await signWebviewToken({ expiresIn: -3600 })}`);
    expect(response?.status()).toBe(401);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('This sign-in link has expired');
    expect(await context.cookies()).toEqual([]);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'webview-error.png'), fullPage: true });
  });

  it('without JavaScript, a double-clicked submit still makes one order', async () => {
    const context = await newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${stack.bridgeUrl}/webview?token=${await signWebviewToken({ sub: 'no-js-user' })}`);
    await page.goto(`${stack.bridgeUrl}/webview/orders/new`);
    await page.getByLabel('Trial lesson').check();
    const posts = () => stack.partner.stats.requests.filter((r) => r.method === 'POST' && (r.body as { userId?: string }).userId === 'no-js-user');
    await page.getByRole('button', { name: 'Place order' }).dblclick();
    // The second submit aborts the first navigation (ERR_ABORTED for a waiter on it), so
    // watch where the page ends up instead.
    await expect.poll(() => page.url(), { timeout: 15_000 }).toMatch(/\?created=1$/);
    await waitFor('the submits to be answered', () => posts().length >= 1 && posts().every((p) => p.status > 0));
    expect(partnerOrdersOf(stack, 'no-js-user')).toHaveLength(1);
    expect(new Set(posts().map((p) => p.idempotencyKey)).size).toBe(1);
  });
});
