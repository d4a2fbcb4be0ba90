import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tokenStoreFor } from '../src/amo/token-store.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { captureLogs } from './support/logs.js';
import { testStack, waitFor } from './support/stack.js';

/**
 * /healthz, /readyz and /metrics of a real bridge against both simulators. /readyz is 200
 * while webhooks can be accepted (database up, mappings resolved once) and its body states
 * every outside service as the bridge last found it: `ok`, `unauthorized: <the fix>` or
 * `unreachable since <ISO time of the first failure>`.
 */

const LONG_LIVED_REFUSED = 'unauthorized: AMO_LONG_LIVED_TOKEN was refused by amoCRM: issue a new long-lived token';
const OAUTH_ENV = {
  AMO_LONG_LIVED_TOKEN: '',
  AMO_CLIENT_ID: 'sim-client-id',
  AMO_CLIENT_SECRET: 'sim-client-secret',
  AMO_REDIRECT_URI: 'https://bridge.example/oauth',
};
/** Idle probes this often in tests that watch a service come and go. */
const FAST_PROBE = { healthProbeMs: 100 };

const stacks: Stack[] = [];
afterEach(async () => {
  while (stacks.length) await stacks.pop()?.stop();
});

async function started(...args: Parameters<typeof testStack>): Promise<Stack> {
  const stack = await testStack(...args);
  stacks.push(stack);
  return stack;
}

async function readyz(stack: Stack): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const res = await request(stack.bridge.app).get('/readyz');
  return { status: res.status, body: res.body as { status: string; checks: Record<string, string> } };
}

/** Polls /readyz until `check` (of the body's checks) holds; answers the last response. */
function readyzUntil(stack: Stack, what: string, check: (checks: Record<string, string>, status: number) => boolean) {
  return waitFor(what, async () => {
    const res = await readyz(stack);
    return check(res.body.checks, res.status) ? res : undefined;
  });
}

const SINCE = /^unreachable since (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\b/;

describe('operator endpoints', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack('sqlite', 'health');
  });
  afterAll(async () => stack.stop());

  it('healthz answers while the process is up', async () => {
    expect((await request(stack.bridge.app).get('/healthz')).status).toBe(200);
  });

  it('exposes Prometheus metrics: amoCRM and Company 1 calls by endpoint and outcome, and whether each is up', async () => {
    await stack.bridge.ready;
    await readyzUntil(stack, 'the start-up probe of Company 1', (checks) => checks.partner === 'ok');
    const res = await request(stack.bridge.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/amobridge_amo_requests_total\{endpoint="\/api\/v4\/account",outcome="2xx"\} 1\b/);
    expect(res.text).toMatch(/amobridge_partner_requests_total\{endpoint="GET \/orders",outcome="2xx"\} 1\b/);
    expect(res.text).toMatch(/amobridge_dependency_up\{service="amocrm"\} 1\b/);
    expect(res.text).toMatch(/amobridge_dependency_up\{service="partner"\} 1\b/);
  });

  it('answers unknown routes with problem+json 404', async () => {
    const res = await request(stack.bridge.app).get('/nope');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
  });
});

