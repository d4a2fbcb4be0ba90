import request from 'supertest';
import { expect } from 'vitest';
import { createApiKey, type Scope } from '../../src/admin/api-keys.js';
import type { Stack } from '../../src/sandbox/stack.js';
import { waitFor } from './stack.js';
import { hiddenField } from './webview.js';

export type Agent = ReturnType<typeof request.agent>;

/** An admin API key with these scopes, made as `amobridge apikey create` makes it. */
export function adminKey(stack: Stack, name: string, scopes: Scope[]) {
  return createApiKey(stack.bridge.db.kysely, name, scopes);
}

/** Opens the sign-in form as a browser does: its CSRF field, and the cookie it set. */
export async function openSignIn(agent: Agent): Promise<string> {
  const form = await agent.get('/admin/ui/sign-in');
  expect(form.status).toBe(200);
  return hiddenField(form.text, '_csrf');
}

/** A fresh agent signed in to the admin page with `key` (it lands on the overview). */
export async function signInAdmin(baseUrl: string, key: string): Promise<Agent> {
  const agent = request.agent(baseUrl);
  const csrf = await openSignIn(agent);
  const res = await agent.post('/admin/ui/sign-in').type('form').send({ _csrf: csrf, key });
  expect(res.status).toBe(303);
  expect(res.headers.location).toBe('/admin/ui');
  return agent;
}

/** The CSRF token of a signed-in agent's forms (from the sign-out form every page has). */
export async function adminCsrf(agent: Agent, path = '/admin/ui'): Promise<string> {
  const page = await agent.get(path);
  expect(page.status).toBe(200);
  return hiddenField(page.text, '_csrf');
}

/**
 * A job in the dead letter: Company 1 answers 404 for an order it "lost", a permanent
 * failure. Answers the order (to be put back, so a replay succeeds) and the job's id.
 */
export async function deadOrderJob(stack: Stack, userId: string) {
  const db = stack.bridge.db.kysely;
  const order = await stack.partner.createOrderAsUser({ userId, customer: { firstName: 'A', lastName: 'B', phone: '+79990000001' } }, { send: false });
  stack.partner.orders.delete(order.id);
  await stack.partner.sendWebhook('order.created', order);
  const job = await waitFor('a dead job', () =>
    db.selectFrom('jobs').select('id').where('status', '=', 'dead').where('job_key', '=', `order:${order.id}`).executeTakeFirst(),
  );
  return { order, jobId: job.id };
}
