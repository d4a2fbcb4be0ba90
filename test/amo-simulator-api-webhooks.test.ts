import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import qs from 'qs';
import { afterEach, describe, expect, it } from 'vitest';
import { createAmoSimulator, FIELD_IDS, type AmoSimulator } from '../src/sandbox/amo/index.js';
import { waitFor } from './support/stack.js';

/**
 * amoCRM fires the subscribed webhooks for changes made through its API as for changes
 * made in its UI; so does the simulator, by default. A create is `leads[add]` alone, so a
 * subscriber to status_lead and update_lead (the bridge) hears nothing of its own creates.
 */

const TOKEN = 'sim-token';
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

/** A webhook receiver keeping each body as amoCRM's form, parsed. */
async function receiver() {
  const bodies: Array<{ leads: Record<string, Array<Record<string, string>>> }> = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
      bodies.push(qs.parse(raw, { depth: 10 }) as unknown as (typeof bodies)[number]);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies };
}

async function api(url: string, method: string, path: string, body?: unknown) {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json().catch(() => undefined)) as unknown };
}

async function started(): Promise<{ sim: AmoSimulator; url: string }> {
  const sim = createAmoSimulator({ longLivedToken: TOKEN, rateLimitRps: 1000 });
  const url = await sim.listen();
  cleanups.push(() => sim.close());
  return { sim, url };
}

describe('the amoCRM simulator announces changes made through its API', () => {
  it('a move by PATCH fires update and status, a field change update alone, a create and a note nothing to the bridge’s subscription', async () => {
    const { sim, url } = await started();
    const bridge = await receiver();
    const everything = await receiver();
    await api(url, 'POST', '/api/v4/webhooks', { destination: bridge.url, settings: ['status_lead', 'update_lead'] });
    await api(url, 'POST', '/api/v4/webhooks', { destination: everything.url, settings: ['add_lead', 'update_lead', 'status_lead'] });

    const created = await api(url, 'POST', '/api/v4/leads/complex', [
      {
        name: 'Trial lesson — order DM-1',
        pipeline_id: sim.pipelineIdByName('Company 2'),
        status_id: sim.statusIdByName('New lead'),
        custom_fields_values: [{ field_id: FIELD_IDS.detmirOrderId, values: [{ value: 'DM-1' }] }],
        _embedded: { contacts: [{ first_name: 'Анна', last_name: 'Иванова' }] },
      },
    ]);
    const [{ id }] = created.json as Array<{ id: number }>;
    await sim.webhooksIdle();
    expect(bridge.bodies).toEqual([]);
    expect(everything.bodies.map((b) => Object.keys(b.leads))).toEqual([['add']]);

    // A note is its own event in amoCRM (note_lead), not a change of the deal.
    expect((await api(url, 'POST', '/api/v4/leads/notes', [{ entity_id: id, note_type: 'common', params: { text: 'Клиент отменил заказ' } }])).status).toBe(200);
    await sim.webhooksIdle();
    expect(bridge.bodies).toEqual([]);

    const lost = 143;
    expect((await api(url, 'PATCH', '/api/v4/leads', [{ id, status_id: lost, pipeline_id: sim.pipelineIdByName('Company 2') }])).status).toBe(200);
    await sim.webhooksIdle();
    expect(bridge.bodies).toHaveLength(1);
    expect(Object.keys(bridge.bodies[0]!.leads)).toEqual(['update', 'status']);
    expect(bridge.bodies[0]!.leads.status![0]).toMatchObject({ id: String(id), status_id: '143', old_status_id: String(sim.statusIdByName('New lead')) });

    // The same move again changes nothing, so nothing is announced.
    await api(url, 'PATCH', '/api/v4/leads', [{ id, status_id: lost, pipeline_id: sim.pipelineIdByName('Company 2') }]);
    await api(url, 'PATCH', `/api/v4/leads/${id}`, { price: 900 });
    await sim.webhooksIdle();
    expect(bridge.bodies.map((b) => Object.keys(b.leads))).toEqual([['update', 'status'], ['update']]);
  });

  it('can be told to keep API writes quiet', async () => {
    const sim = createAmoSimulator({ longLivedToken: TOKEN, apiChangesFireWebhooks: false });
    const url = await sim.listen();
    cleanups.push(() => sim.close());
    const hook = await receiver();
    await api(url, 'POST', '/api/v4/webhooks', { destination: hook.url, settings: ['status_lead', 'update_lead'] });
    const lead = await sim.createLeadAsStaff({ name: 'deal' }, { fire: false });
    await api(url, 'PATCH', `/api/v4/leads/${lead.id}`, { status_id: sim.statusIdByName('Confirmed VU') });
    await sim.webhooksIdle();
    expect(hook.bodies).toEqual([]);
  });
});

describe('the standalone amoCRM simulator', () => {
  it('moves a deal by hand through /_sim, firing the webhooks, and refuses a stage that does not exist', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/sandbox/amo/standalone.ts'], {
      env: { PATH: process.env.PATH ?? '', AMO_SIM_PORT: '0', AMO_SIM_LONG_LIVED_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => void child.kill('SIGTERM'));
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await waitFor('the simulator to print how to move a deal', () => out.includes('move a deal'), 20_000);
    const url = /listening on (http:\/\/\S+)/.exec(out)![1]!;
    expect(out).toContain(`/_sim/leads/<id>/move -H 'Authorization: Bearer ${TOKEN}'`);

    const hook = await receiver();
    await api(url, 'POST', '/api/v4/webhooks', { destination: hook.url, settings: ['status_lead'] });
    const created = await api(url, 'POST', '/api/v4/leads', [{ name: 'Пробный урок' }]);
    const id = (created.json as { _embedded: { leads: Array<{ id: number }> } })._embedded.leads[0]!.id;

    const moved = await api(url, 'POST', `/_sim/leads/${id}/move`, { stage: 'Payment received', price: 9900 });
    expect(moved.status).toBe(200);
    expect(moved.json).toMatchObject({ lead: { id, stage: 'Payment received', price: 9900 }, deliveries: [{ destination: hook.url, events: ['leads[status]'], status: 200 }] });
    expect(hook.bodies).toHaveLength(1);
    const listed = (await api(url, 'GET', '/_sim/leads')).json as { items: Array<{ id: number; stage: string }> };
    expect(listed.items).toContainEqual(expect.objectContaining({ id, stage: 'Payment received' }));

    // A moved deal through the API (as an operator's curl would) fires too.
    await api(url, 'PATCH', `/api/v4/leads/${id}`, { status_id: 142 });
    await waitFor('the API move to be announced', () => hook.bodies.length === 2);

    const wrong = await api(url, 'POST', `/_sim/leads/${id}/move`, { stage: 'Paymnet received' });
    expect(wrong.status).toBe(400);
    expect(JSON.stringify(wrong.json)).toContain('no status named \\"Paymnet received\\"');
    expect((await fetch(`${url}/_sim/leads`)).status).toBe(401);
  });
});