describe.each(DATABASES)('readiness on %s', (kind) => {
  it('is 200 with every service ok once the mappings are resolved, and /readyz itself calls nobody', async () => {
    const stack = await started(kind, 'health-ok');
    await stack.bridge.ready;
    const res = await readyzUntil(stack, 'both services checked', (checks) => checks.partner === 'ok' && checks.amocrm === 'ok');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ready', checks: { database: 'ok', mappings: 'resolved', amocrm: 'ok', partner: 'ok' } });
    // Company 1 was probed once at start with a harmless read of a reserved user's orders.
    expect(stack.partner.stats.requests.filter((r) => r.method === 'GET' && r.path === '/orders')).toHaveLength(1);

    stack.amo.stats.reset();
    stack.partner.stats.reset();
    for (let i = 0; i < 5; i++) expect((await readyz(stack)).status).toBe(200);
    expect(stack.amo.stats.requests).toEqual([]);
    expect(stack.partner.stats.requests).toEqual([]);
  });

  it('is 503 while amoCRM refuses the long-lived token, says which variable to fix, keeps webhooks, and recovers without a restart', async () => {
    const stack = await started(kind, 'health-refused', { env: { AMO_LONG_LIVED_TOKEN: 'revoked-token' } });
    const refused = await readyzUntil(stack, 'amoCRM to refuse the token', (checks) => checks.amocrm !== 'not checked yet');
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({
      status: 'not ready',
      checks: { database: 'ok', mappings: 'not resolved yet', amocrm: LONG_LIVED_REFUSED, partner: expect.any(String) },
    });

    const order = await stack.partner.createOrderAsUser({
      userId: 'u-wait',
      customer: { firstName: 'A', lastName: 'B', phone: '+79990000000' },
    });
    expect(stack.partner.deliveries.at(-1)).toMatchObject({ orderId: order.id, status: 202 });
    const jobs = await stack.bridge.db.kysely.selectFrom('jobs').select('status').execute();
    expect(jobs.map((j) => j.status)).toEqual(['queued']);
    expect((await readyz(stack)).body.checks.amocrm).toBe(LONG_LIVED_REFUSED);

    // amoCRM accepts the token again: the bridge, still retrying in the background, resolves.
    stack.amo.setLongLivedToken('revoked-token');
    const ready = await readyzUntil(stack, 'readiness after the token is accepted', (_checks, status) => status === 200);
    expect(ready.body.checks).toMatchObject({ database: 'ok', mappings: 'resolved', amocrm: 'ok' });
    await waitFor('the order that waited to reach amoCRM', () => stack.partner.orders.get(order.id)?.additionalInfo ?? undefined);
  });

  it('stays 200 through an amoCRM outage once resolved, saying since when amoCRM is unreachable', async () => {
    const stack = await started(kind, 'health-amo-down', { tuning: FAST_PROBE });
    await stack.bridge.ready;
    await readyzUntil(stack, 'amoCRM ok', (checks) => checks.amocrm === 'ok');

    const before = Date.now();
    stack.amo.faults.outage = true;
    const down = await readyzUntil(stack, 'amoCRM unreachable', (checks) => SINCE.test(checks.amocrm ?? ''));
    expect(down.status).toBe(200);
    expect(down.body.checks).toMatchObject({ database: 'ok', mappings: 'resolved', partner: 'ok' });
    const since = Date.parse(SINCE.exec(down.body.checks.amocrm!)![1]!);
    expect(since).toBeGreaterThanOrEqual(before);
    expect(since).toBeLessThanOrEqual(Date.now());

    // Later failures of the same run do not move the time of the first one.
    const failures = stack.amo.stats.count({ status: 503 });
    await waitFor('more failed probes', () => stack.amo.stats.count({ status: 503 }) >= failures + 2);
    const still = await readyz(stack);
    expect(still.status).toBe(200);
    expect(SINCE.exec(still.body.checks.amocrm!)?.[1]).toBe(new Date(since).toISOString());

    stack.amo.faults.outage = false;
    await readyzUntil(stack, 'amoCRM ok again', (checks, status) => checks.amocrm === 'ok' && status === 200);

    // Closed altogether (connection refused) reads the same way.
    await stack.amo.close();
    const closed = await readyzUntil(stack, 'amoCRM gone', (checks) => SINCE.test(checks.amocrm ?? ''));
    expect(closed.status).toBe(200);
  });

  it('with OAuth, says to run `amobridge oauth <code>` while no token is stored or its refresh is refused, and recovers once one is stored', async () => {
    const stack = await started(kind, 'health-oauth', { env: OAUTH_ENV });
    const missing = await readyzUntil(stack, 'the missing token', (checks) => checks.amocrm !== 'not checked yet');
    expect(missing.status).toBe(503);
    expect(missing.body.checks.amocrm).toMatch(/^unauthorized: no amoCRM OAuth token is stored: run `amobridge oauth <code>`/);

    // A pair amoCRM no longer honours: the access token is refused, its refresh token too.
    const store = tokenStoreFor(stack.bridge.db);
    await store.save({ accessToken: 'revoked-access', refreshToken: 'spent-refresh', expiresAt: Date.now() + 86_400_000 });
    const refused = await readyzUntil(stack, 'the refused refresh', (checks) => /refresh/.test(checks.amocrm ?? ''));
    expect(refused.status).toBe(503);
    expect(refused.body.checks.amocrm).toMatch(/^unauthorized: amoCRM refused the OAuth refresh token: run `amobridge oauth <code>`/);

    const pair = stack.amo.issueTokenPair();
    await store.save({ accessToken: pair.access_token, refreshToken: pair.refresh_token, expiresAt: Date.now() + pair.expires_in * 1000 });
    const ready = await readyzUntil(stack, 'readiness with a good token', (_checks, status) => status === 200);
    expect(ready.body.checks).toMatchObject({ mappings: 'resolved', amocrm: 'ok' });
  });
});

