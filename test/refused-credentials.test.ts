import { afterEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/connect.js';
import { DEFAULT_MAX_ATTEMPTS } from '../src/queue/enqueue.js';
import { SANDBOX_LONG_LIVED_TOKEN, type Stack } from '../src/sandbox/stack.js';
import { DEFAULT_PARTNER_API_TOKEN } from '../src/sandbox/partner/index.js';
import { HttpError } from '../src/lib/http-error.js';
import { MissingTokenError } from '../src/amo/token-store.js';
import { enqueue } from '../src/queue/enqueue.js';
import { describeFailure } from '../src/queue/failure.js';
import { failJob, REFUSAL_MAX_WAIT_MS } from '../src/queue/finish.js';
import { leaseJobs } from '../src/queue/lease.js';
import { DATABASES, dropDb, freshDb } from './support/databases.js';
import { captureLogs } from './support/logs.js';
import { restartBridge, testStack, waitFor } from './support/stack.js';

const customer = { firstName: 'Ольга', lastName: 'Смирнова', phone: '+79035550101' };

const orderJobs = (db: Db) =>
  db.kysely.selectFrom('jobs').select(['id', 'status', 'attempts', 'max_attempts', 'last_error']).where('kind', '=', 'order.sync').execute();

/**
 * Credentials that are wrong until an operator fixes them: order jobs wait, retried with
 * backoff, however long it takes, instead of spending their attempts into the dead letter;
 * the refusal is one error in the logs, naming the fix.
 */
describe.each(DATABASES)('refused credentials on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('amoCRM refusing the token: orders wait, and reach amoCRM once the token is fixed', async () => {
    const logs = captureLogs();
    stack = await testStack(kind, `refused-amo-${kind}`, { logger: logs.logger });
    await stack.bridge.ready;
    stack.amo.setLongLivedToken('issued-after-a-leak');

    const order = await stack.partner.createOrderAsUser({ userId: 'waits', customer });
    // More refusals than the job has attempts.
    await waitFor('amoCRM to refuse the order more often than its attempts', () => stack!.amo.stats.count({ status: 401 }) > DEFAULT_MAX_ATTEMPTS + 2, 20_000);
    const [job] = await orderJobs(stack.bridge.db);
    expect(job!.status).not.toBe('dead');
    expect(job!.max_attempts - job!.attempts).toBeGreaterThan(0);
    expect(logs.events().filter((e) => e.level === 'error').map((e) => e.message)).toEqual(['amocrm.unauthorized']);

    stack.amo.setLongLivedToken(SANDBOX_LONG_LIVED_TOKEN);
    await waitFor('the order to reach amoCRM', () => stack!.partner.orders.get(order.id)?.additionalInfo, 10_000);
    await waitFor('the order job to be done', async () => (await orderJobs(stack!.bridge.db)).every((j) => j.status === 'done'));
  }, 60_000);

  it('Company 1 refusing PARTNER_API_TOKEN: orders wait, and are written back after a restart with the right token', async () => {
    const logs = captureLogs();
    stack = await testStack(kind, `refused-partner-${kind}`, { logger: logs.logger, env: { PARTNER_API_TOKEN: 'not-the-issued-token' } });
    await stack.bridge.ready;

    const order = await stack.partner.createOrderAsUser({ userId: 'waits', customer });
    await waitFor('Company 1 to refuse the bridge more often than the job has attempts', () => stack!.partner.stats.requests.filter((r) => r.status === 401).length > DEFAULT_MAX_ATTEMPTS + 2, 20_000);
    const [job] = await orderJobs(stack.bridge.db);
    expect(job!.status).not.toBe('dead');
    expect(logs.events().filter((e) => e.level === 'error').map((e) => e.message)).toEqual(['partner.unauthorized']);

    // The operator sets the token Company 1 issued and restarts.
    stack = await restartBridge(stack, { PARTNER_API_TOKEN: DEFAULT_PARTNER_API_TOKEN }, { logger: logs.logger });
    await waitFor('the order to be written back', () => stack!.partner.orders.get(order.id)?.additionalInfo, 10_000);
    await waitFor('the order job to be done', async () => (await orderJobs(stack!.bridge.db)).every((j) => j.status === 'done'));
    expect(stack.amo.state.leads.size).toBe(1);
  }, 60_000);
});

describe.each(DATABASES)('a refusal in the queue on %s', (kind) => {
  it.each([
    ['a 401 from amoCRM', new HttpError('amocrm', 'GET', '/api/v4/leads', 401, '{"title":"Unauthorized"}')],
    ['a 401 from Company 1', new HttpError('partner', 'PATCH', '/orders/DM-1', 401, '')],
    ['no stored OAuth token', new MissingTokenError()],
  ])('%s: the job waits, its attempt given back, at most a minute', async (_what, error) => {
    const db = await freshDb(kind, `refusal-wait-${kind}`);
    try {
      await enqueue(db.kysely, { kind: 'order.sync', key: 'order:DM-1', maxAttempts: 1 });
      const [job] = await leaseJobs(db, { workerId: 'w', limit: 1, leaseMs: 10_000 });
      const now = Date.now();
      // Spent by the count, and a far backoff by the policy: neither applies to a refusal.
      const outcome = await failJob(db.kysely, { ...job!, attempts: 30 }, describeFailure(error), { baseMs: 1_000, maxMs: 3_600_000 }, now);
      expect(outcome).toBe('wait');
      const row = await db.kysely.selectFrom('jobs').selectAll().executeTakeFirstOrThrow();
      expect(row).toMatchObject({ status: 'retrying', attempts: 1, max_attempts: 2 });
      expect(row.run_at).toBeLessThanOrEqual(now + REFUSAL_MAX_WAIT_MS);
      expect(row.run_at).toBeGreaterThanOrEqual(now + REFUSAL_MAX_WAIT_MS / 2);
    } finally {
      await dropDb(db);
    }
  });

  it('a 403 is still permanent', async () => {
    expect(describeFailure(new HttpError('partner', 'PATCH', '/orders/DM-1', 403, '')).refused).toBe(false);
  });
});
