import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/admin/api-keys.js';
import type { Stack } from '../src/sandbox/stack.js';
import { PermanentError } from '../src/lib/http-error.js';
import { createTestLogger } from '../src/logger.js';
import { z } from 'zod';
import { defineJobs } from '../src/queue/jobs.js';
import { ORDER_SYNC } from '../src/sync/jobs.js';
import { Worker } from '../src/queue/worker.js';
import { DATABASES, dropDb, freshDb } from './support/databases.js';
import { captureLogs } from './support/logs.js';
import { testStack, waitFor } from './support/stack.js';

const customer = { firstName: 'Анастасия', lastName: 'Воскресенская', phone: '+7 903 555-01-01', email: 'anastasia.v@example.ru' };
/** Any trace of the customer: her names, her phone in any grouping, her e-mail. */
const CUSTOMER_TRACE = /Анастасия|Воскресенская|903[\s-]?555|555[\s-]?01[\s-]?01|anastasia/i;

describe.each(DATABASES)('a Company 1 answer that echoes the customer, on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it.each([
    [422, 'dead'],
    [409, 'retrying'],
  ] as const)('a %i leaves her out of jobs.last_error, the admin API and the logs', async (status, jobStatus) => {
    const logs = captureLogs('debug');
    // A retry waits a minute, so the 409's job is still retrying when it is listed.
    stack = await testStack(kind, `peer-body-${status}-${kind}`, { logger: logs.logger, tuning: { backoff: { baseMs: 60_000, maxMs: 60_000 } } });
    await stack.bridge.ready;
    stack.partner.faults.refuseWrites = status;
    const order = await stack.partner.createOrderAsUser({ userId: 'u-echo', customer });

    // The contact and deal are made; writing additionalInfo back is refused with the order echoed.
    const job = await waitFor(`the ${ORDER_SYNC} job to fail with ${status}`, async () => {
      const row = await stack!.bridge.db.kysely.selectFrom('jobs').selectAll().where('kind', '=', ORDER_SYNC).executeTakeFirst();
      return row?.last_error?.includes(`answered ${status}`) && row.status === jobStatus ? row : undefined;
    });
    expect(stack.partner.stats.requests.some((r) => r.method === 'PATCH' && r.status === status)).toBe(true);
    expect(job.last_error).toContain(`partner PATCH /orders/${order.id} answered ${status}`);
    expect(job.last_error).toContain('order refused (simulated)');
    expect(job.last_error).not.toMatch(CUSTOMER_TRACE);

    const reader = await createApiKey(stack.bridge.db.kysely, 'ops-reader', ['jobs:read']);
    const listed = await request(stack.bridge.app).get(`/admin/jobs?status=${jobStatus}`).set('authorization', `Bearer ${reader.key}`);
    expect(listed.status).toBe(200);
    expect(listed.text).toContain(`answered ${status}`);
    expect(listed.text).not.toMatch(CUSTOMER_TRACE);

    const logText = logs.lines.join('');
    expect(logText).toContain(`answered ${status}`);
    expect(logText).not.toMatch(CUSTOMER_TRACE);
  });
});

describe.each(DATABASES)('a failure of any kind, on %s', (kind) => {
  it('reaches jobs.last_error without the phone, e-mail or token it quoted', async () => {
    const db = await freshDb(kind, `last-error-${kind}`);
    try {
      const checkJobs = defineJobs({ check: z.object({}) });
      await checkJobs.enqueue(db.kysely, 'check', {}, { key: 'order:R-1' });
      const worker = new Worker({
        db,
        logger: createTestLogger(),
        handlers: [
          checkJobs.handler('check', {
            run: async (jobs) =>
              new Map(jobs.map((j) => [j.id, { type: 'failed', error: new PermanentError(`no contact for ${customer.phone} / ${customer.email}, token eyJhbGciOiJIUzI1NiJ9.e30.c2ln`) }])),
          }),
        ],
      });
      expect(await worker.runOnce()).toBe(1);
      const job = await db.kysely.selectFrom('jobs').selectAll().executeTakeFirstOrThrow();
      expect(job.status).toBe('dead');
      // The message first, then the stack (kept for the person reading the dead letter).
      expect(job.last_error!.split('\n')[0]).toBe('no contact for ***0101 / [email], token [redacted]');
      expect(job.last_error).toMatch(/\n\s+at /);
      expect(job.last_error).not.toMatch(CUSTOMER_TRACE);
    } finally {
      await dropDb(db);
    }
  });
});
