import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stack } from '../src/sandbox/stack.js';
import { testStack } from './support/stack.js';

describe('operator endpoints', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await testStack('sqlite', 'health');
  });
  afterAll(async () => stack.stop());

  it('healthz answers while the process is up; readyz once the mappings are resolved', async () => {
    expect((await request(stack.bridge.app).get('/healthz')).status).toBe(200);
    await stack.bridge.ready;
    const ready = await request(stack.bridge.app).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ database: 'ok', amocrm_token: 'ok', mappings: 'resolved' });
  });

  it('readyz says what is missing while amoCRM refuses the bridge, and webhooks are still kept', async () => {
    const refused = await testStack('sqlite', 'health-refused', { env: { AMO_LONG_LIVED_TOKEN: 'revoked-token' } });
    try {
      const res = await request(refused.bridge.app).get('/readyz');
      expect(res.status).toBe(503);
      expect(res.body.checks).toMatchObject({ database: 'ok', mappings: 'not resolved yet' });
      const order = await refused.partner.createOrderAsUser({
        userId: 'u-wait',
        customer: { firstName: 'A', lastName: 'B', phone: '+79990000000' },
      });
      expect(refused.partner.deliveries.at(-1)).toMatchObject({ orderId: order.id, status: 202 });
      const jobs = await refused.bridge.db.kysely.selectFrom('jobs').selectAll().execute();
      expect(jobs.map((j) => j.status)).toEqual(['queued']);
    } finally {
      await refused.stop();
    }
  });

  it('exposes Prometheus metrics, amoCRM calls counted by endpoint and outcome', async () => {
    const res = await request(stack.bridge.app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/amobridge_amo_requests_total\{endpoint="[^"]+",outcome="2xx"\} \d+/);
  });

  it('answers unknown routes with problem+json 404', async () => {
    const res = await request(stack.bridge.app).get('/nope');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
  });
});
