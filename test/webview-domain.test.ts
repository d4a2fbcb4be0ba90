import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Order as OrderRow } from '../src/db/schema.js';
import { readFileSync } from 'node:fs';
import { loadMappingsFile, parseMappings } from '../src/mappings/load.js';
import type { Order, OrderStatus } from '../src/partner/schema.js';
import { changesBetween } from '../src/sync/order-history.js';
import { timelineText } from '../src/webview/format.js';
import { webviewTexts } from '../src/webview/texts.js';
import { formErrorText, parseNewOrderForm } from '../src/webview/new-order-form.js';
import { canonicalParts, verifyWebviewToken } from '../src/webview/seamless-auth.js';
import { buildTimeline, canCancel, decideOrderLimit, mergeOrders, webviewCreateKey } from '../src/sync/webview-orders.js';
import { CONFIRMED_AND_PAID, respellings, signWebviewToken, unsignedWebviewToken, WEBVIEW } from './support/webview.js';
import { aCustomerOrder } from './support/orders.js';

const mappings = loadMappingsFile('mappings/default.yaml');

const order = (id: string, patch: Partial<Order> = {}): Order => aCustomerOrder({ id, ...patch });

const row = (o: Order, patch: Partial<OrderRow> = {}): OrderRow => ({
  order_id: o.id,
  user_id: o.userId,
  service_id: o.serviceId,
  contact_id: null,
  deal_id: null,
  partner_status: o.status,
  snapshot: JSON.stringify(o),
  partner_updated_at: Date.parse(o.updatedAt),
  note: null,
  origin: 'webview',
  closed_by_partner: 0,
  info_pushed: 0,
  status_by_bridge: null,
  created_at: Date.parse(o.createdAt) + 50,
  updated_at: Date.parse(o.createdAt) + 50,
  pii_purged_at: null,
  search_name: null,
  phone_digits: null,
  paused_at: null,
  ...patch,
});

describe('canCancel follows the mappings’ transitions', () => {
  it.each<[OrderStatus, boolean]>([
    ['on_approval', true],
    ['approved', true],
    ['in_work', false],
    ['executed', false],
    ['rejected', false],
    ['cancelled', false],
  ])('%s → %s', (status, expected) => {
    expect(canCancel(mappings, status)).toBe(expected);
  });
});

describe('webviewCreateKey', () => {
  it('is the same for the same form and user, different across forms and users', () => {
    expect(webviewCreateKey('u1', 'nonce-a')).toBe(webviewCreateKey('u1', 'nonce-a'));
    expect(webviewCreateKey('u1', 'nonce-a')).not.toBe(webviewCreateKey('u1', 'nonce-b'));
    expect(webviewCreateKey('u1', 'nonce-a')).not.toBe(webviewCreateKey('u2', 'nonce-a'));
    expect(webviewCreateKey('u1', 'x').length).toBeLessThanOrEqual(255);
  });
});

describe('mergeOrders', () => {
  it('takes Company 1’s live state, adds what the bridge knows, keeps recorded orders the list lacks, newest first', () => {
    const a = order('DM-1', { status: 'in_work', createdAt: '2025-03-01T10:00:00.000Z' });
    const b = order('DM-2', { serviceId: 'subscription-month', createdAt: '2025-03-02T10:00:00.000Z' });
    const stale = { ...a, status: 'on_approval' as const };
    const merged = mergeOrders([a], [row(stale, { deal_id: 7 }), row(b)]);
    expect(merged.map((o) => [o.id, o.status, o.serviceId, o.withManager])).toEqual([
      ['DM-2', 'on_approval', 'subscription-month', false],
      ['DM-1', 'in_work', 'trial-lesson', true],
    ]);
  });

  it('falls back to the snapshots when Company 1 did not answer', () => {
    const a = order('DM-1', { cost: 1500 });
    expect(mergeOrders(undefined, [row(a)])).toMatchObject([{ id: 'DM-1', cost: 1500 }]);
  });
});

