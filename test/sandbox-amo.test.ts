import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import qs from 'qs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FIELD_IDS,
  SERVICES_TAG,
  buildWebhookBody,
  createAmoSimulator,
  type AmoSimulator,
  type AmoSimulatorOptions,
} from '../src/sandbox/amo/index.js';

/** Everything here runs over real HTTP against `listen()`. */

const TOKEN = 'test-long-lived-token';
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function start(options: AmoSimulatorOptions = {}): Promise<{ sim: AmoSimulator; url: string }> {
  // A generous limit unless a test is about the limit itself.
  const sim = createAmoSimulator({ longLivedToken: TOKEN, rateLimitRps: 1000, ...options });
  const url = await sim.listen();
  cleanups.push(() => sim.close());
  return { sim, url };
}

interface Answer {
  status: number;
  type: string;
  text: string;
  json: <T = Record<string, unknown>>() => T;
}

async function call(
  url: string,
  path: string,
  init: Omit<RequestInit, 'body'> & { token?: string | null; body?: unknown } = {},
): Promise<Answer> {
  const { token = TOKEN, body, ...rest } = init;
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, {
    ...rest,
    headers: { ...headers, ...(rest.headers as Record<string, string> | undefined) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    text,
    json: <T,>() => JSON.parse(text) as T,
  };
}

/** A local webhook receiver that keeps each raw body and its qs parse. */
async function receiver(status = 200): Promise<{ url: string; bodies: string[]; parsed: Array<Record<string, unknown>> }> {
  const bodies: string[] = [];
  const parsed: Array<Record<string, unknown>> = [];
  const app = express();
  app.post('/hook', express.text({ type: '*/*' }), (req, res) => {
    const raw = String(req.body);
    bodies.push(raw);
    // `leads[status][0][custom_fields][0][values][0][value]` is 7 levels deep: qs's default
    // depth of 5 would leave "[0][value]" as a literal key.
    parsed.push(qs.parse(raw, { depth: 10 }) as Record<string, unknown>);
    res.status(status).end();
  });
  const server: Server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies, parsed };
}

type ComplexAnswer = Array<{ id: number; contact_id: number | null; company_id: number | null; request_id: string[]; merged: boolean }>;

function complexLead(sim: AmoSimulator, orderId: string, contact: Record<string, unknown>) {
  return {
    name: `Order ${orderId}`,
    pipeline_id: sim.pipelineIdByName('Company 2'),
    status_id: sim.statusIdByName('New lead'),
    custom_fields_values: [{ field_id: FIELD_IDS.detmirOrderId, values: [{ value: orderId }] }],
    _embedded: { tags: [{ id: SERVICES_TAG.id }], contacts: [contact] },
  };
}

