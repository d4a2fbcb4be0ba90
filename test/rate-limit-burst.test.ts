import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Order } from '../src/partner/schema.js';
import { type AmoSimulator, createAmoSimulator } from '../src/sandbox/amo/index.js';
import { createPartnerSimulator, type PartnerSimulator } from '../src/sandbox/partner/index.js';
import { SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import { BridgeProcess } from './support/bridge-process.js';
import { DATABASES, freshDatabaseUrl } from './support/databases.js';
import { waitFor } from './support/stack.js';

/**
 * The limiter must make 429 rare, not merely survivable: a 200-order burst against the
 * simulator's 7-requests-per-second limit gets no 429 at all. The bridge runs in its own
 * process, as it would on its own machine, so the simulator's clock is not held up by
 * the bridge's work. (PostgreSQL runs the shared, database-clocked limiter; SQLite the
 * in-process one.)
 */
describe.each(DATABASES)('200-order burst on %s', (kind) => {
  let amo: AmoSimulator;
  let partner: PartnerSimulator;
  let bridge: BridgeProcess | undefined;
  afterEach(async () => {
    await bridge?.stop('SIGTERM');
    await Promise.all([amo?.close(), partner?.close()]);
  });

  it('finishes with zero 429 answers at 7 requests per second', async () => {
    amo = createAmoSimulator({ longLivedToken: SANDBOX_LONG_LIVED_TOKEN, rateLimitRps: 7 });
    partner = createPartnerSimulator({ autoClose: false });
    const [amoUrl, partnerUrl] = await Promise.all([amo.listen(), partner.listen()]);
    const { url, schema } = await freshDatabaseUrl(kind, `burst-${kind}`);
    bridge = await BridgeProcess.create({
      databaseUrl: schema ? `${url}?schema=${schema}` : url,
      amoUrl,
      partnerUrl,
      logPath: path.join(mkdtempSync(path.join(tmpdir(), 'amobridge-burst-')), 'bridge.log'),
      env: { AMO_RATE_LIMIT_RPS: '7', LOG_LEVEL: 'warn' },
    });
    await bridge.start();
    partner.setBridgeWebhookUrl(`${bridge.url}/webhooks/partner`);
    amo.stats.reset();

    const orders: Order[] = [];
    for (let i = 0; i < 200; i++) {
      orders.push(
        await partner.createOrderAsUser({
          userId: `burst-${i % 150}`,
          customer: { firstName: 'Burst', lastName: String(i), phone: `+7901${String(i).padStart(7, '0')}` },
        }),
      );
    }
    await waitFor('all 200 orders linked', () => orders.every((o) => partner.orders.get(o.id)?.additionalInfo), 100_000);
    expect(amo.stats.count({ status: 429 })).toBe(0);
    expect(amo.state.leads.size).toBe(200);
    expect(amo.state.contacts.size).toBe(150);
    // Batching: a search per new user, plus shared leads/complex calls.
    expect(amo.stats.count({ pathPrefix: '/api/v4' })).toBeLessThan(200 * 1.2);
  }, 150_000);
});
