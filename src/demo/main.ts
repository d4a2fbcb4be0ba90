import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import winston from 'winston';
import Transport from 'winston-transport';
import type { Order } from '../partner/schema.js';
import { startStack } from '../sandbox/stack.js';

/**
 * `npm run demo`: the whole stage-1 flow on a temporary SQLite file against both
 * simulators, printing each step as the bridge logs it, then a summary table.
 */

const STEPS: Record<string, (e: Record<string, unknown>) => string> = {
  'webhook.partner.accepted': (e) => `webhook   order ${e.orderId} (${e.type}) accepted`,
  'webhook.partner.duplicate': (e) => `webhook   order ${e.orderId}: repeated delivery ${e.webhookId} absorbed`,
  'order.intake.contact_found': (e) => `contact   user ${e.userId} → existing contact ${e.contactId}`,
  'order.intake.contact_created': (e) => `contact   user ${e.userId} → new contact ${e.contactId}`,
  'order.intake.deal_created': (e) => `deal      order ${e.orderId} → deal ${e.dealId} (contact ${e.contactId})`,
  'order.intake.deal_found': (e) => `deal      order ${e.orderId} → existing deal ${e.dealId}`,
  'order.additional_info.written': (e) =>
    `partner   order ${e.orderId} ← additionalInfo {contactId: ${e.contactId}, externalId: ${e.dealId}, closedByDetmir: ${e.closedByDetmir}}`,
  'job.retry': (e) => `retry     job ${e.jobId} (${e.key}): ${e.error}`,
  'job.dead': (e) => `DEAD      job ${e.jobId} (${e.key}): ${e.error}`,
};

class StepPrinter extends Transport {
  override log(info: Record<string, unknown>, next: () => void): void {
    const format = STEPS[String(info.message)];
    if (format) process.stdout.write(`  ${format(info)}\n`);
    next();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-demo-'));
  const logger = winston.createLogger({ level: 'info', transports: [new StepPrinter()] });
  console.log(`amobridge demo — SQLite at ${dir}/demo.db, simulators on loopback\n`);
  const stack = await startStack({
    databaseUrl: `sqlite:${path.join(dir, 'demo.db')}`,
    logger,
    // Staff's contact below was made long before these orders, so search finds it at once
    // (the tests play amoCRM's index lag; test/intake.test.ts).
    amo: { searchIndexDelayMs: 0 },
    tuning: { pollMs: 50, settleMs: 2_000 },
  });
  try {
    const mappings = await stack.bridge.ready;
    console.log(`bridge ${stack.bridgeUrl}  amoCRM ${stack.amoUrl}  Company 1 ${stack.partnerUrl}`);
    console.log(`pipeline "${mappings.pipeline.name}" (${mappings.pipeline.id}), new deals in "${mappings.initialStatus.name}"\n`);

    const staff = stack.amo.createContactAsStaff({ firstName: 'Мария', lastName: 'Соколова', detmirUserId: 'dm-user-3' });
    console.log(`staff already has contact ${staff.id} for user dm-user-3 in amoCRM\n`);

    const people = [
      { userId: 'dm-user-1', customer: { firstName: 'Анна', lastName: 'Иванова', phone: '+79161234501' } },
      { userId: 'dm-user-2', customer: { firstName: 'Борис', lastName: 'Петров', phone: '+79161234502' } },
      { userId: 'dm-user-3', customer: { firstName: 'Мария', lastName: 'Соколова', phone: '+79161234503' } },
      { userId: 'dm-user-1', customer: { firstName: 'Анна', lastName: 'Иванова', phone: '+79161234501' } },
    ];
    const orders: Order[] = [];
    for (const person of people) {
      const order = await stack.partner.createOrderAsUser(person);
      console.log(`→ Company 1: user ${person.userId} ordered ${order.id}`);
      orders.push(order);
      await new Promise((r) => setTimeout(r, 150));
    }
    // A webhook delivered twice changes nothing the second time.
    await stack.partner.sendWebhook('order.created', orders[0]!, { webhookId: 'demo-repeat' });
    await stack.partner.sendWebhook('order.created', orders[0]!, { webhookId: 'demo-repeat' });

    const deadline = Date.now() + 30_000;
    while (orders.some((o) => !stack.partner.orders.get(o.id)?.additionalInfo)) {
      if (Date.now() > deadline) throw new Error('orders were not linked within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }

    console.log('\nsummary');
    console.table(
      orders.map((o) => {
        const current = stack.partner.orders.get(o.id)!;
        const lead = stack.amo.state.leads.get(current.additionalInfo!.externalId);
        return {
          order: o.id,
          user: o.userId,
          contact: current.additionalInfo!.contactId,
          deal: current.additionalInfo!.externalId,
          stage: lead ? stack.amo.statusNameById(lead.status_id) : '?',
          closedByDetmir: current.additionalInfo!.closedByDetmir,
        };
      }),
    );
    console.log(
      `amoCRM: ${stack.amo.state.contacts.size} contacts, ${stack.amo.state.leads.size} deals; ` +
        `${stack.amo.stats.count({ pathPrefix: '/api/v4' })} API calls, ${stack.amo.stats.count({ status: 429 })} answered 429`,
    );
  } finally {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error('demo failed:', error);
    process.exit(1);
  },
);
