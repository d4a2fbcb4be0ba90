import { afterEach, describe, expect, it } from 'vitest';
import { createBridge } from '../src/bridge.js';
import type { Db } from '../src/db/connect.js';
import { DEFAULT_MAX_ATTEMPTS } from '../src/queue/enqueue.js';
import { SANDBOX_LONG_LIVED_TOKEN, type Stack } from '../src/sandbox/stack.js';
import { DEFAULT_PARTNER_API_TOKEN } from '../src/sandbox/partner/index.js';
import { DATABASES } from './support/databases.js';
import { captureLogs } from './support/logs.js';
import { testStack, waitFor } from './support/stack.js';

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
    const { config } = stack.bridge;
    const schema = stack.bridge.db.schema;
    await stack.bridge.stop();
    const bridge = await createBridge({ ...config, PARTNER_API_TOKEN: DEFAULT_PARTNER_API_TOKEN }, logs.logger, {
      dbSchema: schema,
      pollMs: 20,
      settleMs: 300,
      backoff: { baseMs: 50, maxMs: 500 },
    });
    const { amo, partner } = stack;
    stack = {
      ...stack,
      bridge,
      async stop() {
        await bridge.stop();
        await Promise.all([amo.close(), partner.close()]);
      },
    };
    await bridge.ready;
    await waitFor('the order to be written back', () => stack!.partner.orders.get(order.id)?.additionalInfo, 10_000);
    await waitFor('the order job to be done', async () => (await orderJobs(bridge.db)).every((j) => j.status === 'done'));
    expect(stack.amo.state.leads.size).toBe(1);
  }, 60_000);
});