describe('webviewTexts', () => {
  it('names services in the locale, and an unknown service by its id', () => {
    expect(webviewTexts(mappings, 'ru').services).toEqual([
      { id: 'trial-lesson', name: 'Пробное занятие' },
      { id: 'subscription-month', name: 'Абонемент на месяц' },
    ]);
    expect(webviewTexts(mappings, 'en').serviceName('subscription-month')).toBe('Monthly subscription');
    expect(webviewTexts(mappings, 'ru').serviceName('mystery')).toBe('mystery');
  });

  it('puts the brand and the app from the mappings file into the messages', () => {
    const { t } = webviewTexts(mappings, 'ru');
    expect(t.pages.reopen).toBe('Вернитесь в приложение «Компания 1» и снова откройте страницу «Компания 2»: вход произойдёт автоматически.');
    expect(webviewTexts(mappings, 'en').t.timeline.placedInApp).toBe('In the Company 1 app');
  });
});

describe('the mappings file’s webview section', () => {
  const yaml = readFileSync('mappings/default.yaml', 'utf8');
  it.each<[string, (text: string) => string, RegExp]>([
    ['a service without a name', (t) => t.replace('    trial-lesson: { ru: Пробное занятие, en: Trial lesson }\n', ''), /webview\.services\.trial-lesson: no name for service trial-lesson/],
    ['a name for no service', (t) => t.replace('    trial-lesson: {', '    trial-lessons: {'), /webview\.services\.trial-lessons: no service trial-lessons in services/],
    ['a brand without English', (t) => t.replace('brand: { ru: Компания 2, en: Company 2 }', 'brand: { ru: Компания 2 }'), /webview\.brand\.en/],
    ['no support contact', (t) => t.replace(/  support:\n    phone: .*\n    email: .*\n/, '  support: {}\n'), /webview\.support: needs a phone or an email/],
    ['an unknown time zone', (t) => t.replace('timeZone: Europe/Moscow', 'timeZone: Europe/Mordor'), /webview\.timeZone: must be an IANA time zone/],
  ])('refuses %s, naming it', (_what, edit, message) => {
    const edited = edit(yaml);
    expect(edited).not.toBe(yaml);
    expect(() => parseMappings(edited)).toThrow(message);
  });
});

describe('changesBetween', () => {
  const base = { status: 'on_approval' as const, cost: null, paid: false, subscriptionStatus: null };
  it.each<[string, Partial<typeof base> | Record<string, unknown>, unknown[]]>([
    ['nothing', {}, []],
    ['the status', { status: 'approved' }, [{ field: 'status', status: 'approved' }]],
    ['cost, paid and subscription at once', { cost: 4900, paid: true, subscriptionStatus: 'Активен' }, [
      { field: 'cost', cost: 4900 },
      { field: 'paid', paid: true },
      { field: 'subscriptionStatus', subscriptionStatus: 'Активен' },
    ]],
  ])('%s', (_what, patch, expected) => {
    expect(changesBetween(base, { ...base, ...patch } as typeof base)).toEqual(expected);
  });
});

