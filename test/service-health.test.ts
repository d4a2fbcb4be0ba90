import { afterEach, describe, expect, it } from 'vitest';
import { AmoAuthError } from '../src/amo/auth.js';
import { amoRefusalFix } from '../src/amo/health.js';
import { MissingTokenError } from '../src/amo/token-store.js';
import { AmoTransportError, exchangeSignal } from '../src/amo/transport.js';
import { probeDelay } from '../src/health/idle-probe.js';
import { describeHealth, nextHealth, ServiceHealth, type HealthSignal, type HealthState } from '../src/health/service-health.js';
import { HttpError } from '../src/lib/http-error.js';
import { createMetrics } from '../src/metrics.js';
import { PartnerClient, partnerSignal, PROBE_USER_ID } from '../src/partner/client.js';
import { createPartnerSimulator, DEFAULT_PARTNER_API_TOKEN } from '../src/sandbox/partner/index.js';
import { captureLogs } from './support/logs.js';

const T0 = Date.parse('2025-03-01T10:00:00.000Z');
const ok: HealthState = { kind: 'ok' };
const unknown: HealthState = { kind: 'unknown' };
const refused: HealthState = { kind: 'unauthorized', fix: 'fix A' };
const down: HealthState = { kind: 'unreachable', since: T0, reason: 'answered 503' };

describe('nextHealth', () => {
  const cases: Array<[string, HealthState, HealthSignal, HealthState]> = [
    ['an accepted answer is ok, whatever came before', down, { kind: 'ok' }, ok],
    ['an accepted answer ends a refusal', refused, { kind: 'ok' }, ok],
    ['a refusal names its fix', ok, { kind: 'unauthorized', fix: 'fix B' }, { kind: 'unauthorized', fix: 'fix B' }],
    ['the first failure starts the outage now', ok, { kind: 'unreachable', reason: 'ECONNREFUSED' }, { kind: 'unreachable', since: T0 + 5, reason: 'ECONNREFUSED' }],
    ['later failures keep the first failure time, with the latest reason', down, { kind: 'unreachable', reason: 'timeout' }, { kind: 'unreachable', since: T0, reason: 'timeout' }],
    ['an answer that proves nothing about credentials ends an outage', down, { kind: 'reachable' }, ok],
    ['… but does not clear a refusal', refused, { kind: 'reachable' }, refused],
    ['… nor claim ok before any real answer', unknown, { kind: 'reachable' }, unknown],
  ];
  it.each(cases)('%s', (_title, state, signal, expected) => {
    expect(nextHealth(state, signal, T0 + 5)).toEqual(expected);
  });

  it('describes each state as /readyz shows it', () => {
    expect([unknown, ok, refused, down].map(describeHealth)).toEqual([
      'not checked yet',
      'ok',
      'unauthorized: fix A',
      'unreachable since 2025-03-01T10:00:00.000Z: answered 503',
    ]);
  });
});

describe('ServiceHealth', () => {
  it('logs a refusal once per episode, an outage once, and the way back', async () => {
    const logs = captureLogs('debug');
    const metrics = createMetrics();
    let now = T0;
    const health = new ServiceHealth('amocrm', { logger: logs.logger, metrics, now: () => now });
    const signals: HealthSignal[] = [
      { kind: 'unauthorized', fix: 'fix A' },
      { kind: 'unauthorized', fix: 'fix A' },
      { kind: 'unreachable', reason: 'ECONNREFUSED' },
      { kind: 'unreachable', reason: 'ECONNREFUSED' },
      // Still the same episode: amoCRM never accepted us in between.
      { kind: 'unauthorized', fix: 'fix A' },
      { kind: 'unauthorized', fix: 'fix B' },
      { kind: 'ok' },
      { kind: 'ok' },
      { kind: 'unauthorized', fix: 'fix B' },
    ];
    for (const signal of signals) {
      now += 1000;
      health.record(signal);
    }
    expect(logs.events().map((e) => [e.level, e.message, e.fix ?? e.reason ?? e.was])).toEqual([
      ['error', 'amocrm.unauthorized', 'fix A'],
      ['warn', 'amocrm.unreachable', 'ECONNREFUSED'],
      ['error', 'amocrm.unauthorized', 'fix B'],
      ['info', 'amocrm.recovered', 'unauthorized'],
      ['error', 'amocrm.unauthorized', 'fix B'],
    ]);
    expect(health.lastCallAt).toBe(now);
    expect((await metrics.dependencyUp.get()).values).toEqual([{ labels: { service: 'amocrm' }, value: 0 }]);
    health.record({ kind: 'ok' });
    expect((await metrics.dependencyUp.get()).values).toEqual([{ labels: { service: 'amocrm' }, value: 1 }]);
  });
});

describe('idle probe', () => {
  it('waits out the interval since the last call, and probes at once what was never called', () => {
    expect(probeDelay(undefined, T0, 60_000)).toBe(0);
    expect(probeDelay(T0 - 10_000, T0, 60_000)).toBe(50_000);
    expect(probeDelay(T0 - 60_000, T0, 60_000)).toBe(0);
    expect(probeDelay(T0 - 90_000, T0, 60_000)).toBe(0);
  });
});

