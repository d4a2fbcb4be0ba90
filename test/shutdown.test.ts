import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '../src/db/connect.js';
import type { Job } from '../src/db/schema.js';
import { ORDER_SYNC } from '../src/sync/jobs.js';
import { type AmoSimulator, createAmoSimulator } from '../src/sandbox/amo/index.js';
import { createPartnerSimulator, type PartnerSimulator } from '../src/sandbox/partner/index.js';
import { SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import { type BridgeCommand, BridgeProcess } from './support/bridge-process.js';
import { DATABASES, type DatabaseKind, freshDatabaseUrl } from './support/databases.js';
import { isRunning } from './support/process-tree.js';
import { waitFor } from './support/stack.js';

/**
 * Clean shutdown: SIGTERM or SIGINT, sent to `npm start` (npm → /bin/sh → node) or to the
 * node process itself, stops the bridge within SHUTDOWN_TIMEOUT with exit code 0 and no
 * process left behind; work under way finishes, or its lease is handed back and the next
 * start completes it exactly once.
 */

const DETMIR_USER_ID = 932790;

let amo: AmoSimulator | undefined;
let partner: PartnerSimulator | undefined;
let bridge: BridgeProcess | undefined;

afterEach(async () => {
  bridge?.kill();
  bridge = undefined;
  await Promise.all([amo?.close(), partner?.close()]);
  amo = undefined;
  partner = undefined;
});

async function startBridge(kind: DatabaseKind, title: string, command: BridgeCommand, env: Record<string, string>) {
  amo = createAmoSimulator({ longLivedToken: SANDBOX_LONG_LIVED_TOKEN });
  partner = createPartnerSimulator();
  const [amoUrl, partnerUrl] = await Promise.all([amo.listen(), partner.listen()]);
  const { url, schema } = await freshDatabaseUrl(kind, title);
  const databaseUrl = schema ? `${url}?schema=${schema}` : url;
  const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-shutdown-'));
  bridge = await BridgeProcess.create({ databaseUrl, amoUrl, partnerUrl, logPath: path.join(dir, 'bridge.log'), command, env });
  await bridge.start();
  partner.setBridgeWebhookUrl(`${bridge.url}/webhooks/partner`);
  return { bridge, amo, partner, databaseUrl };
}

async function jobsOf(databaseUrl: string): Promise<Job[]> {
  const db = connect(databaseUrl);
  try {
    return await db.kysely.selectFrom('jobs').selectAll().where('kind', '=', ORDER_SYNC).execute();
  } finally {
    await db.close();
  }
}

const answers = (url: string) =>
  fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
    () => true,
    () => false,
  );

describe('a signal stops the bridge', () => {
  it.each([
    ['npm-start', 'SIGTERM'],
    ['npm-start', 'SIGINT'],
    ['compiled', 'SIGTERM'],
    ['compiled', 'SIGINT'],
  ] as const)('%s, %s: exit 0 within SHUTDOWN_TIMEOUT, no process left, nothing answers', async (command, signal) => {
    const { bridge } = await startBridge('sqlite', `signal-${command}-${signal}`, command, { SHUTDOWN_TIMEOUT: '5' });
    const tree = bridge.tree();
    // npm start is npm with node under it: the shell must have exec'd, not stayed between.
    expect(tree).toHaveLength(command === 'npm-start' ? 2 : 1);
    expect(await answers(bridge.url)).toBe(true);

    bridge.signal(signal);
    expect(await bridge.exit(5000)).toEqual({ code: 0, signal: null });
    expect(tree.filter(isRunning)).toEqual([]);
    expect(await answers(bridge.url)).toBe(false);
  });
});

describe.each(DATABASES)('an order in flight at SIGTERM, on %s', (kind) => {
  it('whose create never answers: the lease is handed back within SHUTDOWN_TIMEOUT, and the restart completes it with one contact and one deal', async () => {
    const { bridge, amo, partner, databaseUrl } = await startBridge(kind, `in-flight-${kind}`, 'npm-start', {
      SHUTDOWN_TIMEOUT: '3',
      AMO_SEARCH_SETTLE_SECONDS: '1',
    });
    // amoCRM carries the create out but its answer never comes: the job is stuck mid-flight.
    amo.faults.failAfterWriteRate = 1;
    amo.faults.failAfterWriteMode = 'hang';
    const order = await partner.createOrderAsUser({
      userId: `in-flight-${kind}`,
      customer: { firstName: 'Анна', lastName: 'Летучая', phone: '+79001112233' },
    });
    await waitFor('the deal to exist in amoCRM while its answer hangs', () => amo.state.leads.size === 1);

    const tree = bridge.tree();
    bridge.signal('SIGTERM');
    expect(await bridge.exit(3000)).toEqual({ code: 0, signal: null });
    expect(tree.filter(isRunning)).toEqual([]);
    const [handedBack] = await jobsOf(databaseUrl);
    expect(handedBack).toMatchObject({ status: 'queued', locked_by: null, last_error: 'released at shutdown' });
    expect(partner.orders.get(order.id)?.additionalInfo).toBeNull();

    amo.faults.failAfterWriteRate = 0;
    await bridge.start();
    const info = await waitFor('the order to carry additionalInfo', () => partner.orders.get(order.id)?.additionalInfo ?? undefined, 20_000);
    expect(amo.state.leads.size).toBe(1);
    expect(amo.state.contacts.size).toBe(1);
    const [lead] = [...amo.state.leads.values()];
    const [contact] = [...amo.state.contacts.values()];
    expect(info).toEqual({ contactId: contact!.id, externalId: lead!.id, closedByDetmir: false });
    expect(contact!.custom_fields_values?.find((f) => f.field_id === DETMIR_USER_ID)?.values[0]?.value).toBe(`in-flight-${kind}`);
    await waitFor('the job to be done', async () => (await jobsOf(databaseUrl))[0]?.status === 'done');

    bridge.signal('SIGTERM');
    expect(await bridge.exit(3000)).toEqual({ code: 0, signal: null });
  }, 60_000);
});

describe('a job running at SIGTERM', () => {
  it('finishes before the process exits when it fits in SHUTDOWN_TIMEOUT', async () => {
    const { bridge, amo, partner, databaseUrl } = await startBridge('sqlite', 'finishes', 'compiled', { SHUTDOWN_TIMEOUT: '10' });
    // Every amoCRM call takes 700 ms: the job (a search, a create) outlasts the signal.
    amo.faults.latencyMs = 700;
    const order = await partner.createOrderAsUser({
      userId: 'finishes-user',
      customer: { firstName: 'Борис', lastName: 'Доделов', phone: '+79004445566' },
    });
    await waitFor('the job to be leased', async () => (await jobsOf(databaseUrl))[0]?.status === 'running');

    bridge.signal('SIGTERM');
    expect(await bridge.exit(10_000)).toEqual({ code: 0, signal: null });
    expect(partner.orders.get(order.id)?.additionalInfo).toMatchObject({ closedByDetmir: false });
    expect(amo.state.leads.size).toBe(1);
    expect(await jobsOf(databaseUrl)).toMatchObject([{ status: 'done' }]);
  }, 60_000);
});
