import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AmoSimulator, createAmoSimulator, SEARCH_INDEX_DELAY_MS } from '../src/sandbox/amo/index.js';
import { createPartnerSimulator, type PartnerSimulator } from '../src/sandbox/partner/index.js';
import type { Order } from '../src/partner/schema.js';
import { SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import { BridgeProcess } from './support/bridge-process.js';
import { DATABASES, freshDatabaseUrl } from './support/databases.js';
import { waitFor } from './support/stack.js';

const DETMIR_USER_ID = 932790;
const DETMIR_ORDER_ID = 932792;

function fieldValue(entity: { custom_fields_values?: Array<{ field_id: number; values: Array<{ value?: unknown }> }> | null }, id: number) {
  return entity.custom_fields_values?.find((f) => f.field_id === id)?.values[0]?.value;
}

describe.each(DATABASES)('crash recovery on %s', (kind) => {
  let amo: AmoSimulator;
  let partner: PartnerSimulator;
  let bridge: BridgeProcess | undefined;
  afterEach(async () => {
    await bridge?.stop('SIGKILL');
    await Promise.all([amo?.close(), partner?.close()]);
  });

  it('SIGKILL in the middle of a 50-order burst, then a restart, leaves one contact per user and one deal per order', async () => {
    // The search index trails creates by seconds, as amoCRM's does (the simulator's
    // default), so a create whose answer died with the process is not visible to the first
    // search after the restart; the bridge waits a second longer than that.
    amo = createAmoSimulator({ longLivedToken: SANDBOX_LONG_LIVED_TOKEN });
    amo.faults.latencyMs = 15;
    partner = createPartnerSimulator();
    const [amoUrl, partnerUrl] = await Promise.all([amo.listen(), partner.listen()]);
    const { url, schema } = await freshDatabaseUrl(kind, `crash-${kind}`);
    const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-crash-'));
    bridge = await BridgeProcess.create({
      databaseUrl: schema ? `${url}?schema=${schema}` : url,
      amoUrl,
      partnerUrl,
      logPath: path.join(dir, 'bridge.log'),
      env: { AMO_SEARCH_SETTLE_SECONDS: String(SEARCH_INDEX_DELAY_MS / 1000 + 1), JOB_LEASE_SECONDS: '3' },
    });
    await bridge.start();
    partner.setBridgeWebhookUrl(`${bridge.url}/webhooks/partner`);

    // 50 orders from 30 users: 20 of them order twice.
    const orders: Order[] = [];
    for (let i = 0; i < 50; i++) {
      const user = i % 30;
      orders.push(
        await partner.createOrderAsUser({
          userId: `crash-user-${user}`,
          customer: { firstName: `Имя${user}`, lastName: 'Тестов', phone: `+7900${String(user).padStart(7, '0')}` },
        }),
      );
    }
    expect(partner.deliveries.every((d) => d.status === 202)).toBe(true);

    await waitFor('some deals to be created', () => amo.state.leads.size >= 8, 30_000);
    expect(await bridge.stop('SIGKILL')).toBeNull();
    const dealsAtCrash = amo.state.leads.size;
    expect(dealsAtCrash).toBeLessThan(50);

    await bridge.start();
    await waitFor(
      'every order to carry additionalInfo',
      () => orders.every((o) => partner.orders.get(o.id)?.additionalInfo),
      90_000,
    );

    const contactsByUser = new Map<string, number>();
    for (const c of amo.state.contacts.values()) {
      const user = String(fieldValue(c, DETMIR_USER_ID));
      contactsByUser.set(user, (contactsByUser.get(user) ?? 0) + 1);
    }
    expect(contactsByUser.size).toBe(30);
    expect([...contactsByUser.values()].every((n) => n === 1)).toBe(true);

    const leadsByOrder = new Map<string, number>();
    for (const l of amo.state.leads.values()) {
      leadsByOrder.set(String(fieldValue(l, DETMIR_ORDER_ID)), l.id);
    }
    expect(amo.state.leads.size).toBe(50);
    expect(leadsByOrder.size).toBe(50);
    for (const order of orders) {
      const info = partner.orders.get(order.id)!.additionalInfo!;
      expect(info.externalId).toBe(leadsByOrder.get(order.id));
      expect(info.closedByDetmir).toBe(false);
      const lead = amo.state.leads.get(info.externalId)!;
      expect(lead._embedded.contacts.map((c) => c.id)).toEqual([info.contactId]);
    }

    // A graceful stop exits cleanly.
    expect(await bridge.stop('SIGTERM')).toBe(0);
  }, 150_000);
});