describe('what amoCRM answers says about its health', () => {
  const cases: Array<[string, string, number | AmoTransportError, HealthSignal | undefined]> = [
    ['a 2xx from the API', '/api/v4/account', 200, { kind: 'ok' }],
    ['a 204 (empty list)', '/api/v4/contacts', 204, { kind: 'ok' }],
    ['a 400 got past authentication', '/api/v4/leads/complex', 400, { kind: 'ok' }],
    ['a 429', '/api/v4/leads', 429, { kind: 'reachable' }],
    ['a 401 waits for the pipeline (a refresh may follow)', '/api/v4/leads', 401, undefined],
    ['a 403 waits for the pipeline too', '/api/v4/leads', 403, undefined],
    ['the OAuth endpoint answering', '/oauth2/access_token', 200, { kind: 'reachable' }],
    ['the OAuth endpoint refusing (the pipeline names the fix)', '/oauth2/access_token', 400, { kind: 'reachable' }],
    ['a 503', '/api/v4/account', 503, { kind: 'unreachable', reason: 'answered 503' }],
    [
      'no answer',
      '/api/v4/account',
      new AmoTransportError('GET', '/api/v4/account', 'no complete answer within 2000 ms', 'timeout', false),
      { kind: 'unreachable', reason: 'no complete answer within 2000 ms' },
    ],
  ];
  it.each(cases)('%s', (_title, path, outcome, expected) => {
    expect(exchangeSignal(path, outcome)).toEqual(expected);
  });

  const refusal = (status: number) => new HttpError('amocrm', 'GET', '/api/v4/account', status, '');
  const fixes: Array<[string, unknown, 'long-lived' | 'oauth', RegExp | undefined]> = [
    ['a refused long-lived token', refusal(401), 'long-lived', /^AMO_LONG_LIVED_TOKEN was refused by amoCRM: issue a new long-lived token$/],
    ['a refused access token after a refresh', refusal(401), 'oauth', /run `amobridge oauth <code>`/],
    ['a 403 (blocked) with a long-lived token', refusal(403), 'long-lived', /403 Forbidden.*AMO_LONG_LIVED_TOKEN/],
    ['a 403 (blocked) with OAuth', refusal(403), 'oauth', /403 Forbidden.*amobridge oauth <code>/],
    ['no stored OAuth token', new MissingTokenError(), 'oauth', /^no amoCRM OAuth token is stored: run `amobridge oauth <code>`/],
    ['a refused refresh', new AmoAuthError('refused'), 'oauth', /^amoCRM refused the OAuth refresh token: run `amobridge oauth <code>`/],
    ['a 500 is no refusal', refusal(500), 'long-lived', undefined],
    ['a 401 from Company 1 is not amoCRM’s', new HttpError('partner', 'GET', '/orders', 401, ''), 'long-lived', undefined],
    ['a timeout is no refusal', new AmoTransportError('GET', '/', 'timeout', 'timeout', false), 'oauth', undefined],
  ];
  it.each(fixes)('%s', (_title, error, kind, expected) => {
    const fix = amoRefusalFix(error, kind);
    if (expected) expect(fix).toMatch(expected);
    else expect(fix).toBeUndefined();
  });
});

describe('Company 1 health and metrics from its client', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    while (cleanups.length) await cleanups.pop()!();
  });

  it('maps statuses to signals', () => {
    expect(partnerSignal(200)).toEqual({ kind: 'ok' });
    expect(partnerSignal(404)).toEqual({ kind: 'ok' });
    expect(partnerSignal(409)).toEqual({ kind: 'ok' });
    expect(partnerSignal(429)).toEqual({ kind: 'reachable' });
    expect(partnerSignal(401)).toMatchObject({ kind: 'unauthorized', fix: expect.stringMatching(/^PARTNER_API_TOKEN was refused/) });
    expect(partnerSignal(403)).toMatchObject({ kind: 'unauthorized' });
    expect(partnerSignal(503)).toEqual({ kind: 'unreachable', reason: 'answered 503' });
    expect(partnerSignal('timeout', 'no answer within 10 ms')).toEqual({ kind: 'unreachable', reason: 'no answer within 10 ms' });
  });

  it('records every request: by method and route in the counter, its outcome in the health', async () => {
    const sim = createPartnerSimulator();
    const baseUrl = await sim.listen();
    cleanups.push(() => sim.close());
    const metrics = createMetrics();
    const logs = captureLogs();
    const health = new ServiceHealth('partner', { logger: logs.logger, metrics });
    const client = (token: string) => new PartnerClient({ baseUrl, token, metrics, health });

    await client(DEFAULT_PARTNER_API_TOKEN).probe();
    expect(sim.stats.requests).toMatchObject([{ method: 'GET', path: '/orders', status: 200 }]);
    expect(health.describe()).toBe('ok');

    await expect(client(DEFAULT_PARTNER_API_TOKEN).getOrder('no-such-order')).rejects.toThrow(HttpError);
    expect(health.describe()).toBe('ok');

    await expect(client('wrong').listOrders(PROBE_USER_ID)).rejects.toThrow(HttpError);
    expect(health.describe()).toBe('unauthorized: PARTNER_API_TOKEN was refused by Company 1: set the token Company 1 issued for the bridge');

    await sim.close();
    await expect(client(DEFAULT_PARTNER_API_TOKEN).probe()).rejects.toThrow(/failed/);
    expect(health.describe()).toMatch(/^unreachable since \S+Z: /);

    const counted = (await metrics.partnerRequests.get()).values.map((v) => [v.labels.endpoint, v.labels.outcome, v.value]);
    expect(counted).toEqual([
      ['GET /orders', '2xx', 1],
      ['GET /orders/:id', '4xx', 1],
      ['GET /orders', '4xx', 1],
      ['GET /orders', 'network', 1],
    ]);
    expect(logs.events().map((e) => e.message)).toEqual(['partner.unauthorized', 'partner.unreachable']);
  });
});
