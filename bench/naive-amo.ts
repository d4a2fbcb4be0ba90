import { FIELD_IDS, SERVICES_TAG } from '../src/sandbox/amo/index.js';
import { SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import type { Simulators } from './lib/simulators.js';

/**
 * The call-count baseline: what straightforward code does per order, one amoCRM call per
 * step, against the same simulator: search the contact, create it if absent, create the
 * deal linked to it; and per stage event, read the deal. Counted by the simulator like the
 * bridge's own calls.
 */

export interface NaiveCounts {
  newUser: number;
  returning: number;
  stageEvent: number;
}

async function call(amoUrl: string, method: string, url: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${amoUrl}${url}`, {
    method,
    headers: { authorization: `Bearer ${SANDBOX_LONG_LIVED_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`naive client: ${method} ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

function embeddedIds(body: unknown, key: 'contacts' | 'leads'): number[] {
  const embedded = (body as { _embedded?: Record<string, Array<{ id: number }>> } | undefined)?._embedded?.[key] ?? [];
  return embedded.map((e) => e.id);
}

async function naiveOrder(sims: Simulators, userId: string, orderId: string): Promise<number> {
  const { amo, amoUrl } = sims;
  const found = await call(amoUrl, 'GET', `/api/v4/contacts?query=${encodeURIComponent(userId)}`);
  let contactId = embeddedIds(found, 'contacts')[0];
  if (contactId === undefined) {
    const created = await call(amoUrl, 'POST', '/api/v4/contacts', [
      { first_name: 'Ольга', last_name: 'Смирнова', custom_fields_values: [{ field_id: FIELD_IDS.detmirUserId, values: [{ value: userId }] }] },
    ]);
    contactId = embeddedIds(created, 'contacts')[0]!;
  }
  const pipelineId = amo.pipelineIdByName('Company 2');
  const lead = await call(amoUrl, 'POST', '/api/v4/leads', [
    {
      name: `Trial lesson — order ${orderId}`,
      pipeline_id: pipelineId,
      status_id: amo.statusIdByName('New lead', 'Company 2'),
      custom_fields_values: [{ field_id: FIELD_IDS.detmirOrderId, values: [{ value: orderId }] }],
      _embedded: { contacts: [{ id: contactId }], tags: [{ id: SERVICES_TAG.id }] },
    },
  ]);
  return embeddedIds(lead, 'leads')[0]!;
}

/** Runs `orders` new-user orders, as many returning-user orders and stage events; calls per each. */
export async function naiveCounts(sims: Simulators, orders: number): Promise<NaiveCounts> {
  const { amo } = sims;
  const apiCalls = () => amo.stats.count({ pathPrefix: '/api/v4' });
  amo.stats.reset();
  const deals: number[] = [];
  for (let i = 0; i < orders; i++) deals.push(await naiveOrder(sims, `naive-u${i}`, `naive-o${i}`));
  const newUser = apiCalls() / orders;
  amo.stats.reset();
  for (let i = 0; i < orders; i++) await naiveOrder(sims, `naive-u${i}`, `naive-o${i}-2`);
  const returning = apiCalls() / orders;
  amo.stats.reset();
  for (const id of deals) await call(sims.amoUrl, 'GET', `/api/v4/leads/${id}`);
  const stageEvent = apiCalls() / orders;
  return { newUser, returning, stageEvent };
}
