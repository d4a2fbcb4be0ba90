import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import winston from 'winston';
import Transport from 'winston-transport';
import type { Order } from '../partner/schema.js';
import { SANDBOX_LONG_LIVED_TOKEN } from '../sandbox/env.js';
import { type Stack, startStack } from '../sandbox/stack.js';
import { type SandboxUser, sandboxSignInLink } from '../sandbox/webview-link.js';
import { WebviewClient } from './webview-client.js';

/**
 * `npm run demo`: all three integration stages on a temporary SQLite file against both
 * simulators. Stage 1 takes orders in from Company 1; stage 2 moves their deals as a
 * manager would, through the amoCRM simulator's API, whose webhooks drive the orders;
 * stage 3 places and cancels an order in the webview over HTTP. Each step is printed as
 * the bridge logs it, and each order change as Company 1 sees it.
 */

export interface DemoOptions {
  /** Where lines go; default stdout. */
  write?: (line: string) => void;
}

export interface Demo {
  stack: Stack;
  /** A fresh sign-in link for the demo's webview user (a token signs in once). */
  signInLink(): Promise<string>;
  stop(): Promise<void>;
}

type Step = (e: Record<string, unknown>) => string | undefined;

const WEBVIEW_USER: SandboxUser = { userId: 'dm-user-5', givenName: 'Елена', familyName: 'Кузнецова', phone: '+79161234505' };

/** Log events worth a line, in words. */
function steps(stack: () => Stack | undefined): Record<string, Step> {
  const notesOf = (dealId: unknown, count: number) =>
    [...(stack()?.amo.state.notes.values() ?? [])]
      .filter((n) => n.entity_id === dealId)
      .slice(-count)
      .map((n) => `"${String(n.params.text)}"`)
      .join(', ');
  return {
    'webhook.partner.accepted': (e) => `webhook   Company 1 → bridge: order ${e.orderId} (${e.type})`,
    'webhook.partner.duplicate': (e) => `webhook   order ${e.orderId}: repeated delivery ${e.webhookId} absorbed`,
    'webhook.amocrm.accepted': (e) =>
      `webhook   amoCRM → bridge: ${(e.events as string[]).map((x) => x.split(':')[0]).join(' + ')} of deal ${(e.dealIds as number[]).join(', ')}`,
    'order.intake.contact_found': (e) => `contact   user ${e.userId} → existing contact ${e.contactId}`,
    'order.intake.contact_created': (e) => `contact   user ${e.userId} → new contact ${e.contactId}`,
    'order.intake.deal_created': (e) => `deal      order ${e.orderId} → deal ${e.dealId} (contact ${e.contactId})`,
    'order.intake.deal_found': (e) => `deal      order ${e.orderId} → existing deal ${e.dealId}`,
    'order.additional_info.written': (e) =>
      `partner   order ${e.orderId} ← additionalInfo {contactId: ${e.contactId}, externalId: ${e.dealId}, closedByDetmir: ${e.closedByDetmir}}`,
    'deal.note_added': (e) => `note      deal ${e.dealId} ← ${notesOf(e.dealId, (e.kinds as string[]).length)}`,
    'deal.moved': (e) => `amoCRM    deal ${e.dealId} moved by the bridge to "${stack()?.amo.statusNameById(Number(e.statusId)) ?? e.statusId}" (${e.kind})`,
    'deal.reconcile.in_step': (e) => `reconcile deal ${e.dealId}: order ${e.orderId} already in step with the deal, nothing sent`,
    'webview.signin.accepted': (e) => `webview   user ${e.userId} signed in (session cookie; the token leaves the address bar)`,
    'webview.order.created': (e) => `webview   order ${e.orderId} placed with Company 1 (POST /orders, Idempotency-Key)`,
    'webview.order.cancelled': (e) => `webview   order ${e.orderId} cancelled with Company 1 (was ${e.from})`,
    'job.retry': (e) => `retry     job ${e.jobId} (${e.key}): ${e.error}`,
    'job.dead': (e) => `DEAD      job ${e.jobId} (${e.key}): ${e.error}`,
  };
}

class StepPrinter extends Transport {
  constructor(
    private readonly formats: Record<string, Step>,
    private readonly out: (line: string) => void,
  ) {
    super();
  }

  override log(info: Record<string, unknown>, next: () => void): void {
    const line = this.formats[String(info.message)]?.(info);
    if (line) this.out(`  ${line}`);
    next();
  }
}

