import { afterEach, describe, expect, it } from 'vitest';
import { AmoClient, AmoTransportError, MemoryRateLimiter, type RateLimiter } from '../src/amo/index.js';
import { customFieldText } from '../src/sync/ports.js';
import type { Db } from '../src/db/connect.js';
import { createTestLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { FIELD_IDS, createAmoSimulator, type AmoSimulator, type AmoSimulatorOptions } from '../src/sandbox/amo/index.js';
import { DATABASES, dropDb, freshDb } from './support/databases.js';

/** AmoClient against the amoCRM simulator (src/sandbox/amo): OAuth, the limit, the API shapes. */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function simulator(options: AmoSimulatorOptions = {}): Promise<{ sim: AmoSimulator; url: string }> {
  const sim = createAmoSimulator(options);
  const url = await sim.listen();
  cleanups.push(() => sim.close());
  return { sim, url };
}

function makeClient(
  db: Db,
  url: string,
  auth: 'oauth' | 'long-lived',
  extra: { rateLimitRps?: number; rateLimiter?: RateLimiter; timeoutMs?: number; retries?: number; minRetryDelayMs?: number } = {},
): AmoClient {
  return AmoClient.create({
    baseUrl: url,
    subdomain: 'company2',
    auth:
      auth === 'oauth'
        ? { kind: 'oauth', clientId: 'sim-client-id', clientSecret: 'sim-client-secret', redirectUri: 'https://bridge.example/oauth' }
        : { kind: 'long-lived', token: 'sim-long-lived' },
    db,
    rateLimitRps: extra.rateLimitRps ?? 7,
    rateLimiter: extra.rateLimiter,
    timeoutMs: extra.timeoutMs ?? 3000,
    retries: extra.retries ?? 6,
    minRetryDelayMs: extra.minRetryDelayMs ?? 50,
    logger: createTestLogger(),
    metrics: createMetrics(),
  });
}

describe.each(DATABASES)('AmoClient against the amoCRM simulator on %s', (kind) => {
  async function database(): Promise<Db> {
    const db = await freshDb(kind, `amo-sim-${kind}`);
    cleanups.push(() => dropDb(db));
    return db;
  }

  it('exchanges a code, rotates refresh tokens into the database, and refreshes once for parallel calls', async () => {
    const db = await database();
    const { sim, url } = await simulator({ rateLimitRps: 50 });
    const amo = makeClient(db, url, 'oauth', { rateLimitRps: 40 });
    await amo.exchangeAuthorizationCode(sim.issueAuthorizationCode());
    const first = await db.kysely.selectFrom('amo_tokens').selectAll().executeTakeFirstOrThrow();
    await expect(amo.getAccount()).resolves.toMatchObject({ subdomain: 'company2' });

    // amoCRM revokes the access tokens: every parallel call gets a 401, one refresh serves all.
    sim.revokeAccessTokens();
    sim.stats.reset();
    await Promise.all(Array.from({ length: 8 }, () => amo.getAccount()));
    expect(sim.stats.count({ pathPrefix: '/oauth2/access_token' })).toBe(1);
    const second = await db.kysely.selectFrom('amo_tokens').selectAll().executeTakeFirstOrThrow();
    expect(second.refresh_token).not.toBe(first.refresh_token);

    // The stored pair expires: a new client (a restart) refreshes once for all its calls,
    // with the refresh token persisted by the previous rotation (the first is spent).
    await db.kysely.updateTable('amo_tokens').set({ expires_at: Date.now() - 1 }).execute();
    sim.stats.reset();
    const restarted = makeClient(db, url, 'oauth', { rateLimitRps: 40 });
    await Promise.all(Array.from({ length: 8 }, () => restarted.getAccount()));
    expect(sim.stats.count({ pathPrefix: '/oauth2/access_token' })).toBe(1);
    expect(sim.stats.count({ status: 401 })).toBe(0);
    const third = await db.kysely.selectFrom('amo_tokens').selectAll().executeTakeFirstOrThrow();
    expect(third.refresh_token).not.toBe(second.refresh_token);
    expect(Number(third.expires_at)).toBeGreaterThan(Date.now());
  });
});

describe('AmoClient against the amoCRM simulator', () => {
  it('makes 40 calls at 7 per second against a limit of 7 without a single 429, on both databases at once', async () => {
    await Promise.all(
      DATABASES.map(async (kind) => {
        const db = await freshDb(kind, `amo-sim-limit-${kind}`);
        cleanups.push(() => dropDb(db));
        const { sim, url } = await simulator({ rateLimitRps: 7, longLivedToken: 'sim-long-lived' });
        const amo = makeClient(db, url, 'long-lived', { rateLimitRps: 7, retries: 0 });
        await Promise.all(Array.from({ length: 40 }, () => amo.getAccount()));
        expect(sim.stats.count({ pathPrefix: '/api/v4/account', status: 200 })).toBe(40);
        expect(sim.stats.count({ status: 429 })).toBe(0);
      }),
    );
  });

  const noDb: Db = {
    dialect: 'sqlite',
    close: async () => undefined,
    get kysely(): never {
      throw new Error('no database here');
    },
  };

  it('retries 429s with an empty, an HTML and a JSON body to success when something else spends the budget', async () => {
    const { sim, url } = await simulator({ rateLimitRps: 3, longLivedToken: 'sim-long-lived' });
    // A limiter far above the server's limit, as when another integration shares it.
    const amo = makeClient(noDb, url, 'long-lived', { rateLimiter: new MemoryRateLimiter({ rps: 50 }), minRetryDelayMs: 300 });
    const results = await Promise.all(Array.from({ length: 9 }, () => amo.getAccount()));
    expect(results.map((r) => r.subdomain)).toEqual(Array(9).fill('company2'));
    const refused = sim.stats.requests.filter((r) => r.status === 429).map((r) => r.contentType);
    expect(new Set(refused)).toEqual(new Set([null, 'text/html', 'application/problem+json']));
    expect(sim.stats.count({ status: 200 })).toBe(9);
  });

  it('times out on a hanging server', async () => {
    const { sim, url } = await simulator({ longLivedToken: 'sim-long-lived' });
    sim.faults.hang = true;
    const amo = makeClient(noDb, url, 'long-lived', { rateLimiter: new MemoryRateLimiter({ rps: 50 }), timeoutMs: 300, retries: 0 });
    const started = performance.now();
    await expect(amo.getAccount()).rejects.toBeInstanceOf(AmoTransportError);
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('speaks the API shapes the bridge uses', async () => {
    // About shapes: search finds what was just made (the index's lag is test/sandbox-amo.test.ts's).
    const { sim, url } = await simulator({ rateLimitRps: 50, longLivedToken: 'sim-long-lived', searchIndexDelayMs: 0 });
    const amo = makeClient(noDb, url, 'long-lived', { rateLimiter: new MemoryRateLimiter({ rps: 40 }) });

    const account = await amo.getAccount();
    expect(account.subdomain).toBe('company2');
    const pipelines = await amo.getPipelines();
    const pipeline = pipelines.find((p) => p.name === 'Company 2');
    expect(pipeline).toBeDefined();
    const newLead = pipeline!._embedded.statuses.find((s) => s.name === 'New lead');
    expect(newLead).toBeDefined();
    const leadFields = await amo.getCustomFields('leads');
    const contactFields = await amo.getCustomFields('contacts');
    expect(leadFields.some((f) => f.id === FIELD_IDS.detmirOrderId)).toBe(true);
    expect(contactFields.some((f) => f.id === FIELD_IDS.detmirUserId)).toBe(true);

    const [created] = await amo.createLeadsComplex([
      {
        requestId: 'order-1',
        name: 'Заказ order-1',
        pipelineId: pipeline!.id,
        statusId: newLead!.id,
        price: 2500,
        tagIds: [499278],
        customFields: [{ fieldId: FIELD_IDS.detmirOrderId, value: 'order-1' }],
        contact: {
          firstName: 'Ольга',
          lastName: 'Сидорова',
          name: 'Ольга Сидорова',
          phone: '+79991234567',
          customFields: [{ fieldId: FIELD_IDS.detmirUserId, value: 'user-ёж-1' }],
        },
      },
    ]);
    expect(created.request_id).toEqual(['order-1']);
    expect(created.contact_id).toBeGreaterThan(0);

    const contacts = await amo.searchContacts('user-ёж-1');
    const contact = contacts.find((c) => customFieldText(c, FIELD_IDS.detmirUserId) === 'user-ёж-1');
    expect(contact?.id).toBe(created.contact_id);
    expect(contact?.first_name).toBe('Ольга');
    await expect(amo.searchContacts('nobody-here')).resolves.toEqual([]);

    const [lead] = await amo.getLeadsByIds([created.id]);
    expect(lead).toMatchObject({ id: created.id, pipeline_id: pipeline!.id, status_id: newLead!.id, price: 2500 });
    expect(customFieldText(lead, FIELD_IDS.detmirOrderId)).toBe('order-1');
    expect(lead._embedded?.contacts?.map((c) => c.id)).toEqual([created.contact_id]);
    expect(lead._embedded?.tags?.map((t) => t.id)).toContain(499278);
    const found = await amo.searchLeads('order-1');
    expect(found.map((l) => l.id)).toContain(created.id);

    const page = await amo.listLeadsUpdatedSince({ pipelineId: pipeline!.id, fromUnix: Math.floor(Date.now() / 1000) - 60, page: 1 });
    expect(page.leads.map((l) => l.id)).toContain(created.id);

    // An existing contact by id, a deal with no tags and no custom fields.
    const [second] = await amo.createLeadsComplex([
      { requestId: 'order-2', name: 'Заказ order-2', pipelineId: pipeline!.id, statusId: newLead!.id, tagIds: [], customFields: [], contact: { id: created.contact_id! } },
    ]);
    expect(second.contact_id).toBe(created.contact_id);

    await amo.addLeadNotes([{ leadId: created.id, text: 'Заказ закрыт партнёром' }]);
    await amo.registerWebhook(`${url}/nowhere`, ['status_lead', 'update_lead']);
    await expect(amo.listWebhooks()).resolves.toEqual([{ destination: `${url}/nowhere`, settings: expect.arrayContaining(['status_lead', 'update_lead']) }]);

    const ids = Array.from({ length: 300 }, (_, i) => 900_000 + i);
    await expect(amo.getLeadsByIds([created.id, ...ids])).resolves.toHaveLength(1);
    expect(sim.stats.count({ status: 400 })).toBe(0);
  });
});