describe('buildTimeline', () => {
  const t0 = Date.parse('2025-03-01T10:00:00.000Z');
  const at = (ms: number) => new Date(t0 + ms).toISOString();
  const state = { status: 'on_approval' as const, cost: null, paid: false, subscriptionStatus: null };
  const ru = webviewTexts(mappings, 'ru');
  const titles = (entries: ReturnType<typeof buildTimeline>) =>
    entries.map((e) => timelineText(e, ru.t, ru.fmt).title.replace(/\s/g, ' '));

  it('says what changed, at the time each recorded picture first showed it', () => {
    const o = order('DM-1', { status: 'in_work', cost: 4900, paid: true, updatedAt: at(90_000) });
    const timeline = buildTimeline({
      order: o,
      row: row(o, { deal_id: 5 }),
      initialStatus: 'on_approval',
      jobs: [
        { kind: 'order.sync', updatedAt: t0 + 500 },
        { kind: 'order.sync', updatedAt: t0 + 900 },
        { kind: 'deal.reconcile', updatedAt: t0 + 60_050 },
      ],
      history: [
        { at: t0, ...state },
        { at: t0 + 600, ...state }, // additionalInfo written: nothing a person sees
        { at: t0 + 30_000, ...state, status: 'approved' },
        { at: t0 + 60_000, ...state, status: 'in_work' },
        { at: t0 + 90_000, ...state, status: 'in_work', cost: 4900, paid: true },
      ],
    });
    expect(timeline).toEqual([
      { at: t0, event: 'placed', origin: 'webview' },
      { at: t0 + 500, event: 'with_manager' },
      { at: t0 + 30_000, event: 'changed', change: { field: 'status', status: 'approved' } },
      { at: t0 + 60_000, event: 'changed', change: { field: 'status', status: 'in_work' } },
      { at: t0 + 90_000, event: 'changed', change: { field: 'cost', cost: 4900 } },
      { at: t0 + 90_000, event: 'changed', change: { field: 'paid', paid: true } },
    ]);
    expect(titles(timeline)).toEqual(CONFIRMED_AND_PAID);
  });

  it('ends with the order as it is now when it is newer than every recorded picture', () => {
    const o = order('DM-2', { status: 'approved', subscriptionStatus: 'Пробный', updatedAt: at(9000) });
    const timeline = buildTimeline({
      order: o,
      row: row(o, { origin: 'webhook' }),
      initialStatus: 'on_approval',
      jobs: [],
      history: [{ at: t0 + 5000, ...state, status: 'approved' }],
    });
    expect(timeline.map((e) => [e.at - t0, e.event])).toEqual([
      [0, 'placed'],
      [5000, 'changed'],
      [9000, 'changed'],
    ]);
    expect(timeline[0]).toMatchObject({ origin: 'partner' });
    expect(titles(timeline).slice(1)).toEqual(['Заказ подтверждён', 'Статус абонемента: Пробный']);
    expect(timelineText(timeline[0]!, ru.t, ru.fmt).detail).toBe('В приложении «Компания 1»');
  });

  it('an order recorded before its history was kept: one step from the initial state to now', () => {
    const o = order('DM-3', { status: 'cancelled', updatedAt: at(7000) });
    expect(titles(buildTimeline({ order: o, row: row(o), initialStatus: 'on_approval', jobs: [], history: [] }))).toEqual([
      'Заказ оформлен',
      'Заказ отменён',
    ]);
  });

  it('no deal yet: no "with a manager"; no change: only "placed"', () => {
    const o = order('DM-4');
    expect(buildTimeline({ order: o, row: row(o), initialStatus: 'on_approval', jobs: [{ kind: 'order.sync', updatedAt: t0 + 5 }], history: [{ at: t0, ...state }] }).map((e) => e.event)).toEqual(['placed']);
  });
});

describe('decideOrderLimit', () => {
  const limit = { max: 3, windowMs: 600_000 };
  const now = 10_000_000;
  it.each<[string, number[], ReturnType<typeof decideOrderLimit>]>([
    ['none yet', [], { allowed: true }],
    ['two in the window', [now - 1000, now - 2000], { allowed: true }],
    ['three, one of them just out of the window', [now - 600_000, now - 1000, now - 2000], { allowed: true }],
    ['three in the window: the oldest frees a place', [now - 1000, now - 500_000, now - 2000], { allowed: false, count: 3, retryAt: now - 500_000 + 600_000 }],
    ['five in the window (a smaller limit since): the third oldest frees a place', [now - 5, now - 4, now - 3, now - 2, now - 1], { allowed: false, count: 5, retryAt: now - 3 + 600_000 }],
  ])('%s', (_what, startedAt, expected) => {
    expect(decideOrderLimit(startedAt, limit, now)).toEqual(expected);
  });
});

