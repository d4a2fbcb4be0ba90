import http from 'node:http';
import type { AddressInfo } from 'node:net';
import qs from 'qs';
import { afterEach, describe, expect, it } from 'vitest';
import { AmoClient, AmoTransportError, MemoryRateLimiter, type RateLimiter } from '../src/amo/index.js';
import type { Db } from '../src/db/connect.js';
import { HttpError } from '../src/lib/http-error.js';
import { createTestLogger } from '../src/logger.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { maxInAnyWindow } from './support/rate-window.js';

/**
 * The transport under amocrm-js, against tiny raw node:http servers: each test controls
 * exactly what goes over the wire (chunk boundaries, silence, empty error bodies).
 */

interface Hit {
  method: string;
  url: string;
  path: string;
  query: qs.ParsedQs;
  headers: http.IncomingHttpHeaders;
  body: string;
  at: number;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, hit: Hit) => void;

const servers: http.Server[] = [];

async function startServer(handler: Handler): Promise<{ url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const [path, search = ''] = url.split('?');
      const hit: Hit = {
        method: req.method ?? '',
        url,
        path,
        query: qs.parse(search, { arrayLimit: 1000 }),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: performance.now(),
      };
      hits.push(hit);
      handler(req, res, hit);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, hits };
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** The transport tests need no database: a long-lived token and an explicit limiter. */
const noDb: Db = {
  dialect: 'sqlite',
  close: async () => undefined,
  get kysely(): never {
    throw new Error('no database in transport tests');
  },
};