describe('OAuth', () => {
  it('exchanges a code once, rotates refresh tokens, and keeps old access tokens until revoked', async () => {
    const { sim, url } = await start();
    const app = { client_id: 'sim-client-id', client_secret: 'sim-client-secret', redirect_uri: 'https://bridge.example/oauth' };
    const code = sim.issueAuthorizationCode();

    const first = await call(url, '/oauth2/access_token', { method: 'POST', token: null, body: { ...app, grant_type: 'authorization_code', code } });
    expect(first.status).toBe(200);
    const pair = first.json<{ token_type: string; expires_in: number; access_token: string; refresh_token: string }>();
    expect(pair).toMatchObject({ token_type: 'Bearer', expires_in: 86_400 });

    const again = await call(url, '/oauth2/access_token', { method: 'POST', token: null, body: { ...app, grant_type: 'authorization_code', code } });
    expect(again.status).toBe(400);
    expect(again.json()).toMatchObject({ hint: 'Authorization code has been revoked', type: 'https://developers.amocrm.ru/v3/errors/OAuthProblemJson' });

    // A form body works as well as JSON.
    const form = new URLSearchParams({ ...app, grant_type: 'refresh_token', refresh_token: pair.refresh_token });
    const refreshed = await call(url, '/oauth2/access_token', {
      method: 'POST',
      token: null,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    expect(refreshed.status).toBe(200);
    const next = refreshed.json<{ access_token: string; refresh_token: string }>();
    expect(next.refresh_token).not.toBe(pair.refresh_token);
    expect(next.access_token).not.toBe(pair.access_token);

    const reused = await call(url, '/oauth2/access_token', {
      method: 'POST',
      token: null,
      body: { ...app, grant_type: 'refresh_token', refresh_token: pair.refresh_token },
    });
    expect(reused.status).toBe(400);
    expect(reused.json()).toMatchObject({ hint: 'Token has been revoked' });

    expect((await call(url, '/api/v4/account', { token: pair.access_token })).status).toBe(200);
    expect((await call(url, '/api/v4/account', { token: next.access_token })).status).toBe(200);

    sim.revokeAccessTokens();
    expect((await call(url, '/api/v4/account', { token: next.access_token })).status).toBe(401);
    expect((await call(url, '/api/v4/account')).status).toBe(200); // the long-lived token stays valid

    const third = await call(url, '/oauth2/access_token', {
      method: 'POST',
      token: null,
      body: { ...app, grant_type: 'refresh_token', refresh_token: next.refresh_token },
    });
    expect((await call(url, '/api/v4/account', { token: third.json<{ access_token: string }>().access_token })).status).toBe(200);
  });

  it('lets access tokens expire', async () => {
    let now = 1_700_000_000_000;
    const { sim, url } = await start({ now: () => now, accessTokenTtlSec: 60 });
    const { access_token: token } = sim.issueTokenPair();
    expect((await call(url, '/api/v4/account', { token })).status).toBe(200);
    now += 61_000;
    expect((await call(url, '/api/v4/account', { token })).status).toBe(401);
  });

  it('accepts only the long-lived token staff issued last', async () => {
    const { sim, url } = await start();
    sim.setLongLivedToken('reissued-token');
    expect((await call(url, '/api/v4/account')).status).toBe(401);
    expect((await call(url, '/api/v4/account', { token: 'reissued-token' })).status).toBe(200);
    sim.setLongLivedToken(undefined);
    expect((await call(url, '/api/v4/account', { token: 'reissued-token' })).status).toBe(401);
  });

  it('answers 401 problem+json without a bearer token', async () => {
    const { url } = await start();
    const res = await call(url, '/api/v4/leads', { token: null });
    expect(res.status).toBe(401);
    expect(res.type).toContain('application/problem+json');
    expect(res.json()).toMatchObject({ status: 401, title: 'Unauthorized', type: 'https://httpstatus.es/401' });
    expect((await call(url, '/api/v4/leads', { token: 'wrong' })).status).toBe(401);
  });
});

describe('account, pipelines and custom fields', () => {
  it('seeds the Company 2 pipeline in order, with 142/143 in every pipeline', async () => {
    const { sim, url } = await start();
    const res = await call(url, '/api/v4/leads/pipelines');
    expect(res.status).toBe(200);
    expect(res.type).toContain('application/hal+json');
    const body = res.json<{ _embedded: { pipelines: Array<{ id: number; name: string; is_main: boolean; _embedded: { statuses: Array<{ id: number; name: string; type: number }> } }> } }>();
    const main = body._embedded.pipelines.find((p) => p.name === 'Company 2');
    expect(main?.is_main).toBe(true);
    expect(main?._embedded.statuses.map((s) => s.name)).toEqual([
      'Incoming leads',
      'New lead',
      'Recorded for trial',
      'Confirmed VU',
      'Lesson Passed',
      'Waiting for a solution',
      'Waiting for payment',
      'Payment received',
      'Submit Subscription Status',
      'Another lesson has passed',
      'Closed - won',
      'Closed - lost',
    ]);
    expect(main?._embedded.statuses[0]?.type).toBe(1);
    const sales = body._embedded.pipelines.find((p) => p.name === 'Sales');
    expect(sales?._embedded.statuses.map((s) => s.id)).toEqual(expect.arrayContaining([142, 143]));
    expect(sim.statusIdByName('Closed - won', 'Sales')).toBe(142);

    const one = await call(url, `/api/v4/leads/pipelines/${main?.id}`);
    expect(one.json()).toMatchObject({ id: main?.id, name: 'Company 2' });
    expect((await call(url, '/api/v4/leads/pipelines/999')).status).toBe(404);
  });

  it('lists contact and lead custom fields with the pinned ids', async () => {
    const { sim, url } = await start();
    const contacts = (await call(url, '/api/v4/contacts/custom_fields')).json<{ _embedded: { custom_fields: Array<{ id: number; name: string; code: string | null; type: string; enums: Array<{ value: string }> | null }> } }>();
    const byCode = new Map(contacts._embedded.custom_fields.map((f) => [f.code ?? f.name, f]));
    expect(byCode.get('PHONE')).toMatchObject({ type: 'multitext' });
    expect(byCode.get('PHONE')?.enums?.map((e) => e.value)).toEqual(expect.arrayContaining(['WORK', 'MOB']));
    expect(byCode.get('EMAIL')).toBeDefined();
    expect(byCode.get('detmirUserId')).toMatchObject({ id: 932790, type: 'text' });
    const leads = (await call(url, '/api/v4/leads/custom_fields')).json<{ _embedded: { custom_fields: Array<{ id: number; name: string }> } }>();
    expect(leads._embedded.custom_fields.map((f) => f.name)).toEqual(expect.arrayContaining(['detmirOrderId', 'Subscription status']));
    expect(sim.fieldIdByName('leads', 'detmirOrderId')).toBe(932792);
  });
});

describe('contacts', () => {
  it('answers an empty search with 204 and no body', async () => {
    const { url } = await start();
    const res = await call(url, '/api/v4/contacts?query=nobody');
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
  });

  it('searches by substring, so callers must filter exactly', async () => {
    // About matching, not the index's lag: these contacts count as made long ago.
    const { sim, url } = await start({ searchIndexDelayMs: 0 });
    sim.createContactAsStaff({ firstName: 'Anna', lastName: 'One', detmirUserId: 'u1', phone: '+7 (999) 000-11-22' });
    sim.createContactAsStaff({ firstName: 'Boris', lastName: 'Ten', detmirUserId: 'u10' });
    const ids = async (query: string) => {
      const res = await call(url, `/api/v4/contacts?query=${encodeURIComponent(query)}`);
      if (res.status === 204) return [];
      return res.json<{ _embedded: { contacts: Array<{ first_name: string }> } }>()._embedded.contacts.map((c) => c.first_name);
    };
    expect(await ids('u1')).toEqual(['Anna', 'Boris']);
    expect(await ids('u10')).toEqual(['Boris']);
    expect(await ids('BORIS')).toEqual(['Boris']);
    expect(await ids('79990001122')).toEqual(['Anna']); // phones match on digits

    const page = await call(url, '/api/v4/contacts?query=u1&limit=1');
    const body = page.json<{ _page: number; _links: { next?: { href: string } }; _embedded: { contacts: unknown[] } }>();
    expect(body._embedded.contacts).toHaveLength(1);
    expect(body._links.next?.href).toContain('page=2');
    expect((await call(url, '/api/v4/contacts?query=u1&limit=251')).status).toBe(400);
  });

  it("keeps new contacts and deals out of search for 2 s by default, as amoCRM's index trails creates", async () => {
    let now = 1_700_000_000_000;
    const { sim, url } = await start({ now: () => now });
    const contact = sim.createContactAsStaff({ firstName: 'Late', lastName: 'Indexed', detmirUserId: 'u-late' });
    const lead = await sim.createLeadAsStaff({ name: 'Late deal', detmirOrderId: 'o-late' }, { fire: false });
    expect((await call(url, '/api/v4/contacts?query=u-late')).status).toBe(204);
    expect((await call(url, '/api/v4/leads?query=o-late')).status).toBe(204);
    // Reading by id or by filter is not subject to the index.
    expect((await call(url, `/api/v4/contacts?filter[id][]=${contact.id}`)).status).toBe(200);
    expect((await call(url, `/api/v4/leads/${lead.id}`)).status).toBe(200);
    now += 1999;
    expect((await call(url, '/api/v4/contacts?query=u-late')).status).toBe(204);
    now += 1;
    expect((await call(url, '/api/v4/contacts?query=u-late')).status).toBe(200);
    expect((await call(url, '/api/v4/leads?query=o-late')).status).toBe(200);
  });

  it('finds new contacts at once when told to (searchIndexDelayMs: 0)', async () => {
    const { sim, url } = await start({ searchIndexDelayMs: 0 });
    sim.createContactAsStaff({ firstName: 'Quick', lastName: 'Indexed', detmirUserId: 'u-quick' });
    expect((await call(url, '/api/v4/contacts?query=u-quick')).status).toBe(200);
  });

  it('creates contacts in a batch and answers their ids with request_id', async () => {
    const { sim, url } = await start();
    const res = await call(url, '/api/v4/contacts', {
      method: 'POST',
      body: [
        {
          first_name: 'Имя',
          last_name: 'Фамилия',
          custom_fields_values: [
            { field_code: 'PHONE', values: [{ value: '+79990000001' }] },
            { field_id: FIELD_IDS.detmirUserId, values: [{ value: 'u-42' }] },
          ],
        },
      ],
    });
    expect(res.status).toBe(200);
    const created = res.json<{ _embedded: { contacts: Array<{ id: number; request_id: string }> } }>()._embedded.contacts;
    expect(created[0]?.request_id).toBe('0');
    const stored = sim.state.contacts.get(created[0]?.id ?? 0);
    expect(stored).toMatchObject({ name: 'Имя Фамилия', first_name: 'Имя', last_name: 'Фамилия' });
    expect(stored?.custom_fields_values?.[0]?.values[0]).toMatchObject({ value: '+79990000001', enum_code: 'WORK' });

    const bad = await call(url, '/api/v4/contacts', {
      method: 'POST',
      body: [{ first_name: 'X', custom_fields_values: [{ field_id: 1, values: [{ value: 'y' }] }] }],
    });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({
      'validation-errors': [{ request_id: '0', errors: [{ code: 'NotSupportedChoice', path: 'custom_fields_values.0.field_id' }] }],
    });
  });
});

describe('leads', () => {
  it('answers leads/complex with a top-level array and links the contact, tag and order field', async () => {
    const { sim, url } = await start();
    const staff = sim.createContactAsStaff({ firstName: 'Staff', lastName: 'Made', detmirUserId: 'u-staff' });
    const res = await call(url, '/api/v4/leads/complex', {
      method: 'POST',
      body: [
        complexLead(sim, 'o-1', {
          first_name: 'Имя',
          last_name: 'Фамилия',
          custom_fields_values: [{ field_id: FIELD_IDS.detmirUserId, values: [{ value: 'u-new' }] }],
        }),
        { ...complexLead(sim, 'o-2', { id: staff.id }), request_id: 'mine' },
      ],
    });
    expect(res.status).toBe(200);
    const answer = res.json<ComplexAnswer>();
    expect(Array.isArray(answer)).toBe(true);
    expect(answer).toHaveLength(2);
    expect(answer[0]).toMatchObject({ company_id: null, request_id: ['0'], merged: false });
    expect(answer[1]).toMatchObject({ contact_id: staff.id, request_id: ['mine'] });

    const lead = sim.state.leads.get(answer[0]?.id ?? 0);
    expect(lead?.status_id).toBe(sim.statusIdByName('New lead'));
    expect(lead?._embedded.tags.map((t) => t.id)).toEqual([SERVICES_TAG.id]);
    expect(lead?._embedded.contacts).toEqual([{ id: answer[0]?.contact_id, is_main: true }]);
    expect(sim.state.contacts.get(answer[0]?.contact_id ?? 0)?.first_name).toBe('Имя');
  });

  it('refuses more than 50 deals in one complex call and creates none', async () => {
    const { sim, url } = await start();
    const body = Array.from({ length: 51 }, (_, i) => complexLead(sim, `o-${i}`, { first_name: `n${i}` }));
    const res = await call(url, '/api/v4/leads/complex', { method: 'POST', body });
    expect(res.status).toBe(400);
    expect(res.type).toContain('application/problem+json');
    expect(res.json()).toHaveProperty('validation-errors');
    expect(sim.state.leads.size).toBe(0);
    expect(sim.state.contacts.size).toBe(0);
  });

  it('reads deals in batches with filter[id][] (both qs styles), with contacts, null custom fields', async () => {
    const { sim, url } = await start();
    const created = await call(url, '/api/v4/leads', {
      method: 'POST',
      body: [{ name: 'A' }, { name: 'B', price: 500 }, { name: 'C' }],
    });
    const ids = created.json<{ _embedded: { leads: Array<{ id: number }> } }>()._embedded.leads.map((l) => l.id);
    expect(ids).toHaveLength(3);

    const res = await call(url, `/api/v4/leads?filter[id][]=${ids[0]}&filter[id][]=${ids[1]}&with=contacts`);
    const leads = res.json<{ _embedded: { leads: Array<Record<string, unknown> & { _embedded: Record<string, unknown> }> } }>()._embedded.leads;
    expect(leads.map((l) => l.name)).toEqual(['A', 'B']);
    expect(leads[0]).toMatchObject({ custom_fields_values: null, pipeline_id: sim.pipelineIdByName('Company 2'), closed_at: null });
    expect(leads[0]?._embedded).toHaveProperty('contacts', []);
    expect(leads[1]?.price).toBe(500);

    const indexed = await call(url, `/api/v4/leads?${qs.stringify({ filter: { id: [ids[2]] } })}`);
    expect(indexed.json<{ _embedded: { leads: Array<{ name: string; _embedded: Record<string, unknown> }> } }>()._embedded.leads.map((l) => l.name)).toEqual(['C']);
    // Without with=contacts the contacts are not embedded.
    expect(indexed.json<{ _embedded: { leads: Array<{ _embedded: Record<string, unknown> }> } }>()._embedded.leads[0]?._embedded).not.toHaveProperty('contacts');

    expect((await call(url, '/api/v4/leads?filter[id][]=1')).status).toBe(204);
    expect((await call(url, '/api/v4/leads/1')).status).toBe(204);
    expect((await call(url, `/api/v4/leads/${ids[0]}`)).json()).toMatchObject({ id: ids[0], name: 'A' });
  });

  it('takes large id batches in either qs style and pages them by limit (default 50)', async () => {
    const { url } = await start();
    const created = await call(url, '/api/v4/leads', { method: 'POST', body: Array.from({ length: 120 }, (_, i) => ({ name: `L${i}` })) });
    const ids = created.json<{ _embedded: { leads: Array<{ id: number }> } }>()._embedded.leads.map((l) => l.id);
    const names = (res: Answer) => res.json<{ _embedded: { leads: Array<{ name: string }> } }>()._embedded.leads.length;
    // qs.stringify's default is the index style: filter[id][0]=…&filter[id][1]=…
    const all = await call(url, `/api/v4/leads?${qs.stringify({ filter: { id: ids }, limit: 250 })}`);
    expect(names(all)).toBe(120);
    const brackets = await call(url, `/api/v4/leads?${ids.map((id) => `filter[id][]=${id}`).join('&')}`);
    expect(names(brackets)).toBe(50);
    expect(brackets.json<{ _links: { next?: { href: string } } }>()._links.next?.href).toContain('page=2');
  });

  it('filters by pipeline and updated_at, orders by updated_at; changes in one second share its updated_at', async () => {
    let now = 1_700_000_000_000;
    const { sim, url } = await start({ now: () => now });
    const first = await sim.createLeadAsStaff({ name: 'first' });
    const second = await sim.createLeadAsStaff({ name: 'second', pipelineName: 'Sales' });
    const before = first.updated_at;
    await sim.moveLead(first.id, { statusName: 'Recorded for trial' });
    await sim.moveLead(first.id, { statusName: 'Confirmed VU' });
    const moved = sim.state.leads.get(first.id);
    // updated_at is a Unix time in whole seconds: two changes within one share it.
    expect(moved?.updated_at).toBe(before);
    now += 1000;
    sim.setLeadFields(first.id, { price: 5 });
    expect(sim.state.leads.get(first.id)?.updated_at).toBe(before + 1);

    const sales = await call(url, `/api/v4/leads?filter[pipeline_id]=${sim.pipelineIdByName('Sales')}`);
    expect(sales.json<{ _embedded: { leads: Array<{ id: number }> } }>()._embedded.leads.map((l) => l.id)).toEqual([second.id]);

    now += 10_000;
    sim.setLeadFields(second.id, { price: 10 });
    const recent = await call(url, `/api/v4/leads?filter[updated_at][from]=${Math.floor(now / 1000)}&order[updated_at]=desc`);
    expect(recent.json<{ _embedded: { leads: Array<{ id: number }> } }>()._embedded.leads.map((l) => l.id)).toEqual([second.id]);

    await sim.moveLead(second.id, { statusId: 143 });
    expect(sim.state.leads.get(second.id)).toMatchObject({ status_id: 143, pipeline_id: sim.pipelineIdByName('Sales') });
    expect(sim.state.leads.get(second.id)?.closed_at).not.toBeNull();
  });

  it('patches deals and adds notes', async () => {
    const { sim, url } = await start();
    const lead = await sim.createLeadAsStaff({ name: 'deal' });
    const patched = await call(url, `/api/v4/leads/${lead.id}`, {
      method: 'PATCH',
      body: { price: 900, custom_fields_values: [{ field_id: sim.fieldIdByName('leads', 'Subscription status'), values: [{ value: 'active' }] }] },
    });
    expect(patched.status).toBe(200);
    expect(patched.json()).toMatchObject({ id: lead.id });
    expect(sim.state.leads.get(lead.id)).toMatchObject({ price: 900 });

    const batch = await call(url, '/api/v4/leads', { method: 'PATCH', body: [{ id: lead.id, custom_fields_values: [{ field_id: sim.fieldIdByName('leads', 'Subscription status'), values: null }] }] });
    expect(batch.status).toBe(200);
    expect(sim.state.leads.get(lead.id)?.custom_fields_values).toBeNull();

    const note = await call(url, '/api/v4/leads/notes', {
      method: 'POST',
      body: [{ entity_id: lead.id, note_type: 'common', params: { text: 'closed by Company 1' } }],
    });
    expect(note.status).toBe(200);
    const notes = await call(url, `/api/v4/leads/${lead.id}/notes`);
    expect(notes.json<{ _embedded: { notes: Array<{ params: { text: string } }> } }>()._embedded.notes[0]?.params.text).toBe('closed by Company 1');
    expect((await call(url, '/api/v4/leads/notes', { method: 'POST', body: [{ entity_id: 1, note_type: 'common', params: { text: 'x' } }] })).status).toBe(400);
  });

  it('refuses broken JSON and non-array batches with 400', async () => {
    const { url } = await start();
    const broken = await call(url, '/api/v4/leads', { method: 'POST', body: '[{"name": ' });
    expect(broken.status).toBe(400);
    expect(broken.type).toContain('application/problem+json');
    expect((await call(url, '/api/v4/leads', { method: 'POST', body: { name: 'x' } })).status).toBe(400);
  });
});

describe('rate limit and faults', () => {
  it('answers 429 beyond the limit in a one-second window, with an empty, an HTML or a JSON body in turn', async () => {
    const { sim, url } = await start({ rateLimitRps: 3 });
    const answers = await Promise.all(Array.from({ length: 9 }, () => call(url, '/api/v4/account')));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(3);
    const limited = answers.filter((a) => a.status === 429);
    expect(limited).toHaveLength(6);
    expect(limited.filter((a) => a.text === '')).toHaveLength(2);
    expect(limited.filter((a) => a.type.startsWith('text/html'))).toHaveLength(2);
    const json = limited.filter((a) => a.type.startsWith('application/problem+json'));
    expect(json).toHaveLength(2);
    expect(json[0]?.json()).toMatchObject({ status: 429 });
    expect(sim.stats.count({ status: 429 })).toBe(6);
    expect(sim.stats.requests.filter((r) => r.status === 429).map((r) => r.contentType).sort()).toEqual(
      ['application/problem+json', 'application/problem+json', 'text/html', 'text/html', null, null].sort(),
    );

    sim.faults.rateLimit429Body = 'empty';
    const empty = await call(url, '/api/v4/account');
    expect(empty).toMatchObject({ status: 429, text: '' });
    sim.faults.rateLimit429Body = 'html';
    const html = await call(url, '/oauth2/access_token', { method: 'POST', body: {} });
    expect(html.status).toBe(429);
    expect(html.type).toContain('text/html');

    await new Promise((r) => setTimeout(r, 1050));
    expect((await call(url, '/api/v4/account')).status).toBe(200);
    expect(sim.stats.count({ status: 429 })).toBe(8);
  });

  it('plays outages, errors, hangs and writes whose answer is lost', async () => {
    const { sim, url } = await start();
    sim.faults.outage = true;
    const down = await call(url, '/api/v4/account');
    expect(down.status).toBe(503);
    sim.faults.outage = false;

    sim.faults.errorRate = 1;
    expect((await call(url, '/api/v4/account')).status).toBe(500);
    sim.faults.errorRate = 0;

    sim.faults.hang = true;
    await expect(fetch(`${url}/api/v4/account`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(200) })).rejects.toThrow();
    sim.faults.hang = false;

    sim.faults.failAfterWriteRate = 1;
    const lost = await call(url, '/api/v4/leads', { method: 'POST', body: [{ name: 'ghost' }] });
    expect(lost.status).toBe(500);
    expect([...sim.state.leads.values()].map((l) => l.name)).toEqual(['ghost']); // created all the same
    sim.faults.failAfterWriteMode = 'reset';
    await expect(call(url, '/api/v4/leads', { method: 'POST', body: [{ name: 'reset' }] })).rejects.toThrow();
    sim.faults.failAfterWriteMode = 'hang';
    await expect(
      fetch(`${url}/api/v4/leads`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify([{ name: 'hung' }]), signal: AbortSignal.timeout(300) }),
    ).rejects.toThrow();
    expect([...sim.state.leads.values()].map((l) => l.name)).toEqual(['ghost', 'reset', 'hung']);
    sim.faults.failAfterWriteRate = 0;

    expect(sim.stats.count({ pathPrefix: '/api/v4/leads', method: 'POST', status: 500 })).toBe(1);
  });

  it('fails a share of API answers at random, each as a 503, a timeout or a write whose answer is lost, and counts the unanswered', async () => {
    const { sim, url } = await start();
    sim.faults.flakyRate = 1;
    sim.faults.flakyModes = ['unavailable'];
    const down = await call(url, '/api/v4/account');
    expect([down.status, down.type]).toEqual([503, 'text/html; charset=utf-8']);

    sim.faults.flakyModes = ['timeout'];
    await expect(fetch(`${url}/api/v4/account`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(200) })).rejects.toThrow();

    // A read cannot lose its answer after a write: it draws another mode.
    sim.faults.flakyModes = ['lostAfterWrite', 'unavailable'];
    expect((await call(url, '/api/v4/account')).status).toBe(503);
    sim.faults.flakyModes = ['lostAfterWrite'];
    await expect(call(url, '/api/v4/leads', { method: 'POST', body: [{ name: 'cut' }] })).rejects.toThrow();
    expect([...sim.state.leads.values()].map((l) => l.name)).toEqual(['cut']);

    sim.faults.flakyRate = 0.5;
    sim.faults.flakyModes = ['unavailable'];
    const statuses = [];
    for (let i = 0; i < 200; i++) statuses.push((await call(url, '/api/v4/account')).status);
    const failed = statuses.filter((s) => s === 503).length;
    expect(failed).toBeGreaterThan(60);
    expect(failed).toBeLessThan(140);
    sim.faults.flakyRate = 0;

    await waitUntilClosed(() => sim.stats.unanswered.length === 2);
    expect(sim.stats.unanswered.map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', '/api/v4/account', 0],
      ['POST', '/api/v4/leads', 0],
    ]);
    expect(sim.stats.count({ status: 503 })).toBe(2 + failed);
  });
});