describe('the Russian catalogue and formats', () => {
  const { t, fmt } = webviewTexts(mappings, 'ru');
  const plain = (text: string) => text.replace(/\s/g, ' ');

  it('money in roubles with no-break spaces, kopecks only when there are some', () => {
    expect(fmt.money(4900)).toBe('4\u00a0900\u00a0₽');
    expect(plain(fmt.money(1234567.5))).toBe('1 234 567,50 ₽');
    expect(plain(webviewTexts(mappings, 'en').fmt.money(4900))).toBe('₽4,900');
  });

  it('dates in Russian, in the configured time zone', () => {
    expect(plain(fmt.dateTime('2025-03-05T10:00:00Z'))).toBe('5 марта 2025 г. в 13:00 GMT+3');
    expect(fmt.dateTime('not a date')).toBe('');
  });

  it.each<[number, number, 'm' | 'h' | 'd' | 's', string]>([
    [1, 1, 'm', 'Вы оформили 1 заказ за 1 минуту.'],
    [2, 2, 'h', 'Вы оформили 2 заказа за 2 часа.'],
    [5, 10, 'm', 'Вы оформили 5 заказов за 10 минут.'],
    [21, 21, 'd', 'Вы оформили 21 заказ за 21 день.'],
    [11, 30, 's', 'Вы оформили 11 заказов за 30 секунд.'],
  ])('plural forms: %i orders in %i %s', (count, window, unit, text) => {
    expect(t.limit.placed(count, { count: window, unit })).toBe(text);
  });

  it('how long until the next order, rounded up', () => {
    expect(fmt.inTime(6 * 60_000 + 1)).toBe('через 7 минут');
    expect(fmt.inTime(61_000)).toBe('через 2 минуты');
    expect(fmt.inTime(20_000)).toBe('через 20 секунд');
    expect(fmt.inTime(3 * 3_600_000)).toBe('через 3 часа');
    expect(webviewTexts(mappings, 'en').fmt.inTime(60_000)).toBe('in 1 minute');
  });
});

describe('parseNewOrderForm', () => {
  const valid = { serviceId: 'trial-lesson', firstName: ' Ольга ', lastName: '', phone: '+7 (903) 555-01-01', comment: '  ', nonce: 'a'.repeat(24) };

  it('accepts a valid form, trimmed, without an empty comment', () => {
    expect(parseNewOrderForm(valid, mappings)).toEqual({
      ok: true,
      input: { serviceId: 'trial-lesson', customer: { firstName: 'Ольга', lastName: '', phone: '+7 (903) 555-01-01' }, nonce: valid.nonce },
    });
  });

  const ru = webviewTexts(mappings, 'ru').t;
  it.each<[string, Record<string, unknown>, string, string]>([
    ['unknown service', { serviceId: 'nope' }, 'serviceId', 'Выберите услугу'],
    ['no service', { serviceId: undefined }, 'serviceId', 'Выберите услугу'],
    ['blank first name', { firstName: '   ' }, 'firstName', 'Укажите имя'],
    ['letters for a phone', { phone: 'call me' }, 'phone', 'Укажите телефон, например +7 903 555-01-01'],
    ['a long comment', { comment: 'x'.repeat(2001) }, 'comment', 'Не длиннее 2000 символов'],
    ['a long last name', { lastName: 'x'.repeat(201) }, 'lastName', 'Не длиннее 200 символов'],
    ['a made-up nonce', { nonce: 'short' }, 'nonce', 'Форма устарела: обновите страницу и попробуйте снова'],
    ['a nonce too long', { nonce: 'a'.repeat(65) }, 'nonce', 'Форма устарела: обновите страницу и попробуйте снова'],
    ['an array for a field', { firstName: ['a', 'b'] }, 'firstName', 'Укажите имя'],
  ])('refuses %s, saying why in Russian', (_what, patch, field, text) => {
    const result = parseNewOrderForm({ ...valid, ...patch }, mappings);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(formErrorText(result.errors[field]!, ru)).toBe(text);
  });
});

