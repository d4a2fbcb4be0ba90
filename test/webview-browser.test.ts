import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../src/sandbox/stack.js';
import { describeInBrowser, launchBrowser, missingBrowser, PHONE, screenshot } from './support/browser.js';
import { testStack, waitFor } from './support/stack.js';
import { CONFIRMED_AND_PAID, confirmAndPay, dealsOfOrder, partnerOrdersOf, signWebviewToken } from './support/webview.js';

/**
 * Every page of the webview in a real browser, in Russian: sign-in, my orders, a new
 * order, an order with its timeline, cancelling with confirmation, the order limit,
 * "Continue as …?" and a refused sign-in. Debian's Chromium, on a phone-sized viewport.
 * Runs on SQLite only: the storage paths it touches are the ones test/webview.test.ts
 * runs on both databases. Screenshots: see test/support/browser.ts (`npm run screenshots`).
 */

/** Text as a person reads it: the no-break spaces of "4 900 ₽" as plain ones. */
const plain = (text: string | null) => (text ?? '').replace(/\s+/g, ' ').trim();

describe('browser tests without a browser', () => {
  it('name the Debian package to install', () => {
    expect(missingBrowser('/nonexistent/chromium')).toBe(
      'Chromium was not found at /nonexistent/chromium. Install it with `apt-get install chromium` (Debian), or set CHROMIUM_PATH.',
    );
  });
});

