import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/schema.js';
import { sandboxEnv } from '../src/sandbox/env.js';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { editedMappings } from './support/mappings.js';
import { linkedOrder } from './support/orders.js';
import { drained, testStack, waitFor } from './support/stack.js';

const run = promisify(execFile);

/** Every table the bridge keeps, but the PostgreSQL rate limiter's slots (bookkeeping of reads too). */
const TABLES: Array<keyof Database> = [
  'inbox',
  'jobs',
  'orders',
  'contacts',
  'amo_creates',
  'amo_tokens',
  'kv',
  'api_keys',
  'webview_tokens',
  'webview_sessions',
  'webview_orders',
  'deal_updates',
];

async function allRows(stack: Stack): Promise<string> {
  const tables: Record<string, unknown[]> = {};
  for (const table of TABLES) tables[table] = await stack.bridge.db.kysely.selectFrom(table).selectAll().execute();
  return JSON.stringify(tables);
}

/** Calls that change something: anything but a read. */
const writes = (stack: Stack) => ({
  amo: stack.amo.stats.requests.filter((r) => r.method !== 'GET').length,
  partner: stack.partner.stats.requests.filter((r) => r.method !== 'GET').length,
});

/** Waiting for payment no longer sets the cost; Success no longer executes the order. */
const EDITED = editedMappings((y) =>
  y
    .replace('  - stage: Waiting for payment\n    set: { cost: deal.price }\n', '  - stage: Waiting for payment\n')
    .replace('    id: 142\n    set: { status: executed }\n', '    id: 142\n'),
);

/** The report's blocks by order id: the header line and the two outcome lines. */
function blocks(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const block of stdout.split('\n\n')) {
    const id = /^order (\S+)/.exec(block)?.[1];
    if (id) out.set(id, block);
  }
  return out;
}

describe.each(DATABASES)('amobridge mappings diff on %s', (kind) => {
  let stack: Stack & { databaseUrl: string };
  const deals: Record<'newLead' | 'costed' | 'won' | 'silentPayment' | 'silentWon', { orderId: string; dealId: number }> = {} as never;

  beforeAll(async () => {
    stack = await testStack(kind, `mappings-diff-${kind}`);
    await stack.bridge.ready;
    for (const name of Object.keys({ newLead: 0, costed: 0, won: 0, silentPayment: 0, silentWon: 0 }) as Array<keyof typeof deals>) {
      const { order, dealId } = await linkedOrder(stack, `diff-${name}`);
      deals[name] = { orderId: order.id, dealId };
    }
    // Moves the bridge hears of (it brings the orders in step) ...
    await stack.amo.moveLead(deals.costed.dealId, { statusName: 'Waiting for payment' }, { price: 12_500 });
    await stack.amo.moveLead(deals.won.dealId, { statusName: 'Closed - won' });
    // ... and moves it has not heard of yet (a lost webhook; the sweep is off).
    await stack.amo.moveLead(deals.silentPayment.dealId, { statusName: 'Waiting for payment' }, { price: 9900, fire: false });
    await stack.amo.moveLead(deals.silentWon.dealId, { statusName: 'Closed - won' }, { fire: false });
    await stack.amo.webhooksIdle();
    await waitFor('the orders to follow the moves', () => stack.partner.orders.get(deals.won.orderId)?.status === 'executed');
    await drained(stack);
    expect(stack.partner.orders.get(deals.costed.orderId)).toMatchObject({ status: 'in_work', cost: 12_500 });
    // The won deal last changed two days ago: a one-day span leaves it out.
    stack.amo.state.leads.get(deals.won.dealId)!.updated_at = Math.floor(Date.now() / 1000) - 2 * 86_400;
  }, 60_000);
  afterAll(async () => stack?.stop());

  const cli = (args: string[]) =>
    run(process.execPath, ['bin/amobridge.js', ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        ...sandboxEnv({ port: 0, databaseUrl: stack.databaseUrl, amoUrl: stack.amoUrl, partnerUrl: stack.partnerUrl }),
        LOG_LEVEL: 'error',
      },
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('lists exactly the orders the edited table treats differently, with both outcomes, and writes nothing', async () => {
    const rowsBefore = await allRows(stack);
    const writesBefore = writes(stack);

    const { code, stdout, stderr } = await cli(['mappings', 'diff', EDITED]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const found = blocks(stdout);
    expect([...found.keys()].sort()).toEqual([deals.won.orderId, deals.silentPayment.orderId, deals.silentWon.orderId].sort());

    expect(found.get(deals.silentPayment.orderId)).toBe(
      [
        `order ${deals.silentPayment.orderId}  deal ${deals.silentPayment.dealId}  stage "Waiting for payment"`,
        '  current: status in_work, cost 9900, paid no, subscription -  (changes the order)',
        '  edited:  status in_work, cost -, paid no, subscription -  (changes the order)',
      ].join('\n'),
    );
    const won = found.get(deals.won.orderId)!;
    expect(won).toMatch(new RegExp(`^order ${deals.won.orderId}  deal ${deals.won.dealId}  stage "Success \\[Closed - won\\]"\n`));
    expect(won).toMatch(/\n {2}current: status executed, cost \S+, paid yes, subscription - {2}\(in step, no change\)\n/);
    expect(won).toMatch(/\n {2}edited: {2}status executed, cost \S+, paid yes, subscription - {2}\(dead letter: .*asks for "in_work"/);
    const silentWon = found.get(deals.silentWon.orderId)!;
    expect(silentWon).toMatch(/\n {2}current: status executed, cost \S+, paid yes, subscription - {2}\(changes the order\)\n/);
    expect(silentWon).toMatch(/\n {2}edited: {2}status in_work, cost -, paid yes, subscription - {2}\(changes the order\)$/);
    expect(stdout).toMatch(/\n5 deals read \(updated since [^)]+\), 5 with an order planned, 3 orders differ\n$/);

    // A dry run: no row changed, nothing sent to amoCRM or Company 1 but reads.
    expect(await allRows(stack)).toBe(rowsBefore);
    expect(writes(stack)).toEqual(writesBefore);
  }, 60_000);

  it('--since bounds the span: a deal changed before it is not read', async () => {
    const { code, stdout } = await cli(['mappings', 'diff', EDITED, '--since', '1d']);
    expect(code).toBe(0);
    expect([...blocks(stdout).keys()].sort()).toEqual([deals.silentPayment.orderId, deals.silentWon.orderId].sort());
    expect(stdout).toMatch(/\n4 deals read .*, 2 orders differ\n$/);
  }, 60_000);
});