export async function runDemo(options: DemoOptions = {}): Promise<Demo> {
  const write = options.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-demo-'));
  let current: Stack | undefined;
  // Debug, so the reconcile that finds an order in step is seen; only the steps above print.
  const logger = winston.createLogger({ level: 'debug', transports: [new StepPrinter(steps(() => current), write)] });
  write(`amobridge demo — SQLite at ${dir}/demo.db, simulators on loopback\n`);
  const stack = await startStack({
    databaseUrl: `sqlite:${path.join(dir, 'demo.db')}`,
    logger,
    // Staff's contact below was made long before these orders, so search finds it at once
    // (the tests play amoCRM's index lag; test/intake.test.ts).
    amo: { searchIndexDelayMs: 0 },
    tuning: { pollMs: 50, settleMs: 2_000, reconcileGatherMs: 200 },
  });
  current = stack;
  const demo: Demo = {
    stack,
    signInLink: () => sandboxSignInLink(stack.bridgeUrl, WEBVIEW_USER),
    async stop() {
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    const mappings = await stack.bridge.ready;
    write(`bridge ${stack.bridgeUrl}  amoCRM ${stack.amoUrl}  Company 1 ${stack.partnerUrl}`);
    write(`pipeline "${mappings.pipeline.name}" (${mappings.pipeline.id}), new deals in "${mappings.initialStatus.name}"; integration stage ${mappings.integrationStage}`);
    const orders = await stageOne(stack, write);
    await stageTwo(stack, orders, write);
    await stageThree(demo, write);
    write(
      `\namoCRM: ${stack.amo.state.contacts.size} contacts, ${stack.amo.state.leads.size} deals, ${stack.amo.state.notes.size} notes; ` +
        `${stack.amo.stats.count({ pathPrefix: '/api/v4' })} API calls (the manager's moves included), ${stack.amo.stats.count({ status: 429 })} answered 429`,
    );
    return demo;
  } catch (error) {
    await demo.stop();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------

async function stageOne(stack: Stack, write: (line: string) => void): Promise<Order[]> {
  write('\n── Stage 1: orders come in from Company 1 ──');
  const staff = stack.amo.createContactAsStaff({ firstName: 'Мария', lastName: 'Соколова', detmirUserId: 'dm-user-3' });
  write(`staff already has contact ${staff.id} for user dm-user-3 in amoCRM`);
  const people = [
    { userId: 'dm-user-1', customer: { firstName: 'Анна', lastName: 'Иванова', phone: '+79161234501' } },
    { userId: 'dm-user-2', customer: { firstName: 'Борис', lastName: 'Петров', phone: '+79161234502' } },
    { userId: 'dm-user-3', customer: { firstName: 'Мария', lastName: 'Соколова', phone: '+79161234503' } },
    { userId: 'dm-user-1', customer: { firstName: 'Анна', lastName: 'Иванова', phone: '+79161234501' } },
  ];
  const orders: Order[] = [];
  for (const person of people) {
    write(`→ Company 1: user ${person.userId} places an order in the Company 1 app`);
    orders.push(await stack.partner.createOrderAsUser(person));
    await sleep(150);
  }
  // A webhook delivered twice changes nothing the second time.
  await stack.partner.sendWebhook('order.created', orders[0]!, { webhookId: 'demo-repeat' });
  await stack.partner.sendWebhook('order.created', orders[0]!, { webhookId: 'demo-repeat' });
  await until('orders linked to their deals', () => orders.every((o) => stack.partner.orders.get(o.id)?.additionalInfo));
  await settled(stack);
  printOrders(stack, orders, write);
  return orders.map((o) => stack.partner.orders.get(o.id)!);
}

async function stageTwo(stack: Stack, orders: Order[], write: (line: string) => void): Promise<void> {
  write('\n── Stage 2: a manager moves the deals in amoCRM; its webhooks drive the orders ──');
  const [first, second, third] = orders as [Order, Order, Order];
  lastMove = Date.now();
  const moves: Array<[Order, string, number?, string?]> = [
    [first, 'Recorded for trial'],
    [first, 'Confirmed VU'],
    [first, 'Waiting for payment', 12_500],
    [first, 'Payment received'],
    [first, 'Closed - won'],
    [second, 'Payment received', 9_900, 'from New lead, stages skipped'],
    [third, 'Closed - lost'],
  ];
  for (const [order, stage, price, why] of moves) {
    const dealId = order.additionalInfo!.externalId;
    const before = stack.partner.orders.get(order.id)!;
    const patchesBefore = partnerPatches(stack, order.id);
    write(`manager   deal ${dealId} (order ${order.id}) → "${stage}"${price ? `, price ${price}` : ''}${why ? ` (${why})` : ''}`);
    await moveAsManager(stack, dealId, stage, price);
    await settled(stack);
    const after = stack.partner.orders.get(order.id)!;
    const sent = partnerPatches(stack, order.id) - patchesBefore;
    write(`  order     ${order.id}: ${orderChange(before, after)}${sent > 1 ? ` (${sent} PATCHes, through the allowed transitions)` : ''}`);
  }
  printOrders(stack, orders, write);
  // The manager's last call leaves the simulator's one-second window before the bridge's next burst.
  await sleep(lastMove + 1000 - Date.now());
}

async function stageThree(demo: Demo, write: (line: string) => void): Promise<void> {
  const { stack } = demo;
  write('\n── Stage 3: a user orders, then cancels, in the webview ──');
  const browser = new WebviewClient(stack.bridgeUrl);
  const link = await demo.signInLink();
  write(`Company 1 opens ${link.slice(0, link.indexOf('token=') + 16)}… for user ${WEBVIEW_USER.userId}`);
  expectStatus(await browser.get(link), 303);
  const form = await browser.get('/webview/orders/new');
  const comment = 'Удобно после 18:00';
  const placed = await browser.post('/webview/orders', {
    _csrf: form.hidden('_csrf'),
    nonce: form.hidden('nonce'),
    serviceId: 'trial-lesson',
    firstName: WEBVIEW_USER.givenName,
    lastName: WEBVIEW_USER.familyName,
    phone: WEBVIEW_USER.phone,
    comment,
  });
  const orderPath = placed.redirect().split('?')[0]!;
  const orderId = decodeURIComponent(orderPath.split('/').pop()!);
  await until('the webview order linked to its deal', () => stack.partner.orders.get(orderId)?.additionalInfo);
  await settled(stack);
  const before = stack.partner.orders.get(orderId)!;
  const dealId = before.additionalInfo!.externalId;

  write(`user      cancels order ${orderId} in the webview`);
  const page = await browser.get(orderPath);
  const patchesBefore = partnerPatches(stack, orderId);
  expectStatus(await browser.post(`${orderPath}/cancel`, { _csrf: page.hidden('_csrf') }), 303);
  await settled(stack);
  const after = stack.partner.orders.get(orderId)!;
  const lead = stack.amo.state.leads.get(dealId)!;
  write(`  order     ${orderId}: ${orderChange(before, after)}; deal ${dealId} stands at "${stack.amo.statusNameById(lead.status_id)}"`);
  write(`  partner   PATCHes to ${orderId} since the cancel: ${partnerPatches(stack, orderId) - patchesBefore} (the cancel itself; none for amoCRM's echo of the move)`);
}

// ---------------------------------------------------------------------------------------

/**
 * A manager moves a deal: PATCH /api/v4/leads/:id, which makes amoCRM fire its webhooks.
 * amoCRM limits each integration on its own, but the simulator counts every client
 * against one limit, so the manager keeps a second between moves to leave the bridge
 * its share.
 */
let lastMove = 0;
async function moveAsManager(stack: Stack, dealId: number, stage: string, price?: number): Promise<void> {
  await sleep(lastMove + 1000 - Date.now());
  lastMove = Date.now();
  const res = await fetch(`${stack.amoUrl}/api/v4/leads/${dealId}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${SANDBOX_LONG_LIVED_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ status_id: stack.amo.statusIdByName(stage), ...(price !== undefined ? { price } : {}) }),
  });
  if (!res.ok) throw new Error(`moving deal ${dealId} to "${stage}" answered ${res.status}: ${await res.text()}`);
}

function orderChange(before: Order, after: Order): string {
  const changes: string[] = [];
  if (before.status !== after.status) changes.push(`status ${before.status} → ${after.status}`);
  if (before.cost !== after.cost) changes.push(`cost ${before.cost ?? '—'} → ${after.cost ?? '—'}`);
  if (before.paid !== after.paid) changes.push(`paid ${before.paid ? 'yes' : 'no'} → ${after.paid ? 'yes' : 'no'}`);
  if (before.subscriptionStatus !== after.subscriptionStatus) changes.push(`subscription ${before.subscriptionStatus ?? '—'} → ${after.subscriptionStatus ?? '—'}`);
  return changes.length > 0 ? changes.join(', ') : 'no change (this stage asks nothing of the order)';
}

function printOrders(stack: Stack, orders: Order[], write: (line: string) => void): void {
  const rows = orders.map((o) => {
    const current = stack.partner.orders.get(o.id)!;
    const lead = current.additionalInfo ? stack.amo.state.leads.get(current.additionalInfo.externalId) : undefined;
    return [
      o.id,
      o.userId,
      String(current.additionalInfo?.contactId ?? '—'),
      String(current.additionalInfo?.externalId ?? '—'),
      lead ? stack.amo.statusNameById(lead.status_id) : '—',
      current.status,
      String(current.cost ?? '—'),
      current.paid ? 'yes' : 'no',
    ];
  });
  const header = ['order', 'user', 'contact', 'deal', 'stage', 'status', 'cost', 'paid'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) write(`  ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}`);
}

const partnerPatches = (stack: Stack, orderId: string) =>
  stack.partner.stats.requests.filter((r) => r.method === 'PATCH' && r.path === `/orders/${orderId}` && r.status === 200).length;

/** No webhook under way and every job finished: the bridge did all it will do. */
async function settled(stack: Stack): Promise<void> {
  await until('the bridge to finish its work', async () => {
    await stack.amo.webhooksIdle();
    const open = await stack.bridge.db.kysely
      .selectFrom('jobs')
      .select('id')
      .where('status', 'in', ['queued', 'running'])
      .where('kind', '<>', 'deals.sweep')
      .execute();
    return open.length === 0;
  });
}

async function until(what: string, check: () => unknown, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function expectStatus(page: { status: number }, status: number): void {
  if (page.status !== status) throw new Error(`the webview answered HTTP ${page.status}, expected ${status}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
