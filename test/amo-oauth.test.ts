import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AmoAuthError, AmoClient, TokenStore } from '../src/amo/index.js';
import { connect, type Db } from '../src/db/connect.js';
import { createTestLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { DATABASES, dropDb, freshDb, POSTGRES_URL } from './support/databases.js';

/**
 * OAuth against a tiny fake of amoCRM's token endpoint, on both databases: refresh tokens
 * are single use (a spent one is refused, as amoCRM does), so a double refresh breaks
 * the test, not just a counter.
 */

interface FakeAmo {
  url: string;
  tokenRequests: Array<Record<string, string>>;
  apiCalls: number;
  /** Forget every access token (as if amoCRM revoked them): the next call gets a 401. */
  revokeAccess(): void;
  currentRefresh(): string | undefined;
  close(): Promise<void>;
}

async function startFakeAmo(options: { refreshDelayMs?: number } = {}): Promise<FakeAmo> {
  let n = 0;
  const access = new Set<string>();
  let refresh: string | undefined;
  const tokenRequests: Array<Record<string, string>> = [];
  const state = { apiCalls: 0 };
  const issue = (res: http.ServerResponse) => {
    n++;
    access.add(`access-${n}`);
    refresh = `refresh-${n}`;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token_type: 'Bearer', expires_in: 86400, access_token: `access-${n}`, refresh_token: refresh }));
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/oauth2/access_token' && req.method === 'POST') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, string>;
        tokenRequests.push(body);
        const refuse = () => {
          res.writeHead(400, { 'Content-Type': 'application/problem+json' });
          res.end(JSON.stringify({ hint: 'Token has been revoked', title: 'Некорректный запрос', status: 400 }));
        };
        if (body.client_id !== 'client-id' || body.client_secret !== 'client-secret') return refuse();
        if (body.grant_type === 'authorization_code') return body.code === 'good-code' ? issue(res) : refuse();
        if (body.grant_type === 'refresh_token') {
          if (body.refresh_token !== refresh) return refuse();
          refresh = undefined; // spent at once, before the answer goes out
          setTimeout(() => issue(res), options.refreshDelayMs ?? 0);
          return;
        }
        return refuse();
      }
      state.apiCalls++;
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (!access.has(token)) {
        res.writeHead(401, { 'Content-Length': 0 });
        return void res.end();
      }
      res.writeHead(200, { 'Content-Type': 'application/hal+json' });
      res.end(JSON.stringify({ id: 42, name: 'Компания 2', subdomain: 'company2' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tokenRequests,
    get apiCalls() {
      return state.apiCalls;
    },
    revokeAccess: () => access.clear(),
    currentRefresh: () => refresh,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function oauthClient(db: Db, baseUrl: string): AmoClient {
  return AmoClient.create({
    baseUrl,
    subdomain: 'company2',
    auth: { kind: 'oauth', clientId: 'client-id', clientSecret: 'client-secret', redirectUri: 'https://bridge.example/oauth' },
    db,
    rateLimitRps: 50,
    timeoutMs: 2000,
    retries: 2,
    minRetryDelayMs: 10,
    logger: createTestLogger(),
    metrics: createMetrics(),
  });
}

describe.each(DATABASES)('amoCRM OAuth on %s', (kind) => {
  async function setup(options: { refreshDelayMs?: number } = {}) {
    const db = await freshDb(kind, `amo-oauth-${kind}`);
    const fake = await startFakeAmo(options);
    cleanups.push(() => dropDb(db), () => fake.close());
    return { db, fake };
  }

  /** Authorizes through the API, then makes the stored pair look expired. */
  async function authorizedAndExpired(db: Db, fake: FakeAmo) {
    await oauthClient(db, fake.url).exchangeAuthorizationCode('good-code');
    await db.kysely.updateTable('amo_tokens').set({ expires_at: Date.now() - 1000 }).execute();
  }

  it('exchanges an authorization code and persists the pair', async () => {
    const { db, fake } = await setup();
    const amo = oauthClient(db, fake.url);
    await expect(amo.hasCredentials()).resolves.toBe(false);
    await expect(amo.getAccount()).rejects.toThrow(/no amoCRM OAuth token/);
    await amo.exchangeAuthorizationCode('good-code');
    expect(fake.tokenRequests).toEqual([
      {
        client_id: 'client-id',
        client_secret: 'client-secret',
        redirect_uri: 'https://bridge.example/oauth',
        grant_type: 'authorization_code',
        code: 'good-code',
      },
    ]);
    const rows = await db.kysely.selectFrom('amo_tokens').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ access_token: 'access-1', refresh_token: 'refresh-1' });
    expect(Number(rows[0].expires_at)).toBeGreaterThan(Date.now() + 86_000_000);
    await expect(amo.hasCredentials()).resolves.toBe(true);
    // Another instance (or a restart) finds the stored pair.
    await expect(oauthClient(db, fake.url).getAccount()).resolves.toEqual({ id: 42, name: 'Компания 2', subdomain: 'company2' });
    await expect(oauthClient(db, fake.url).exchangeAuthorizationCode('bad-code')).rejects.toBeInstanceOf(AmoAuthError);
  });

  it('on a 401 refreshes once, persists the new pair at once, and retries', async () => {
    const { db, fake } = await setup();
    const amo = oauthClient(db, fake.url);
    await amo.exchangeAuthorizationCode('good-code');
    await amo.getAccount();
    fake.revokeAccess();
    const callsBefore = fake.apiCalls;
    await expect(amo.getAccount()).resolves.toMatchObject({ id: 42 });
    expect(fake.apiCalls - callsBefore).toBe(2); // the refused call and its retry
    expect(fake.tokenRequests.map((r) => r.grant_type)).toEqual(['authorization_code', 'refresh_token']);
    expect(fake.tokenRequests[1].refresh_token).toBe('refresh-1');
    const row = await db.kysely.selectFrom('amo_tokens').selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ access_token: 'access-2', refresh_token: 'refresh-2' });
    expect(fake.currentRefresh()).toBe('refresh-2');
  });

  it('does one refresh for many parallel calls on an expired token', async () => {
    const { db, fake } = await setup({ refreshDelayMs: 100 });
    await authorizedAndExpired(db, fake);
    const amo = oauthClient(db, fake.url);
    const results = await Promise.all(Array.from({ length: 10 }, () => amo.getAccount()));
    expect(results.every((r) => r.id === 42)).toBe(true);
    expect(fake.tokenRequests.filter((r) => r.grant_type === 'refresh_token')).toHaveLength(1);
    const row = await db.kysely.selectFrom('amo_tokens').selectAll().executeTakeFirstOrThrow();
    expect(row.refresh_token).toBe('refresh-2');
    expect(fake.currentRefresh()).toBe('refresh-2');
  });

  it('does one refresh for two clients of one process sharing the database', async () => {
    const { db, fake } = await setup({ refreshDelayMs: 100 });
    await authorizedAndExpired(db, fake);
    const a = oauthClient(db, fake.url);
    const b = oauthClient(db, fake.url);
    await Promise.all([...Array.from({ length: 5 }, () => a.getAccount()), ...Array.from({ length: 5 }, () => b.getAccount())]);
    expect(fake.tokenRequests.filter((r) => r.grant_type === 'refresh_token')).toHaveLength(1);
  });

  it('reports a refused refresh token as an AmoAuthError (a person must authorize again)', async () => {
    const { db, fake } = await setup();
    const store = new TokenStore(db);
    await store.save({ accessToken: 'old', refreshToken: 'spent', expiresAt: Date.now() - 1 });
    const error = await oauthClient(db, fake.url).getAccount().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AmoAuthError);
    expect(fake.apiCalls).toBe(0);
    // Nothing was overwritten: the row still holds what was there.
    await expect(store.load()).resolves.toMatchObject({ refreshToken: 'spent' });
  });

  // Several instances share state only on PostgreSQL; SQLite is one process by design.
  if (kind === 'postgres') it('does one refresh across instances with their own connections', async () => {
    const { db, fake } = await setup({ refreshDelayMs: 150 });
    await authorizedAndExpired(db, fake);
    const instances = [db, connect(POSTGRES_URL, { schema: db.schema }), connect(POSTGRES_URL, { schema: db.schema })];
    cleanups.push(() => instances[1].close(), () => instances[2].close());
    const clients = instances.map((d) => oauthClient(d, fake.url));
    const results = await Promise.all(clients.flatMap((c) => Array.from({ length: 4 }, () => c.getAccount())));
    expect(results).toHaveLength(12);
    expect(fake.tokenRequests.filter((r) => r.grant_type === 'refresh_token')).toHaveLength(1);
    const row = await db.kysely.selectFrom('amo_tokens').selectAll().executeTakeFirstOrThrow();
    expect(row.refresh_token).toBe(fake.currentRefresh());

    // An instance still holding a rotated-away access token adopts the stored pair on a
    // 401 instead of spending the (already spent) refresh token again.
    fake.revokeAccess();
    await clients[0].getAccount();
    await expect(clients[1].getAccount()).resolves.toMatchObject({ id: 42 });
    expect(fake.tokenRequests.filter((r) => r.grant_type === 'refresh_token')).toHaveLength(2);
  });
});