describeInBrowser('webview in Chromium', () => {
  let stack: Stack;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const contexts: BrowserContext[] = [];
  let firstOrder: string;
  let secondOrder: string;

  beforeAll(async () => {
    // Two orders per user in 10 minutes, so the limit page is two orders away.
    [stack, browser] = await Promise.all([testStack('sqlite', 'webview-browser', { env: { WEBVIEW_ORDER_LIMIT: '2/10m' } }), launchBrowser()]);
    await stack.bridge.ready;
    context = await newContext();
    page = await context.newPage();
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await stack?.stop();
  });

  const newContext = async (options: { javaScriptEnabled?: boolean } = {}) => {
    const c = await browser.newContext({ ...PHONE, ...options });
    contexts.push(c);
    return c;
  };
  const heading = async (p = page) => plain(await p.getByRole('heading', { level: 1 }).textContent());
  const signInLink = async (sub: string, givenName: string, familyName = 'Смирнова') =>
    `${stack.bridgeUrl}/webview?token=${encodeURIComponent(await signWebviewToken({ sub, givenName, familyName, phone: '+79035550101' }))}`;

  it('signs in from the token, in Russian, and drops the token from the address', async () => {
    await page.goto(await signInLink('browser-user', 'Ольга'));
    expect(page.url()).toBe(`${stack.bridgeUrl}/webview/orders`);
    expect(await page.locator('html').getAttribute('lang')).toBe('ru');
    expect(await heading()).toBe('Мои заказы');
    expect(plain(await page.locator('.empty').textContent())).toBe('У вас пока нет заказов. Нажмите «Новый заказ», чтобы записаться.');
    expect(plain(await page.locator('.support').textContent())).toBe('Поддержка: +7 800 555-01-02 · support@company2.example');
    const session = (await context.cookies()).find((c) => c.name === 'amobridge_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/webview' });
  });

  it('places a new order from the form, name and phone from the token; a double click makes one order', async () => {
    await page.getByRole('link', { name: 'Новый заказ' }).click();
    await page.waitForURL('**/webview/orders/new');
    expect(await heading()).toBe('Новый заказ');
    expect(await page.getByLabel('Имя', { exact: true }).inputValue()).toBe('Ольга');
    expect(await page.getByLabel('Фамилия').inputValue()).toBe('Смирнова');
    expect(await page.getByLabel('Телефон').inputValue()).toBe('+79035550101');
    await page.getByLabel('Пробное занятие').check();
    await page.getByLabel('Комментарий для менеджера').fill('Удобно по будням вечером. <script>alert(1)</script>');
    await screenshot(page, 'webview-new-order');

    await page.getByRole('button', { name: 'Оформить заказ' }).dblclick();
    await page.waitForURL(/\/webview\/orders\/DM-\d+$/);
    expect(partnerOrdersOf(stack, 'browser-user')).toHaveLength(1);
    firstOrder = partnerOrdersOf(stack, 'browser-user')[0]!.id;
    expect(plain(await page.locator('.notice-success').textContent())).toBe('Заказ оформлен. Менеджер скоро свяжется с вами.');
    expect(await page.locator('.comment').textContent()).toBe('Удобно по будням вечером. <script>alert(1)</script>');
    // Post/redirect/get: a reload does not bring the notice back.
    await page.reload();
    expect(await page.locator('.notice-success').count()).toBe(0);

    // Company 1 has the order with additionalInfo; amoCRM has its one deal.
    const info = await waitFor('additionalInfo', () => stack.partner.orders.get(firstOrder)?.additionalInfo ?? undefined);
    expect(dealsOfOrder(stack, firstOrder).map((d) => d.id)).toEqual([info.externalId]);
  });

  it('shows the order with a timeline that says what changed as the manager moves the deal', async () => {
    await confirmAndPay(stack, firstOrder);

    await page.goto(`${stack.bridgeUrl}/webview/orders/${firstOrder}`);
    expect(await heading()).toBe('Пробное занятие');
    expect(plain(await page.locator('[data-status]').first().textContent())).toBe('В работе');
    expect((await page.locator('.timeline .event').allTextContents()).map(plain)).toEqual(CONFIRMED_AND_PAID);
    expect(plain(await page.locator('.timeline time').first().textContent())).toMatch(/^\d{1,2} [а-я]+ \d{4} г\. в \d{2}:\d{2} GMT\+3$/);
    // No subscription status yet, so no subscription row; in work, so no cancel.
    expect(await page.locator('[data-fact="subscription"]').count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Отменить заказ' }).count()).toBe(0);
    await screenshot(page, 'webview-order');
  });

  it('lists the orders, newest first, with status, cost and payment', async () => {
    await page.goto(`${stack.bridgeUrl}/webview/orders/new`);
    await page.getByLabel('Абонемент на месяц').check();
    await page.getByRole('button', { name: 'Оформить заказ' }).click();
    await page.waitForURL(/\/webview\/orders\/DM-\d+$/);
    secondOrder = partnerOrdersOf(stack, 'browser-user').find((o) => o.id !== firstOrder)!.id;
    await page.getByRole('link', { name: '← Мои заказы' }).click();
    await page.waitForURL('**/webview/orders');
    const cards = page.locator('.order-card');
    expect(await cards.count()).toBe(2);
    expect(plain(await cards.nth(0).locator('.order-title').textContent())).toBe('Абонемент на месяц');
    expect(plain(await cards.nth(1).locator('[data-status]').textContent())).toBe('В работе');
    expect(plain(await cards.nth(1).locator('.facts').textContent())).toContain('Стоимость4 900 ₽');
    await screenshot(page, 'webview-orders');
  });

  it('cancels only after a second step that asks, and that works without JavaScript', async () => {
    // The same session in a browser with JavaScript off.
    const noScript = await newContext({ javaScriptEnabled: false });
    await noScript.addCookies(await context.cookies());
    const p = await noScript.newPage();
    await p.goto(`${stack.bridgeUrl}/webview/orders/${secondOrder}`);
    await p.getByRole('link', { name: 'Отменить заказ' }).click();
    await p.waitForURL(`**/webview/orders/${secondOrder}/cancel`);
    expect(await heading(p)).toBe('Отменить заказ?');
    expect(plain(await p.locator('.confirm p').first().textContent())).toBe(`Абонемент на месяц, заказ ${secondOrder}.`);
    expect(stack.partner.orders.get(secondOrder)!.status).toBe('on_approval');
    await screenshot(p, 'webview-cancel');

    await p.getByRole('button', { name: 'Да, отменить заказ' }).click();
    await p.waitForURL(`**/webview/orders/${secondOrder}`);
    expect(plain(await p.locator('.notice-success').textContent())).toBe('Заказ отменён.');
    expect(plain(await p.locator('[data-status]').first().textContent())).toBe('Отменён');
    expect(stack.partner.orders.get(secondOrder)!.status).toBe('cancelled');
    expect((await p.locator('.timeline .event').allTextContents()).map(plain).at(-1)).toBe('Заказ отменён');
  });

  it('shows the limit page once the user has placed WEBVIEW_ORDER_LIMIT orders in its window', async () => {
    await page.goto(`${stack.bridgeUrl}/webview/orders`);
    const posts = stack.partner.stats.count({ method: 'POST' });
    await page.getByRole('link', { name: 'Новый заказ' }).click();
    expect(await heading()).toBe('Слишком много заказов');
    expect(plain(await page.locator('.error-page').textContent())).toMatch(
      /Вы оформили 2 заказа за 10 минут\. Новый заказ можно будет оформить через (9|10) минут\./,
    );
    expect(stack.partner.stats.count({ method: 'POST' })).toBe(posts);
    await screenshot(page, 'webview-limit');
  });

  it('asks “Continue as …?” when another user’s link opens, and switches only when confirmed', async () => {
    await page.goto(await signInLink('browser-user-2', 'Иван', 'Петров'));
    expect(await heading()).toBe('Продолжить как Иван?');
    expect(plain(await page.locator('.confirm p').first().textContent())).toBe('Сейчас вы вошли как Ольга. Ссылка, по которой вы перешли, — для входа как Иван.');
    await screenshot(page, 'webview-continue-as');

    // Staying keeps Ольга's session and orders.
    await page.getByRole('link', { name: 'Нет, остаться и вернуться к моим заказам' }).click();
    expect(await page.locator('.order-card').count()).toBe(2);

    await page.goto(await signInLink('browser-user-2', 'Иван', 'Петров'));
    await page.getByRole('button', { name: 'Продолжить как Иван' }).click();
    await page.waitForURL('**/webview/orders');
    expect(await page.locator('.order-card').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Выйти (Иван)' }).count()).toBe(1);

    await page.getByRole('button', { name: /Выйти/ }).click();
    expect(await heading()).toBe('Вы вышли');
    await page.goto(`${stack.bridgeUrl}/webview/orders`);
    expect(await heading()).toBe('Сеанс завершён');
  });

  it('an expired sign-in link gets the error page and no cookie', async () => {
    const c = await newContext();
    const p = await c.newPage();
    const response = await p.goto(`${stack.bridgeUrl}/webview?token=${await signWebviewToken({ expiresIn: -3600 })}`);
    expect(response?.status()).toBe(401);
    expect(await heading(p)).toBe('Срок действия ссылки для входа истёк');
    expect(await c.cookies()).toEqual([]);
    await screenshot(p, 'webview-error');
  });

  it('without JavaScript, a double-clicked submit still makes one order', async () => {
    const c = await newContext({ javaScriptEnabled: false });
    const p = await c.newPage();
    await p.goto(await signInLink('no-js-user', 'Анна'));
    await p.goto(`${stack.bridgeUrl}/webview/orders/new`);
    await p.getByLabel('Пробное занятие').check();
    const posts = () => stack.partner.stats.requests.filter((r) => r.method === 'POST' && (r.body as { userId?: string }).userId === 'no-js-user');
    await p.getByRole('button', { name: 'Оформить заказ' }).dblclick();
    // The second submit aborts the first navigation (ERR_ABORTED for a waiter on it), so
    // watch where the page ends up instead.
    await expect.poll(() => p.url(), { timeout: 15_000 }).toMatch(/\/webview\/orders\/DM-\d+$/);
    await waitFor('the submits to be answered', () => posts().length >= 1 && posts().every((r) => r.status > 0));
    expect(partnerOrdersOf(stack, 'no-js-user')).toHaveLength(1);
    expect(new Set(posts().map((r) => r.idempotencyKey)).size).toBe(1);
  });
});