function client(
  baseUrl: string,
  overrides: { timeoutMs?: number; retries?: number; limiter?: RateLimiter; metrics?: Metrics } = {},
): { amo: AmoClient; metrics: Metrics } {
  const metrics = overrides.metrics ?? createMetrics();
  const amo = AmoClient.create({
    baseUrl,
    subdomain: 'company2',
    auth: { kind: 'long-lived', token: 'long-lived-token' },
    db: noDb,
    rateLimitRps: 50,
    rateLimiter: overrides.limiter ?? new MemoryRateLimiter({ rps: 50 }),
    timeoutMs: overrides.timeoutMs ?? 2000,
    retries: overrides.retries ?? 3,
    minRetryDelayMs: 10,
    logger: createTestLogger(),
    metrics,
  });
  return { amo, metrics };
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/hal+json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function counter(metrics: Metrics, endpoint: string, outcome: string): Promise<number> {
  const { values } = await metrics.amoRequests.get();
  return values.find((v) => v.labels.endpoint === endpoint && v.labels.outcome === outcome)?.value ?? 0;
}

const NAMES = ['Анна', 'Юлия', 'Щукина', 'Пётр', 'Ёлкина', 'Жанна', 'Эдуард', 'Ярослава'];

describe('amo transport', () => {
  it('delivers Cyrillic intact from a ~500 KB answer sent in chunks cut mid-character', async () => {
    const contacts = Array.from({ length: 2000 }, (_, i) => ({
      id: i + 1,
      name: `${NAMES[i % NAMES.length]} ${NAMES[(i * 3) % NAMES.length]}ович №${i} — «тест»`,
      first_name: NAMES[i % NAMES.length],
      last_name: `Щербаков-Лёвин ${i}`,
      custom_fields_values: [
        { field_id: 932790, field_name: 'detmirUserId', values: [{ value: `пользователь-${i}` }] },
      ],
    }));
    const payload = Buffer.from(JSON.stringify({ _page: 1, _links: {}, _embedded: { contacts } }), 'utf8');
    expect(payload.length).toBeGreaterThan(400_000);
    let cutsInsideCharacters = 0;
    const sent: Buffer[] = [];

    const { url } = await startServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/hal+json', 'Content-Length': payload.length });
      // Odd chunk sizes over two-byte characters: most cuts land between a lead byte and
      // its continuation byte. Each write is flushed separately (setImmediate), so the
      // client really receives them as separate chunks.
      let offset = 0;
      const step = () => {
        if (offset >= payload.length) return void res.end();
        const size = 1021 + (offset % 7);
        const end = Math.min(payload.length, offset + size);
        if (end < payload.length && (payload[end] & 0xc0) === 0x80) cutsInsideCharacters++;
        sent.push(payload.subarray(offset, end));
        res.write(payload.subarray(offset, end));
        offset = end;
        setImmediate(step);
      };
      step();
    });

    const { amo } = client(url);
    const found = await amo.searchContacts('пользователь');
    expect(cutsInsideCharacters).toBeGreaterThan(100);
    // What amocrm-js's DomainRequest does with such chunks (`buffer.join('')`) mangles them.
    expect(sent.join('')).toContain('\uFFFD');
    expect(found).toHaveLength(contacts.length);
    expect(found).toEqual(contacts.map((c) => ({ ...c, custom_fields_values: c.custom_fields_values })));
    const text = JSON.stringify(found);
    expect(text).not.toContain('\uFFFD');
  });

  it('fails a never-answering server after the timeout', async () => {
    const { url } = await startServer(() => {
      /* never answers */
    });
    const { amo, metrics } = client(url, { timeoutMs: 300, retries: 0 });
    const started = performance.now();
    const error = await amo.getAccount().catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(AmoTransportError);
    expect((error as AmoTransportError).kind).toBe('timeout');
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1500);
    expect(await counter(metrics, '/api/v4/account', 'timeout')).toBe(1);
  });

  it('fails a server that sends headers and then stalls the body after the timeout', async () => {
    const { url } = await startServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/hal+json', 'Content-Length': 1000 });
      res.write('{"id": 1, "name": "Компания');
    });
    const { amo } = client(url, { timeoutMs: 300, retries: 0 });
    const started = performance.now();
    await expect(amo.getAccount()).rejects.toBeInstanceOf(AmoTransportError);
    expect(performance.now() - started).toBeLessThan(1500);
  });

  it('retries a timed-out GET and succeeds', async () => {
    let calls = 0;
    const { url, hits } = await startServer((_req, res) => {
      if (++calls === 1) return; // the first attempt hangs
      json(res, 200, { id: 1, name: 'Компания 2', subdomain: 'company2' });
    });
    const { amo } = client(url, { timeoutMs: 200, retries: 2 });
    await expect(amo.getAccount()).resolves.toEqual({ id: 1, name: 'Компания 2', subdomain: 'company2' });
    expect(hits).toHaveLength(2);
  });

  it('retries an empty-bodied 429 after its Retry-After, then succeeds', async () => {
    let calls = 0;
    const { url, hits } = await startServer((_req, res) => {
      if (++calls === 1) {
        res.writeHead(429, { 'Retry-After': '1', 'Content-Length': 0 });
        return void res.end();
      }
      json(res, 200, { id: 7, name: 'Компания 2', subdomain: 'company2' });
    });
    const { amo, metrics } = client(url);
    const account = await amo.getAccount();
    expect(account.id).toBe(7);
    expect(hits).toHaveLength(2);
    expect(hits[1].at - hits[0].at).toBeGreaterThanOrEqual(990);
    expect(await counter(metrics, '/api/v4/account', '429')).toBe(1);
    expect(await counter(metrics, '/api/v4/account', '2xx')).toBe(1);
  });

  it('never takes an empty 401 or 429 for a success (amocrm-js would resolve them)', async () => {
    const { url } = await startServer((_req, res) => {
      res.writeHead(401, { 'Content-Length': 0 });
      res.end();
    });
    const { amo } = client(url, { retries: 0 });
    const error = await amo.getAccount().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(401);
  });

  it('does not retry a 400 and keeps its problem+json body', async () => {
    const problem = {
      title: 'Bad Request',
      type: 'https://httpstatus.es/400',
      status: 400,
      detail: 'Request validation failed',
      'validation-errors': [{ request_id: '0', errors: [{ code: 'NotSupportedChoice', path: 'status_id', detail: 'Статус не найден' }] }],
    };
    const { url, hits } = await startServer((_req, res) => {
      const text = JSON.stringify(problem);
      res.writeHead(400, { 'Content-Type': 'application/problem+json' });
      res.end(text);
    });
    const { amo, metrics } = client(url);
    const error = await amo
      .createLeadsComplex([
        { requestId: '0', name: 'Сделка', pipelineId: 1, statusId: 2, tagIds: [], customFields: [], contact: { id: 5 } },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect((error as HttpError).status).toBe(400);
    expect((error as HttpError).retryable).toBe(false);
    expect(JSON.parse((error as HttpError).body)).toEqual(problem);
    expect(hits).toHaveLength(1);
    expect(await counter(metrics, '/api/v4/leads/complex', '4xx')).toBe(1);
  });

  it('retries a GET on 5xx, but not a create whose outcome a 5xx leaves unknown', async () => {
    let getCalls = 0;
    const { url, hits } = await startServer((req, res, hit) => {
      if (hit.method === 'GET' && ++getCalls < 3) return json(res, 502, { title: 'Bad Gateway' });
      if (hit.method === 'GET') return json(res, 200, { id: 1, name: 'n', subdomain: 's' });
      json(res, 500, { title: 'Internal Server Error' });
    });
    const { amo } = client(url);
    await expect(amo.getAccount()).resolves.toMatchObject({ id: 1 });
    expect(hits.filter((h) => h.method === 'GET')).toHaveLength(3);
    await expect(
      amo.createLeadsComplex([
        { requestId: '1', name: 'Сделка', pipelineId: 1, statusId: 2, tagIds: [], customFields: [], contact: { id: 5 } },
      ]),
    ).rejects.toMatchObject({ status: 500 });
    expect(hits.filter((h) => h.method === 'POST')).toHaveLength(1);
  });

  it('retries a create on 429 (amoCRM did not act on it)', async () => {
    let calls = 0;
    const { url, hits } = await startServer((_req, res) => {
      if (++calls === 1) {
        res.writeHead(429);
        return void res.end();
      }
      json(res, 200, [{ id: 11, contact_id: 22, company_id: null, request_id: ['r1'], merged: false }]);
    });
    const { amo } = client(url);
    const result = await amo.createLeadsComplex([
      { requestId: 'r1', name: 'Сделка', pipelineId: 1, statusId: 2, tagIds: [], customFields: [], contact: { id: 22 } },
    ]);
    expect(result).toEqual([{ id: 11, contact_id: 22, company_id: null, request_id: ['r1'], merged: false }]);
    expect(hits).toHaveLength(2);
  });

  it('reports a refused connection as a TransportError after retrying', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { amo } = client(`http://127.0.0.1:${port}`, { retries: 1 });
    const error = await amo.getAccount().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AmoTransportError);
    expect((error as AmoTransportError).notSent).toBe(true);
  });

  it('answers [] for a 204 search and pages a search until no next link', async () => {
    const { url, hits } = await startServer((_req, res, hit) => {
      if (hit.path === '/api/v4/contacts' && hit.query.query === 'никого') {
        res.writeHead(204);
        return void res.end();
      }
      const page = Number(hit.query.page);
      json(res, 200, {
        _page: page,
        _links: page < 2 ? { next: { href: `https://company2.amocrm.ru/api/v4/leads?page=${page + 1}` } } : {},
        _embedded: { leads: [{ id: page, name: `Сделка ${page}`, status_id: 1, pipeline_id: 2, custom_fields_values: null }] },
      });
    });
    const { amo } = client(url);
    await expect(amo.searchContacts('никого')).resolves.toEqual([]);
    const leads = await amo.searchLeads('Сделка');
    expect(leads.map((l) => l.id)).toEqual([1, 2]);
    expect(leads[0].custom_fields_values).toBeNull();
    const searches = hits.filter((h) => h.path === '/api/v4/leads');
    expect(searches.map((h) => h.query)).toEqual([
      { query: 'Сделка', with: 'contacts', page: '1', limit: '250' },
      { query: 'Сделка', with: 'contacts', page: '2', limit: '250' },
    ]);
    expect(hits[0].headers.authorization).toBe('Bearer long-lived-token');
  });

  it('reads deals by id in one filter[id][] GET per 250 ids', async () => {
    const { url, hits } = await startServer((_req, res, hit) => {
      const ids = (hit.query.filter as { id: string[] }).id.map(Number);
      json(res, 200, {
        _embedded: {
          leads: ids.map((id) => ({
            id,
            name: `Сделка ${id}`,
            price: null,
            status_id: 142,
            pipeline_id: 9,
            updated_at: 1700000000,
            custom_fields_values: null,
            _embedded: { contacts: [{ id: id * 10, is_main: true }] },
          })),
        },
      });
    });
    const { amo } = client(url);
    const ids = Array.from({ length: 600 }, (_, i) => 1000 + i);
    const leads = await amo.getLeadsByIds([...ids, 1000]);
    expect(leads.map((l) => l.id)).toEqual(ids);
    expect(hits).toHaveLength(3);
    expect(hits.map((h) => (h.query.filter as { id: string[] }).id.length)).toEqual([250, 250, 100]);
    for (const hit of hits) {
      expect(hit.url).toContain('filter[id][]=');
      expect(hit.query.with).toBe('contacts');
      expect(hit.query.limit).toBe('250');
    }
    expect(leads[0]._embedded?.contacts).toEqual([{ id: 10000, is_main: true }]);
  });

  it('lists deals updated since a time, with the filter and order amoCRM reads', async () => {
    const { url, hits } = await startServer((_req, res) => {
      json(res, 200, {
        _page: 3,
        _links: { next: { href: 'x' } },
        _embedded: { leads: [{ id: 1, name: '', status_id: 1, pipeline_id: 77, updated_at: 1700000100, custom_fields_values: null }] },
      });
    });
    const { amo } = client(url);
    const page = await amo.listLeadsUpdatedSince({ pipelineId: 77, fromUnix: 1700000000, page: 3, limit: 100 });
    expect(page).toMatchObject({ hasMore: true, leads: [{ id: 1, updated_at: 1700000100 }] });
    expect(hits[0].query).toEqual({
      filter: { pipeline_id: '77', updated_at: { from: '1700000000' } },
      order: { updated_at: 'asc' },
      with: 'contacts',
      page: '3',
      limit: '100',
    });
  });

  it('maps complex deals to the amoCRM v4 JSON and refuses more than 50', async () => {
    const { url, hits } = await startServer((_req, res) => {
      json(res, 200, [
        { id: 101, contact_id: 201, company_id: null, request_id: ['a'], merged: false },
        { id: 102, contact_id: 55, company_id: null, request_id: 'b', merged: false },
      ]);
    });
    const { amo } = client(url);
    const results = await amo.createLeadsComplex([
      {
        requestId: 'a',
        name: 'Заказ 1',
        pipelineId: 10,
        statusId: 20,
        price: 1500,
        tagIds: [499278],
        customFields: [{ fieldId: 932792, value: 'order-1' }],
        contact: {
          firstName: 'Иван',
          lastName: 'Петров',
          name: 'Иван Петров',
          phone: '+79990001122',
          customFields: [{ fieldId: 932790, value: 'user-1' }],
        },
      },
      { requestId: 'b', name: 'Заказ 2', pipelineId: 10, statusId: 20, tagIds: [], customFields: [], contact: { id: 55 } },
    ]);
    expect(results.map((r) => r.request_id)).toEqual([['a'], ['b']]);
    expect(hits[0].path).toBe('/api/v4/leads/complex');
    expect(hits[0].headers['content-type']).toBe('application/json');
    expect(JSON.parse(hits[0].body)).toEqual([
      {
        request_id: 'a',
        name: 'Заказ 1',
        pipeline_id: 10,
        status_id: 20,
        price: 1500,
        custom_fields_values: [{ field_id: 932792, values: [{ value: 'order-1' }] }],
        _embedded: {
          tags: [{ id: 499278 }],
          contacts: [
            {
              first_name: 'Иван',
              last_name: 'Петров',
              name: 'Иван Петров',
              custom_fields_values: [
                { field_code: 'PHONE', values: [{ value: '+79990001122', enum_code: 'WORK' }] },
                { field_id: 932790, values: [{ value: 'user-1' }] },
              ],
            },
          ],
        },
      },
      { request_id: 'b', name: 'Заказ 2', pipeline_id: 10, status_id: 20, _embedded: { contacts: [{ id: 55 }] } },
    ]);
    const tooMany = Array.from({ length: 51 }, (_, i) => ({
      requestId: String(i),
      name: 'x',
      pipelineId: 1,
      statusId: 1,
      tagIds: [],
      customFields: [],
      contact: { id: 1 },
    }));
    await expect(amo.createLeadsComplex(tooMany)).rejects.toThrow(/at most 50/);
    expect(hits).toHaveLength(1);
  });

  it('reads pipelines, custom fields (all pages), webhooks and posts notes and webhooks', async () => {
    const { url, hits } = await startServer((_req, res, hit) => {
      if (hit.path === '/api/v4/leads/pipelines') {
        return json(res, 200, {
          _embedded: {
            pipelines: [
              {
                id: 9,
                name: 'Company 2',
                is_main: true,
                _embedded: {
                  statuses: [
                    { id: 1, name: 'New lead', sort: 10, pipeline_id: 9 },
                    { id: 142, name: 'Success', sort: 10000, pipeline_id: 9 },
                  ],
                },
              },
            ],
          },
        });
      }
      if (hit.path === '/api/v4/leads/custom_fields') {
        const page = Number(hit.query.page);
        return json(res, 200, {
          _page: page,
          _links: page === 1 ? { next: { href: 'next' } } : {},
          _embedded: { custom_fields: [{ id: 930000 + page, name: `Поле ${page}`, type: 'text', code: null, enums: null }] },
        });
      }
      if (hit.path === '/api/v4/webhooks' && hit.method === 'GET') {
        return json(res, 200, { _embedded: { webhooks: [{ id: 1, destination: 'https://b/x', settings: ['status_lead'], disabled: false }] } });
      }
      json(res, 200, { _embedded: {} });
    });
    const { amo } = client(url);
    const pipelines = await amo.getPipelines();
    expect(pipelines[0]._embedded.statuses.map((s) => [s.id, s.name, s.sort])).toEqual([
      [1, 'New lead', 10],
      [142, 'Success', 10000],
    ]);
    const fields = await amo.getCustomFields('leads');
    expect(fields.map((f) => f.name)).toEqual(['Поле 1', 'Поле 2']);
    await expect(amo.listWebhooks()).resolves.toEqual([{ destination: 'https://b/x', settings: ['status_lead'] }]);
    await amo.registerWebhook('https://bridge/webhooks/amocrm/secret', ['status_lead', 'update_lead']);
    await amo.addLeadNotes([{ leadId: 5, text: 'Заказ закрыт партнёром' }]);
    await amo.addLeadNotes([]);
    const posts = hits.filter((h) => h.method === 'POST');
    expect(posts.map((h) => [h.path, JSON.parse(h.body)])).toEqual([
      ['/api/v4/webhooks', { destination: 'https://bridge/webhooks/amocrm/secret', settings: ['status_lead', 'update_lead'], sort: 10 }],
      ['/api/v4/leads/notes', [{ entity_id: 5, note_type: 'common', params: { text: 'Заказ закрыт партнёром' } }]],
    ]);
  });

  it("routes amocrm-js's own request API and factories through the adapter to the base URL", async () => {
    const { url, hits } = await startServer((_req, res) => {
      json(res, 200, { id: 3, name: 'Компания', subdomain: 'company2' });
    });
    const { amo } = client(url);
    const response = await amo.sdk.request.get<{ name: string }>('https://company2.amocrm.ru/api/v4/account', { with: 'version' });
    expect(response.data.name).toBe('Компания');
    expect(response.response.statusCode).toBe(200);
    expect(hits[0].url).toBe('/api/v4/account?with=version');
    // The factories captured sdk.request when amocrm-js built them: the same object.
    const leadsFactory = amo.sdk.leads as unknown as { getRequest(): unknown };
    expect(leadsFactory.getRequest()).toBe(amo.sdk.request);
  });

  it('keeps to the limiter even when the server counts requests late', async () => {
    // The server counts each request only after a random stall of up to 400 ms (a slow
    // network, a busy gateway), then answers. Spacing starts alone would let it see more
    // than N in a second; holding each slot until the answer arrives does not.
    const counted: number[] = [];
    const { url, hits } = await startServer((_req, res) => {
      setTimeout(() => {
        counted.push(performance.now());
        json(res, 200, { id: 1, name: 'n', subdomain: 's' });
      }, Math.random() * 400);
    });
    const { amo } = client(url, { limiter: new MemoryRateLimiter({ rps: 6 }) });
    await Promise.all(Array.from({ length: 14 }, () => amo.getAccount()));
    expect(hits).toHaveLength(14);
    expect(maxInAnyWindow(hits.map((h) => h.at), 1000)).toBeLessThanOrEqual(6);
    expect(maxInAnyWindow(counted, 1000)).toBeLessThanOrEqual(6);
  });
});

