import { afterEach, describe, expect, it } from 'vitest';
import type { Order } from '../src/partner/schema.js';
import { queueDepthOf } from '../src/queue/depth.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { testStack, waitFor } from './support/stack.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

describe('queue depth', () => {
  it('gives every known kind every state, and ages the oldest waiting job from when it fell due', () => {
    const now = 1_700_000_100_000;
    const depth = queueDepthOf(
      [
        { kind: 'order.sync', status: 'queued', jobs: 3, oldest_due: now - 4_500 },
        { kind: 'order.sync', status: 'dead', jobs: 1, oldest_due: null },
        { kind: 'deals.sweep', status: 'queued', jobs: 1, oldest_due: null },
        { kind: 'old.kind', status: 'retrying', jobs: 2, oldest_due: null },
      ],
      ['order.sync', 'deal.reconcile', 'deals.sweep'],
      now,
    );
    expect(depth.depth.filter((d) => d.kind === 'order.sync')).toEqual([
      { kind: 'order.sync', state: 'waiting', jobs: 3 },
      { kind: 'order.sync', state: 'running', jobs: 0 },
      { kind: 'order.sync', state: 'retrying', jobs: 0 },
      { kind: 'order.sync', state: 'dead', jobs: 1 },
    ]);
    expect(depth.depth).toHaveLength(16);
    expect(depth.depth).toContainEqual({ kind: 'old.kind', state: 'retrying', jobs: 2 });
    // The sweep waits for its next run, not late: age 0.
    expect(depth.oldestWaitingSeconds).toEqual([
      { kind: 'deal.reconcile', seconds: 0 },
      { kind: 'deals.sweep', seconds: 0 },
      { kind: 'old.kind', seconds: 0 },
      { kind: 'order.sync', seconds: 4.5 },
    ]);
  });
});

const customer = { firstName: 'Ирина', lastName: 'Павлова', phone: '+79035550177' };

describe.each(DATABASES)('queue metrics on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('/metrics has queue depth by kind and state, the age of the oldest waiting job, and a sample of every declared metric', async () => {
    // A retry waits a minute, so the retrying job is still there at the scrape.
    stack = await testStack(kind, `metrics-${kind}`, { tuning: { backoff: { baseMs: 60_000, maxMs: 60_000 } } });
    await stack.bridge.ready;
    const db = stack.bridge.db.kysely;
    const statusOf = async (orderId: string) =>
      (await db.selectFrom('jobs').select('status').where('job_key', '=', `order:${orderId}`).orderBy('id').execute()).map((j) => j.status);

    // An order that goes through, and a stage move on its deal (an amoCRM webhook, a reconcile).
    const done = await stack.partner.createOrderAsUser({ userId: 'metrics-ok', customer });
    const linked = await waitFor('additionalInfo', () => stack!.partner.orders.get(done.id)?.additionalInfo ?? undefined);
    await stack.amo.moveLead(linked.externalId, { statusName: 'Recorded for trial' });
    await waitFor('the order approved', () => stack!.partner.orders.get(done.id)?.status === 'approved');

    // An order Company 1 lost: its job is dead, and the next event for it waits behind it.
    const lost: Order = await stack.partner.createOrderAsUser({ userId: 'metrics-lost', customer }, { send: false });
    stack.partner.orders.delete(lost.id);
    await stack.partner.sendWebhook('order.created', lost);
    await waitFor('a dead job', async () => (await statusOf(lost.id)).includes('dead'));
    await stack.partner.sendWebhook('order.updated', { ...lost, updatedAt: new Date().toISOString() });
    expect(await statusOf(lost.id)).toEqual(['dead', 'queued']);

    // An order whose write-back meets an outage: its job waits to be retried.
    stack.partner.faults.outage = true;
    const later = await stack.partner.createOrderAsUser({ userId: 'metrics-retry', customer });
    await waitFor('a retrying job', async () => (await statusOf(later.id)).includes('retrying'));
    stack.partner.faults.outage = false;

    await new Promise((r) => setTimeout(r, 50));
    const res = await fetch(`${stack.bridgeUrl}/metrics`);
    expect(res.status).toBe(200);
    const samples = parseExposition(await res.text());

    const depth = (kind: string, state: string) =>
      samples.find((s) => s.name === 'amobridge_queue_depth' && s.labels.kind === kind && s.labels.state === state)?.value;
    expect(depth('order.sync', 'dead')).toBe(1);
    expect(depth('order.sync', 'waiting')).toBe(1);
    expect(depth('order.sync', 'retrying')).toBe(1);
    expect(depth('order.sync', 'running')).toBe(0);
    for (const jobKind of ['order.sync', 'deal.reconcile', 'deals.sweep']) {
      for (const state of ['waiting', 'running', 'retrying', 'dead']) {
        expect(depth(jobKind, state), `${jobKind} ${state}`).toBeTypeOf('number');
      }
    }
    const oldest = samples.find((s) => s.name === 'amobridge_queue_oldest_waiting_seconds' && s.labels.kind === 'order.sync');
    expect(oldest!.value).toBeGreaterThan(0);
    expect(oldest!.value).toBeLessThan(60);

    // Every metric the bridge declares has been set: counters counted, histograms observed.
    const declared = await stack.bridge.metrics.registry.getMetricsAsJSON();
    const custom = declared.filter((m) => !/^amobridge_(process_|nodejs_)/.test(m.name));
    expect(custom.map((m) => m.name).sort()).toContain('amobridge_partner_requests_total');
    for (const metric of custom) {
      const own = samples.filter((s) => s.name === metric.name || s.name.startsWith(`${metric.name}_`));
      expect(own.length, `${metric.name} has samples`).toBeGreaterThan(0);
      if (String(metric.type) === 'counter') expect(own.some((s) => s.value > 0), `${metric.name} counted`).toBe(true);
      if (String(metric.type) === 'histogram') {
        expect(own.some((s) => s.name === `${metric.name}_count` && s.value > 0), `${metric.name} observed`).toBe(true);
      }
    }
  });
});
