import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Order as OrderRow } from '../src/db/schema.js';
import { loadMappingsFile } from '../src/mappings/load.js';
import type { Order, OrderStatus } from '../src/partner/schema.js';
import { timelineText } from '../src/webview/format.js';
import { parseNewOrderForm } from '../src/webview/new-order-form.js';
import { canonicalParts, verifyWebviewToken } from '../src/webview/seamless-auth.js';
import { buildTimeline, canCancel, mergeOrders, webviewCreateKey } from '../src/sync/webview-orders.js';
import { respellings, signWebviewToken, unsignedWebviewToken, WEBVIEW } from './support/webview.js';

const mappings = loadMappingsFile('mappings/default.yaml');

const order = (id: string, patch: Partial<Order> = {}): Order => ({
  id,
  userId: 'u1',
  serviceId: 'trial-lesson',
  status: 'on_approval',
  cost: null,
  paid: false,
  subscriptionStatus: null,
  customer: { firstName: 'Ольга', lastName: 'Смирнова', phone: '+79035550101' },
  additionalInfo: null,
  createdAt: '2025-03-01T10:00:00.000Z',
  updatedAt: '2025-03-01T10:00:00.000Z',
  ...patch,
});

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
  created_at: Date.parse(o.createdAt) + 50,
  updated_at: Date.parse(o.createdAt) + 50,
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
    const merged = mergeOrders(mappings, [a], [row(stale, { deal_id: 7 }), row(b)]);
    expect(merged.map((o) => [o.id, o.status, o.serviceName, o.withManager])).toEqual([
      ['DM-2', 'on_approval', 'Monthly subscription', false],
      ['DM-1', 'in_work', 'Trial lesson', true],
    ]);
  });

  it('falls back to the snapshots when Company 1 did not answer', () => {
    const a = order('DM-1', { cost: 1500 });
    expect(mergeOrders(mappings, undefined, [row(a)])).toMatchObject([{ id: 'DM-1', cost: 1500 }]);
  });

  it('names an unknown service by its id', () => {
    expect(mergeOrders(mappings, [order('DM-1', { serviceId: 'mystery' })], [])[0]!.serviceName).toBe('mystery');
  });
});

describe('buildTimeline', () => {
  const t0 = Date.parse('2025-03-01T10:00:00.000Z');

  it('a webview order: placed, received, with a manager, updated, and how it stands now (last)', () => {
    const o = order('DM-1', { status: 'in_work', updatedAt: new Date(t0 + 60_000).toISOString() });
    const timeline = buildTimeline({
      order: o,
      row: row(o, { deal_id: 5, created_at: t0 + 10 }),
      jobs: [
        { kind: 'order.sync', updatedAt: t0 + 500 },
        { kind: 'order.sync', updatedAt: t0 + 900 },
        // Recorded a little after Company 1's updatedAt: "now" still closes the timeline.
        { kind: 'deal.reconcile', updatedAt: t0 + 60_050 },
      ],
      reports: [],
    });
    expect(timeline).toEqual([
      { at: t0, event: 'placed', origin: 'webview' },
      { at: t0 + 10, event: 'received' },
      { at: t0 + 500, event: 'with_manager' },
      { at: t0 + 60_050, event: 'manager_update' },
      { at: t0 + 60_000, event: 'now', status: 'in_work', changed: true },
    ]);
    expect(timeline.map((e) => timelineText(e).title)).toEqual([
      'Order placed',
      'Received by Company 2',
      'Passed to a Company 2 manager',
      'Updated by your Company 2 manager',
      'Now: In work',
    ]);
  });

  it('an order from Company 1’s app: its status reports, without repeats or the created event', () => {
    const o = order('DM-2', { status: 'cancelled', updatedAt: new Date(t0 + 9000).toISOString() });
    const timeline = buildTimeline({
      order: o,
      row: row(o, { origin: 'webhook', created_at: t0 + 20 }),
      jobs: [],
      reports: [
        { receivedAt: t0 + 20, type: 'order.created', status: 'on_approval' },
        { receivedAt: t0 + 5000, type: 'order.updated', status: 'approved' },
        { receivedAt: t0 + 6000, type: 'order.updated', status: 'approved' },
        { receivedAt: t0 + 9000, type: 'order.updated', status: 'cancelled' },
      ],
    });
    expect(timeline.map((e) => e.event)).toEqual(['placed', 'received', 'reported', 'reported', 'now']);
    expect(timeline[0]).toMatchObject({ origin: 'partner' });
    expect(timeline.map((e) => timelineText(e).title).slice(2)).toEqual(['Status: Approved', 'Status: Cancelled', 'Now: Cancelled']);
  });

  it('no deal yet: no "with a manager", and "now" without a change', () => {
    const o = order('DM-3');
    expect(buildTimeline({ order: o, row: row(o), jobs: [{ kind: 'order.sync', updatedAt: t0 + 5 }], reports: [] }).map((e) => e.event)).toEqual([
      'placed',
      'received',
      'now',
    ]);
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

  it.each<[string, Record<string, unknown>, string]>([
    ['unknown service', { serviceId: 'nope' }, 'serviceId'],
    ['no service', { serviceId: undefined }, 'serviceId'],
    ['blank first name', { firstName: '   ' }, 'firstName'],
    ['letters for a phone', { phone: 'call me' }, 'phone'],
    ['a long comment', { comment: 'x'.repeat(2001) }, 'comment'],
    ['a made-up nonce', { nonce: 'short' }, 'nonce'],
    ['an array for a field', { firstName: ['a', 'b'] }, 'firstName'],
  ])('refuses %s', (_what, patch, field) => {
    const result = parseNewOrderForm({ ...valid, ...patch }, mappings);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(Object.keys(result.errors)).toContain(field);
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
