import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmoSimulator, createAmoSimulator } from '../src/sandbox/amo/index.js';
import { SANDBOX_AMO_WEBHOOK_SECRET, SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import { connect } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { recordOrder } from '../src/inbox/accept-partner-event.js';
import { editedMappings } from './support/mappings.js';
import { anOrder } from './support/orders.js';

const run = promisify(execFile);

describe('amobridge CLI', () => {
  let amo: AmoSimulator;
  let env: Record<string, string>;
  beforeAll(async () => {
    amo = createAmoSimulator({ longLivedToken: SANDBOX_LONG_LIVED_TOKEN });
    const amoUrl = await amo.listen();
    env = {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: `sqlite:${path.join(mkdtempSync(path.join(tmpdir(), 'amobridge-cli-')), 'cli.db')}`,
      AMO_SUBDOMAIN: 'company2',
      AMO_BASE_URL: amoUrl,
      AMO_LONG_LIVED_TOKEN: SANDBOX_LONG_LIVED_TOKEN,
      AMO_WEBHOOK_SECRET: SANDBOX_AMO_WEBHOOK_SECRET,
      PARTNER_API_URL: 'http://127.0.0.1:9/',
      PARTNER_API_TOKEN: 't',
      PARTNER_WEBHOOK_SECRET: 'whsec_c2VjcmV0',
      WEBVIEW_JWT_SECRET: 'x'.repeat(32),
      WEBVIEW_JWT_ISSUER: 'company1',
      WEBVIEW_JWT_AUDIENCE: 'amobridge',
      SESSION_SECRET: 'y'.repeat(32),
      LOG_LEVEL: 'error',
    };
  });
  afterAll(async () => amo.close());

  const cli = (args: string[], extra: Record<string, string> = {}) =>
    run(process.execPath, ['bin/amobridge.js', ...args], { env: { ...env, ...extra } }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('mappings check prints the resolved table', async () => {
    const { code, stdout } = await cli(['mappings', 'check']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/pipeline "Company 2" \(\d+\); new deals in "New lead"/);
    expect(stdout).toMatch(/Confirmed VU\s+\d+\s+status = in_work/);
    expect(stdout).toMatch(/Refusal \[Closed - lost\]\s+143\s+status = rejected/);
    expect(stdout).toMatch(/Lesson Passed\s+\d+\s+\(no change\)/);
    expect(stdout).toMatch(/Success \[Closed - won\]\s+142\s+status = executed/);
    expect(stdout).toMatch(/cancelled\s+note "Клиент отменил заказ", moved to "Refusal" \(143\)/);
    expect(stdout).toMatch(/executedByPartner\s+note "Компания 1 закрыла заказ как выполненный"\n/);
  });

  it('mappings check names a misspelt stage and lists the valid ones', async () => {
    const file = editedMappings((y) => y.replace('stage: Confirmed VU', 'stage: Confirmed UV'));
    const { code, stderr } = await cli(['mappings', 'check'], { MAPPINGS_PATH: file });
    expect(code).toBe(2);
    expect(stderr).toMatch(/stage "Confirmed UV" does not exist in pipeline "Company 2"; stages: .*"Confirmed VU"/);
  });

  it('mappings check names a reverse-table stage that does not exist', async () => {
    const file = editedMappings((y) => y.replace('"Компания 1 отклонила заказ", moveTo: Refusal', '"Компания 1 отклонила заказ", moveTo: Rejected'));
    const { code, stderr } = await cli(['mappings', 'check'], { MAPPINGS_PATH: file });
    expect(code).toBe(2);
    expect(stderr).toMatch(/orderEvents\.rejectedByPartner\.moveTo: stage "Rejected" does not exist in pipeline "Company 2"/);
  });

  it('webhooks register subscribes the bridge to status and update events', async () => {
    const { code } = await cli(['webhooks', 'register', 'https://bridge.example.com/']);
    expect(code).toBe(0);
    const hooks = [...amo.state.webhooks.values()];
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({
      destination: `https://bridge.example.com/webhooks/amocrm/${SANDBOX_AMO_WEBHOOK_SECRET}`,
    });
    expect([...hooks[0]!.settings].sort()).toEqual(['status_lead', 'update_lead']);
  });

  it('dead list reports an empty dead letter, and unknown commands get the usage', async () => {
    expect((await cli(['dead', 'list'])).stdout).toBe('no dead jobs\n');
    const wrong = await cli(['frobnicate']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/unknown command: frobnicate[\s\S]*usage: amobridge/);
  });
  it('orders relink links an order to a deal carrying its id, and refuses a deal that carries another', async () => {
    const seed = connect(env.DATABASE_URL);
    await migrate(seed);
    await seed.kysely.transaction().execute((trx) => recordOrder(trx, anOrder('on_approval', { id: 'DM-7' }), { origin: 'webhook' }));
    await seed.close();
    const own = await amo.createLeadAsStaff({ name: 'Trial lesson — order DM-7', detmirOrderId: 'DM-7' }, { fire: false });
    const other = await amo.createLeadAsStaff({ name: 'Trial lesson — order DM-8', detmirOrderId: 'DM-8' }, { fire: false });

    expect(await cli(['orders', 'relink', 'DM-7', String(other.id)])).toMatchObject({
      code: 1,
      stderr: `amobridge: deal ${other.id} carries detmirOrderId DM-8, not DM-7: set it in amoCRM first\n`,
    });
    expect(await cli(['orders', 'relink', 'DM-7', String(own.id)])).toMatchObject({
      code: 0,
      stdout: `order DM-7 linked to deal ${own.id} (was none); now replay its dead jobs (dead list)\n`,
    });
    expect((await cli(['orders', 'relink', 'DM-7'])).stderr).toMatch(/orders relink needs an order id and a deal id/);

    const db = connect(env.DATABASE_URL);
    try {
      expect(await db.kysely.selectFrom('orders').select('deal_id').where('order_id', '=', 'DM-7').executeTakeFirst()).toEqual({ deal_id: own.id });
      expect(await db.kysely.selectFrom('jobs').select(['kind', 'job_key', 'status']).execute()).toEqual([
        { kind: 'order.sync', job_key: 'order:DM-7', status: 'queued' },
      ]);
    } finally {
      await db.close();
    }
  });
});
