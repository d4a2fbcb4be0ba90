import { afterEach, describe, expect, it } from 'vitest';
import type { Stack } from '../src/sandbox/stack.js';
import { DATABASES } from './support/databases.js';
import { editedMappings } from './support/mappings.js';
import { testStack, waitFor } from './support/stack.js';

const FOUR_HOURS = 4 * 60 * 60 * 1000;

async function drained(stack: Stack) {
  await stack.amo.webhooksIdle();
  await waitFor('the queue to drain', async () => {
    const open = await stack.bridge.db.kysely.selectFrom('jobs').select('id').where('status', '<>', 'done').where('kind', '<>', 'deals.sweep').execute();
    return open.length === 0;
  });
}

describe.each(DATABASES)('integration stages on %s', (kind) => {
  let stack: Stack | undefined;
  afterEach(async () => {
    await stack?.stop();
    stack = undefined;
  });

  it('stage 1: stage changes push nothing; Company 1 closing an order is recorded and noted, and the order is left alone', async () => {
    let now = Date.parse('2026-11-23T09:00:00Z');
    stack = await testStack(kind, `stage-one-${kind}`, {
      mappingsPath: editedMappings((y) => y.replace('integrationStage: 3', 'integrationStage: 1')),
      partner: { autoClose: true, now: () => now },
    });
    expect((await stack.bridge.ready).integrationStage).toBe(1);
    const created = await stack.partner.createOrderAsUser({ userId: 's1', customer: { firstName: 'A', lastName: 'B', phone: '+79990001122' } });
    const linked = await waitFor('additionalInfo', () => stack!.partner.orders.get(created.id)?.additionalInfo ?? undefined);
    const dealId = linked.externalId;

    await stack.amo.moveLead(dealId, { statusName: 'Confirmed VU' });
    await drained(stack);
    expect(stack.partner.orders.get(created.id)!.status).toBe('on_approval');

    // Four hours later Company 1 closes the order itself and says so by webhook.
    now += FOUR_HOURS + 1000;
    await stack.partner.advanceClock(0);
    expect(stack.partner.orders.get(created.id)).toMatchObject({ status: 'executed', additionalInfo: { closedByDetmir: true } });
    await waitFor('the closure to be recorded', async () => {
      const row = await stack!.bridge.db.kysely.selectFrom('orders').select('closed_by_partner').where('order_id', '=', created.id).executeTakeFirst();
      return row?.closed_by_partner === 1;
    });
    const notes = [...stack.amo.state.notes.values()].filter((n) => n.entity_id === dealId);
    expect(notes).toHaveLength(1);
    // The reverse table's text for "executed by Company 1": a note, no move.
    expect(notes[0]!.params.text).toBe('Компания 1 закрыла заказ как выполненный');
    expect(stack.amo.state.leads.get(dealId)!.status_id).toBe(stack.amo.statusIdByName('Confirmed VU'));
    expect(stack.partner.orders.get(created.id)!.additionalInfo).toEqual({ contactId: linked.contactId, externalId: dealId, closedByDetmir: true });

    const patchesBefore = stack.partner.stats.count({ method: 'PATCH' });
    await stack.amo.moveLead(dealId, { statusName: 'Closed - lost' });
    await drained(stack);
    expect(stack.partner.stats.count({ method: 'PATCH' })).toBe(patchesBefore);
    expect(stack.partner.orders.get(created.id)!.status).toBe('executed');
  });

  it('editing the YAML (Success left blank, as the specification has it) changes behaviour with no code change', async () => {
    stack = await testStack(kind, `stage-yaml-${kind}`, {
      mappingsPath: editedMappings((y) => y.replace('    id: 142\n    set: { status: executed }\n', '    id: 142\n')),
    });
    await stack.bridge.ready;
    const created = await stack.partner.createOrderAsUser({ userId: 'y1', customer: { firstName: 'A', lastName: 'B', phone: '+79990001133' } });
    const info = await waitFor('additionalInfo', () => stack!.partner.orders.get(created.id)?.additionalInfo ?? undefined);
    await stack.amo.moveLead(info.externalId, { statusName: 'Closed - won' }, { price: 700 });
    await drained(stack);
    // Every stage before Success still has its effect; the order is not closed.
    expect(stack.partner.orders.get(created.id)).toMatchObject({ status: 'in_work', cost: 700, paid: true });
  });
});
