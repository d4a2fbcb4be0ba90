import { afterEach, describe, expect, it } from 'vitest';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { testStack, waitFor } from './support/stack.js';

describe.each(DATABASES)('job payloads on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('a stored payload that does not fit its kind sends the job to the dead letter with the reason, and the rest flows', async () => {
    stack = await testStack(kind, `payloads-${kind}`);
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const now = Date.now();
    // Rows as an older release, a hand edit or a bug could have left them.
    const row = (jobKind: string, key: string, payload: string) => ({
      kind: jobKind,
      job_key: key,
      payload,
      status: 'queued' as const,
      attempts: 0,
      max_attempts: 12,
      run_at: now,
      locked_by: null,
      locked_until: null,
      last_error: null,
      inbox_id: null,
      created_at: now,
      updated_at: now,
    });
    await db
      .insertInto('jobs')
      .values([
        row('deal.reconcile', 'deal:1', '{"deal":1}'),
        row('order.sync', 'order:not-json', '{orderId: DM-1'),
        row('order.sync', 'order:42', '{"orderId":42}'),
      ])
      .execute();
    const order = await stack.partner.createOrderAsUser({ userId: 'payload-u', customer: { firstName: 'Анна', lastName: 'Котова', phone: '+79035550123' } });

    await waitFor('the order to carry additionalInfo', () => stack!.partner.orders.get(order.id)?.additionalInfo ?? undefined);
    const jobs = await waitFor('the bad jobs to be dead', async () => {
      const rows = await db.selectFrom('jobs').selectAll().where('job_key', 'in', ['deal:1', 'order:not-json', 'order:42']).orderBy('id').execute();
      return rows.every((r) => r.status === 'dead') ? rows : undefined;
    });
    expect(jobs.map((j) => j.attempts)).toEqual([1, 1, 1]);
    expect(jobs[0]!.last_error).toMatch(/^deal\.reconcile job has a bad payload: dealId: .*(required|expected number)/);
    expect(jobs[1]!.last_error).toMatch(/^order\.sync job has a bad payload: not JSON/);
    expect(jobs[2]!.last_error).toMatch(/^order\.sync job has a bad payload: orderId: .*expected string/);
  });
});