describe('Company 1 in readiness', () => {
  it('says PARTNER_API_TOKEN was refused, without holding readiness back, and counts the refusal', async () => {
    const stack = await started('sqlite', 'health-partner-refused', { env: { PARTNER_API_TOKEN: 'wrong-token' } });
    await stack.bridge.ready;
    const res = await readyzUntil(stack, 'Company 1 to refuse the token', (checks) => checks.partner !== 'not checked yet');
    expect(res.status).toBe(200);
    expect(res.body.checks.partner).toBe('unauthorized: PARTNER_API_TOKEN was refused by Company 1: set the token Company 1 issued for the bridge');
    const metrics = await request(stack.bridge.app).get('/metrics');
    expect(metrics.text).toMatch(/amobridge_partner_requests_total\{endpoint="GET \/orders",outcome="4xx"\} 1\b/);
    expect(metrics.text).toMatch(/amobridge_dependency_up\{service="partner"\} 0\b/);
  });

  it('says since when Company 1 is unreachable, failing or gone, and ok again when it answers', async () => {
    const stack = await started('sqlite', 'health-partner-down', { tuning: FAST_PROBE });
    await stack.bridge.ready;
    await readyzUntil(stack, 'Company 1 ok', (checks) => checks.partner === 'ok');

    const before = Date.now();
    stack.partner.faults.outage = true;
    const down = await readyzUntil(stack, 'Company 1 unreachable', (checks) => SINCE.test(checks.partner ?? ''));
    expect(down.status).toBe(200);
    expect(Date.parse(SINCE.exec(down.body.checks.partner!)![1]!)).toBeGreaterThanOrEqual(before);
    stack.partner.faults.outage = false;
    await readyzUntil(stack, 'Company 1 ok again', (checks) => checks.partner === 'ok');

    await stack.partner.close();
    const gone = await readyzUntil(stack, 'Company 1 gone', (checks) => SINCE.test(checks.partner ?? ''));
    expect(gone.status).toBe(200);
    const metrics = await request(stack.bridge.app).get('/metrics');
    expect(metrics.text).toMatch(/amobridge_partner_requests_total\{endpoint="GET \/orders",outcome="5xx"\} [1-9]/);
    expect(metrics.text).toMatch(/amobridge_partner_requests_total\{endpoint="GET \/orders",outcome="network"\} [1-9]/);
  });
});

describe('a refused amoCRM token in the logs', () => {
  it('is one error naming the fix however often the bridge retries, and once more only after it was ok in between', async () => {
    const logs = captureLogs();
    const stack = await started('sqlite', 'health-401-log', {
      logger: logs.logger,
      env: { AMO_LONG_LIVED_TOKEN: 'revoked-token' },
      tuning: FAST_PROBE,
    });
    const errors = () => logs.events().filter((e) => e.level === 'error');

    await waitFor('several refused attempts to resolve the mappings', () => stack.amo.stats.count({ status: 401 }) >= 5);
    expect(errors()).toEqual([
      expect.objectContaining({ message: 'amocrm.unauthorized', fix: 'AMO_LONG_LIVED_TOKEN was refused by amoCRM: issue a new long-lived token' }),
    ]);
    expect(logs.events().filter((e) => e.level === 'warn')).toEqual([]);

    stack.amo.setLongLivedToken('revoked-token');
    await stack.bridge.ready;
    await readyzUntil(stack, 'amoCRM ok', (checks) => checks.amocrm === 'ok');
    expect(logs.events().map((e) => e.message)).toContain('amocrm.recovered');

    // Refused again after it was ok: the idle probe finds out, and it is news once more.
    stack.amo.setLongLivedToken('yet-another-token');
    const refusals = stack.amo.stats.count({ status: 401 });
    await waitFor('several refused probes', () => stack.amo.stats.count({ status: 401 }) >= refusals + 4);
    expect(errors().map((e) => e.message)).toEqual(['amocrm.unauthorized', 'amocrm.unauthorized']);
    expect((await readyz(stack)).body).toMatchObject({ status: 'ready', checks: { amocrm: LONG_LIVED_REFUSED } });
  });
});
