import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Stack } from '../src/sandbox/stack.js';
import { adminKey, deadOrderJob } from './support/admin-ui.js';
import { describeInBrowser, launchBrowser, PHONE, screenshot } from './support/browser.js';
import { linkedOrder } from './support/orders.js';
import { testStack, waitFor } from './support/stack.js';

/**
 * The admin page in a real browser, in Russian, at a laptop's width and a phone's: sign-in
 * with an API key, the overview, the dead letters and a replay, sign-out. Debian's
 * Chromium; SQLite only (test/admin-ui.test.ts runs the same storage on both databases).
 * Screenshots: docs/screenshots/admin-*.png with `npm run screenshots`.
 */

const LAPTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 }, locale: 'ru-RU' };

/** Text as a person reads it: no-break spaces as plain ones. */
const plain = (text: string | null) => (text ?? '').replace(/\s+/g, ' ').trim();

describeInBrowser('admin page in Chromium', () => {
  let stack: Stack;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  let key: string;

  beforeAll(async () => {
    [stack, browser] = await Promise.all([testStack('sqlite', 'admin-ui-browser'), launchBrowser()]);
    await stack.bridge.ready;
    key = (await adminKey(stack, 'Дежурный', ['jobs:read', 'jobs:replay', 'orders:read', 'orders:write', 'quota:read'])).key;
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await stack?.stop();
  });

  const newPage = async (options: BrowserContextOptions) => {
    const context = await browser.newContext(options);
    contexts.push(context);
    return { context, page: await context.newPage() };
  };
  const heading = async (p: Page) => plain(await p.getByRole('heading', { level: 1 }).textContent());
  /** Whether the page fits its viewport's width (nothing to scroll sideways). */
  const fitsWidth = (p: Page) => p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

  const signIn = async (p: Page) => {
    await p.goto(`${stack.bridgeUrl}/admin/ui`);
    await p.waitForURL('**/admin/ui/sign-in');
    await p.getByLabel('API-ключ').fill(key);
    await p.getByRole('button', { name: 'Войти' }).click();
    await p.waitForURL(/\/admin\/ui$/);
  };

  it('on a laptop: signs in with the key, refusing a wrong one, into a Strict, httpOnly session cookie', async () => {
    const { context, page } = await newPage(LAPTOP);
    await page.goto(`${stack.bridgeUrl}/admin/ui`);
    await page.waitForURL('**/admin/ui/sign-in');
    expect(await page.locator('html').getAttribute('lang')).toBe('ru');
    expect(await heading(page)).toBe('Вход');
    expect(await page.getByLabel('API-ключ').getAttribute('type')).toBe('password');

    await page.getByLabel('API-ключ').fill(`${key.slice(0, -3)}abc`);
    await page.getByRole('button', { name: 'Войти' }).click();
    expect(plain(await page.getByRole('alert').textContent())).toBe('Ключ не подошёл: он неверен, отозван или введён не полностью.');
    expect(await page.getByLabel('API-ключ').inputValue()).toBe('');
    expect(await page.getByLabel('API-ключ').getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, 'admin-sign-in');

    await page.getByLabel('API-ключ').fill(key);
    await page.getByRole('button', { name: 'Войти' }).click();
    await page.waitForURL(/\/admin\/ui$/);
    expect(await heading(page)).toBe('Обзор');
    const session = (await context.cookies()).find((c) => c.name === 'amobridge_admin');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin/ui' });
    expect(await page.content()).not.toContain(key);
  });

  it('on a laptop: the overview, then the dead letters, a replay and its one-time notice', async () => {
    const { order, jobId } = await deadOrderJob(stack, 'browser-dead-1');
    const { page } = await newPage(LAPTOP);
    await signIn(page);
    expect(plain(await page.locator('[data-service="amocrm"] dd').textContent())).toBe('работает');
    expect(plain(await page.locator('[data-service="partner"] dd').textContent())).toBe('работает');
    expect(plain(await page.locator('.dead-count').textContent())).toBe('1 задание с ошибкой ждёт решения. Открыть задания с ошибкой');
    expect(plain(await page.locator('tr[data-kind="order.sync"] td[data-state="dead"]').textContent())).toBe('1');
    expect(plain(await page.locator('.oldest').textContent())).toBe('Ни одно задание не ждёт.');
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, 'admin-overview');

    await page.getByRole('link', { name: 'Открыть задания с ошибкой' }).click();
    await page.waitForURL('**/admin/ui/dead');
    expect(await heading(page)).toBe('Задания с ошибкой');
    expect(await page.getByRole('link', { name: 'Задания с ошибкой' }).getAttribute('aria-current')).toBe('page');
    const card = page.locator(`[data-job="${jobId}"]`);
    // The error's first line in sight, the whole text (a stack) one click away.
    expect(plain(await card.locator('p.error-text').textContent())).toMatch(/^partner PATCH \/orders\/\S+ answered 404/);
    expect(await card.locator('pre.error-text').isVisible()).toBe(false);
    await card.getByText('Полный текст').click();
    expect(await card.locator('pre.error-text').isVisible()).toBe(true);
    await screenshot(page, 'admin-dead');

    // Company 1 has the order again: the replay goes through.
    stack.partner.orders.set(order.id, order);
    await page.getByRole('button', { name: `Повторить задание ${jobId}` }).click();
    await page.waitForURL('**/admin/ui/dead');
    expect(plain(await page.locator('.notice-success').textContent())).toBe(`Задание ${jobId} возвращено в очередь.`);
    await waitFor('the replayed job to link the order', () => stack.partner.orders.get(order.id)?.additionalInfo ?? undefined);
    await screenshot(page, 'admin-replayed');
    await page.reload();
    expect(await page.locator('.notice-success').count()).toBe(0);
    expect(plain(await page.locator('.empty').textContent())).toBe('Заданий с ошибкой нет.');
  });

  it('on a laptop: finds an order, opens it with its timeline, pauses and resumes it', async () => {
    const { order } = await linkedOrder(stack, 'browser-order-user');
    const { page } = await newPage(LAPTOP);
    await signIn(page);
    // Today's calls on the overview: the order's intake made some on both sides.
    expect(Number(plain(await page.locator('tr[data-peer="amocrm"] td[data-window="day"]').textContent()).replace(/\s/g, ''))).toBeGreaterThan(0);

    await page.getByRole('link', { name: 'Заказы' }).click();
    await page.waitForURL('**/admin/ui/orders');
    await page.getByLabel('Что искать').fill('browser-order-user');
    await page.getByLabel('Статус').selectOption('on_approval');
    await page.getByRole('button', { name: 'Найти' }).click();
    await page.waitForURL(/\/admin\/ui\/orders\?q=browser-order-user&status=on_approval$/);
    expect(await page.locator('[data-order]').count()).toBe(1);
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, 'admin-orders');

    await page.getByRole('link', { name: `Заказ ${order.id}` }).click();
    await page.waitForURL(`**/admin/ui/orders/${order.id}`);
    expect(await heading(page)).toBe(`Заказ ${order.id}`);
    await page.getByRole('button', { name: 'Поставить на паузу' }).click();
    await page.waitForURL(`**/admin/ui/orders/${order.id}`);
    expect(plain(await page.locator('.notice-success').textContent())).toBe(`Заказ ${order.id} поставлен на паузу.`);
    expect(await page.locator('.timeline [data-event="order.paused"]').count()).toBe(1);
    await screenshot(page, 'admin-order');

    await page.getByRole('button', { name: 'Снять с паузы' }).click();
    await page.waitForURL(`**/admin/ui/orders/${order.id}`);
    expect(plain(await page.locator('.notice-success').textContent())).toMatch(/^Заказ \S+ снят с паузы/);
    expect(await page.getByRole('button', { name: 'Поставить на паузу' }).count()).toBe(1);
  });

  it('on a phone: the same pages fit the screen, and sign-out ends the session', async () => {
    const { jobId } = await deadOrderJob(stack, 'browser-dead-2');
    const { page } = await newPage(PHONE);
    await signIn(page);
    expect(await heading(page)).toBe('Обзор');
    expect(await fitsWidth(page)).toBe(true);
    // Every count in sight, the dead ones included: nothing hides in a sideways scroll.
    const dead = await page.locator('tr[data-kind="order.sync"] td[data-state="dead"]').boundingBox();
    expect(dead!.x + dead!.width).toBeLessThanOrEqual(PHONE.viewport!.width);
    const deadCell = page.locator('tr[data-kind="order.sync"] td[data-state="dead"]');
    expect([await deadCell.getAttribute('data-label'), plain(await deadCell.textContent())]).toEqual(['С ошибкой', '1']);
    await screenshot(page, 'admin-overview-phone');

    await page.getByRole('link', { name: 'Задания с ошибкой' }).first().click();
    await page.waitForURL('**/admin/ui/dead');
    expect(await page.locator(`[data-job="${jobId}"]`).count()).toBe(1);
    expect(await fitsWidth(page)).toBe(true);
    // The replay button is a comfortable target for a thumb.
    const button = await page.getByRole('button', { name: `Повторить задание ${jobId}` }).boundingBox();
    expect(button!.height).toBeGreaterThanOrEqual(44);
    await screenshot(page, 'admin-dead-phone');

    await page.getByRole('link', { name: 'Заказы' }).click();
    await page.waitForURL('**/admin/ui/orders');
    expect(await fitsWidth(page)).toBe(true);
    await page.locator('.order-link').first().click();
    await page.waitForURL(/\/admin\/ui\/orders\/DM-\d+$/);
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, 'admin-order-phone');

    await page.getByRole('button', { name: 'Выйти' }).click();
    expect(plain(await page.getByRole('status').textContent())).toBe('Вы вышли.');
    await page.goto(`${stack.bridgeUrl}/admin/ui/dead`);
    await page.waitForURL('**/admin/ui/sign-in');
    expect(await heading(page)).toBe('Вход');
  });
});