/** The simulator learns that a connection closed a moment after the client gave up. */
async function waitUntilClosed(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
}

describe('webhooks', () => {
  async function setup(options: AmoSimulatorOptions = {}) {
    const started = await start(options);
    const hook = await receiver();
    const reg = await call(started.url, '/api/v4/webhooks', {
      method: 'POST',
      body: { destination: hook.url, settings: ['status_lead', 'update_lead'] },
    });
    expect(reg.status).toBe(201);
    const list = await call(started.url, '/api/v4/webhooks');
    expect(list.json()).toMatchObject({ _embedded: { webhooks: [{ destination: hook.url, settings: ['status_lead', 'update_lead'] }] } });
    return { ...started, hook };
  }

  it('delivers the compact shape of a status change as form-urlencoded', async () => {
    const { sim, hook } = await setup();
    const lead = await sim.createLeadAsStaff({ name: 'deal', detmirOrderId: 'o-9' });
    const from = lead.status_id;
    await sim.moveLead(lead.id, { statusName: 'Waiting for payment' }, { shape: 'compact' });

    expect(hook.bodies).toHaveLength(1);
    expect(hook.bodies[0]).toContain('leads%5Bstatus%5D%5B0%5D%5Bid%5D=');
    const body = hook.parsed[0] as { leads: { status: Array<Record<string, string>>; update: Array<Record<string, string>> }; account: Record<string, string> };
    const pipelineId = String(sim.pipelineIdByName('Company 2'));
    expect(body.leads.status[0]).toEqual({
      id: String(lead.id),
      status_id: String(sim.statusIdByName('Waiting for payment')),
      pipeline_id: pipelineId,
      old_status_id: String(from),
      old_pipeline_id: pipelineId,
    });
    expect(body.leads.update[0]?.id).toBe(String(lead.id));
    expect(body.account).toEqual({ id: '31234567', subdomain: 'company2' });

    expect(sim.state.deliveries).toHaveLength(1);
    expect(sim.state.deliveries[0]).toMatchObject({ status: 200, events: ['leads[update]', 'leads[status]'], leadIds: [lead.id] });
  });

  it('delivers the full shape with old-style custom fields, tags and account links', async () => {
    const { sim, hook } = await setup();
    const lead = await sim.createLeadAsStaff({ name: 'Full deal', detmirOrderId: 'o-10', price: 100 });
    sim.setLeadFields(lead.id, {
      tags: [{ id: SERVICES_TAG.id }],
      customFields: [
        { field_id: FIELD_IDS.trialDate, values: [{ value: 1_767_225_600 }] },
        { field_id: FIELD_IDS.leadSource, values: [{ value: 'Marketplace' }] },
      ],
    });
    expect(hook.bodies).toHaveLength(0); // silent changes fire nothing
    await sim.moveLead(lead.id, { statusName: 'Payment received' }, { shape: 'full', price: 4500 });

    const body = hook.parsed[0] as {
      leads: { status: Array<Record<string, unknown>> };
      account: Record<string, unknown>;
    };
    const status = body.leads.status[0] as Record<string, unknown> & {
      tags: Array<Record<string, string>>;
      custom_fields: Array<{ id: string; name: string; values: Array<Record<string, string> | string> }>;
    };
    expect(status).toMatchObject({ id: String(lead.id), name: 'Full deal', price: '4500', account_id: '31234567' });
    expect(status).toHaveProperty('last_modified');
    expect(status).toHaveProperty('date_create');
    expect(status).toHaveProperty('old_status_id');
    expect(status.tags).toEqual([{ id: String(SERVICES_TAG.id), name: SERVICES_TAG.name }]);
    const fields = new Map(status.custom_fields.map((f) => [f.name, f]));
    expect(fields.get('detmirOrderId')?.values).toEqual([{ value: 'o-10' }]);
    expect(fields.get('Trial date')?.values).toEqual(['1767225600']); // a bare date value
    const marketplace = sim.state.customFields.leads.find((f) => f.id === FIELD_IDS.leadSource)?.enums?.find((e) => e.value === 'Marketplace');
    expect(fields.get('Lead source')?.values).toEqual([{ value: 'Marketplace', enum: String(marketplace?.id) }]);
    expect(body.account).toEqual({ subdomain: 'company2', id: '31234567', _links: { self: 'https://company2.amocrm.ru' } });

    // The trap for receivers: qs's default depth (5) does not split the custom field values.
    const shallow = qs.parse(hook.bodies[0] ?? '') as { leads: { status: Array<{ custom_fields: Array<{ values: unknown }> }> } };
    expect(shallow.leads.status[0]?.custom_fields[0]?.values).toEqual({ '[0][value]': 'o-10' });
  });

  it('can drop the status event, fire nothing, and redeliver failures', async () => {
    const { sim, url, hook } = await setup();
    const lead = await sim.createLeadAsStaff({ name: 'deal' });
    await sim.moveLead(lead.id, { statusName: 'Lesson Passed' }, { events: ['update_lead'] });
    expect(Object.keys((hook.parsed[0] as { leads: object }).leads)).toEqual(['update']);
    await sim.moveLead(lead.id, { statusName: 'Confirmed VU' }, { fire: false });
    expect(hook.bodies).toHaveLength(1);

    const failing = await receiver(500);
    await call(url, '/api/v4/webhooks', { method: 'POST', body: { destination: failing.url, settings: ['status_lead'] } });
    await sim.moveLead(lead.id, { statusName: 'Waiting for a solution' });
    expect(sim.state.deliveries.filter((d) => d.destination === failing.url).map((d) => d.status)).toEqual([500]);
    const again = await sim.redeliverFailedWebhooks();
    expect(again.map((d) => [d.destination, d.attempt])).toEqual([[failing.url, 2]]);
    expect(failing.bodies[1]).toBe(failing.bodies[0]);

    expect((await call(url, '/api/v4/webhooks', { method: 'DELETE', body: { destination: failing.url } })).status).toBe(204);
    expect(sim.state.webhooks.size).toBe(1);
  });

  it('fires leads[add]/[update] for API writes when asked, and leads[delete] when staff deletes', async () => {
    const { sim, url, hook } = await setup({ apiChangesFireWebhooks: true });
    await call(url, '/api/v4/webhooks', {
      method: 'POST',
      body: { destination: hook.url, settings: ['status_lead', 'update_lead', 'add_lead', 'delete_lead'] },
    });
    const res = await call(url, '/api/v4/leads/complex', { method: 'POST', body: [complexLead(sim, 'o-1', { first_name: 'A' })] });
    const [{ id } = { id: 0 }] = res.json<ComplexAnswer>();
    await call(url, `/api/v4/leads/${id}`, { method: 'PATCH', body: { status_id: sim.statusIdByName('Recorded for trial') } });
    await sim.webhooksIdle();
    expect(hook.parsed.map((b) => Object.keys((b as { leads: object }).leads))).toEqual([['add'], ['update', 'status']]);
    await sim.deleteLead(id);
    expect((hook.parsed[2] as { leads: { delete: Array<{ id: string }> } }).leads.delete[0]?.id).toBe(String(id));
    expect((await call(url, `/api/v4/leads/${id}`)).status).toBe(204);
    expect(sim.statusNameById(sim.statusIdByName('Recorded for trial'))).toBe('Recorded for trial');
  });

  it('builds bodies tests can post themselves, several leads and events in any key order', () => {
    const lead = {
      id: 5,
      name: 'x',
      price: 0,
      status_id: 142,
      pipeline_id: 7,
      old_status_id: 70,
      old_pipeline_id: 7,
      responsible_user_id: 1,
      created_user_id: 1,
      modified_user_id: 1,
      date_create: 1,
      last_modified: 2,
      account_id: 9,
      tags: [],
      custom_fields: [],
    };
    const raw = buildWebhookBody({
      account: { id: 9, subdomain: 'acme' },
      leads: { status: [lead, { ...lead, id: 6 }], update: [lead] },
      shuffle: true,
    });
    const parsed = qs.parse(raw) as { leads: { status: Array<{ id: string }>; update: Array<{ id: string }> }; account: object };
    expect(parsed.leads.status.map((l) => l.id).sort()).toEqual(['5', '6']);
    expect(parsed.leads.update[0]?.id).toBe('5');
    expect(parsed.account).toEqual({ id: '9', subdomain: 'acme' });
    expect(qs.parse(buildWebhookBody({ account: { id: 9, subdomain: 'acme' }, leads: { status: [lead] }, shape: 'legacy' })).account).toEqual({ subdomain: 'acme' });
  });
});