describe('verifyWebviewToken', () => {
  const settings = { ...WEBVIEW, maxAgeSeconds: 300 };

  it('accepts a good token and reads its claims', async () => {
    const result = await verifyWebviewToken(await signWebviewToken({ sub: 'u9', jti: 'j-1', givenName: ' Анна ' }), settings);
    expect(result).toMatchObject({ ok: true, token: { userId: 'u9', givenName: 'Анна', familyName: 'Смирнова', phone: '+79035550101', tokenId: 'jti:j-1' } });
  });

  it('identifies a token without a jti by the digest of its decoded signature', async () => {
    const token = await signWebviewToken({ jti: null });
    const result = await verifyWebviewToken(token, settings);
    const signature = Buffer.from(token.split('.')[2]!, 'base64url');
    expect(result.ok && result.token.tokenId).toBe(`sig:${createHash('sha256').update(signature).digest('hex')}`);
  });

  it('reads only canonical base64url: respellings of a real token are malformed', async () => {
    const token = await signWebviewToken();
    expect(canonicalParts(token)).toBeDefined();
    for (const [how, spelling] of respellings(token)) {
      expect(await verifyWebviewToken(spelling, settings), how).toMatchObject({ ok: false, reason: 'malformed' });
    }
  });

  it('keeps the replay record only as long as the token could be accepted: iat + max age, whatever its exp', async () => {
    const now = Date.now();
    const nowSeconds = Math.floor(now / 1000);
    const result = await verifyWebviewToken(await signWebviewToken({ issuedAt: -100, expiresIn: 75 * 365 * 86_400 }), { ...settings, maxAgeSeconds: 120 }, now);
    expect(result.ok && result.token.acceptableUntil).toBe((nowSeconds - 100 + 120 + 30) * 1000);
  });

  it.each<[string, number | null, number, string]>([
    ['without iat', null, 300, 'claims'],
    ['issued beyond the max age (and the skew)', -151, 120, 'expired'],
    ['issued in the future beyond the skew', 31, 300, 'claims'],
  ])('refuses a token %s', async (_what, issuedAt, maxAgeSeconds, reason) => {
    const result = await verifyWebviewToken(await signWebviewToken({ issuedAt, expiresIn: 3600 }), { ...settings, maxAgeSeconds });
    expect(result).toMatchObject({ ok: false, reason });
  });

  it('accepts a token issued within the max age and the skew', async () => {
    expect((await verifyWebviewToken(await signWebviewToken({ issuedAt: -140 }), { ...settings, maxAgeSeconds: 120 })).ok).toBe(true);
  });

  it.each<[string, () => Promise<string> | string, string]>([
    ['forged', () => signWebviewToken({ secret: 'x'.repeat(40) }), 'signature'],
    ['expired beyond the skew', () => signWebviewToken({ expiresIn: -31 }), 'expired'],
    ['alg none', () => unsignedWebviewToken(), 'algorithm'],
    ['HS512', () => signWebviewToken({ alg: 'HS512' }), 'algorithm'],
    ['wrong audience', () => signWebviewToken({ audience: 'other' }), 'audience'],
    ['wrong issuer', () => signWebviewToken({ issuer: 'other' }), 'issuer'],
    ['no sub', () => signWebviewToken({ sub: '' }), 'claims'],
    ['garbage', () => 'a.b.c', 'malformed'],
    ['huge', () => 'a'.repeat(5000), 'malformed'],
  ])('refuses %s', async (_what, make, reason) => {
    const result = await verifyWebviewToken(await make(), settings);
    expect(result).toMatchObject({ ok: false, reason });
  });

  it('allows a small clock skew', async () => {
    expect((await verifyWebviewToken(await signWebviewToken({ expiresIn: -20 }), settings)).ok).toBe(true);
  });
});
