import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmoSimulator, createAmoSimulator } from '../src/sandbox/amo/index.js';
import { runNode } from '../src/sandbox/processes.js';
import { SANDBOX_AMO_WEBHOOK_SECRET, SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import { connect } from '../src/db/connect.js';
import type { Kysely } from 'kysely';
import type { Database } from '../src/db/schema.js';
import { migrate } from '../src/db/migrate.js';
import { PermanentError } from '../src/lib/http-error.js';
import { enqueue } from '../src/queue/enqueue.js';
import { describeFailure } from '../src/queue/failure.js';
import { failJob } from '../src/queue/finish.js';
import { leaseJobs } from '../src/queue/lease.js';
import { DATABASES, freshDatabaseUrl } from './support/databases.js';
import { requireFreshBuild } from './support/dist.js';
import { recordOrder } from '../src/inbox/accept-partner-event.js';
import { editedMappings } from './support/mappings.js';
import { anOrder } from './support/orders.js';

/** `amobridge …` as installed: bin/amobridge.js runs the compiled CLI in dist/. */
const cliWith = async (env: Record<string, string>, args: string[]) => {
  const { code, stdout, stderr } = await runNode(['bin/amobridge.js', ...args], { env, timeoutMs: 20_000 });
  return { code, stdout, stderr };
};

describe('amobridge CLI', () => {
  let amo: AmoSimulator;
  let env: Record<string, string>;
  beforeAll(async () => {
    requireFreshBuild();
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

  const cli = (args: string[], extra: Record<string, string> = {}) => cliWith({ ...env, ...extra }, args);

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
    expect(stdout).toMatch(/contact fields Company 1 overwrites: \(none\)\ncontact fields staff own after creation: firstName, lastName, phone, email\n$/);
  });

  it('mappings check names a misspelt stage and lists the valid ones', async () => {
    const file = editedMappings((y) => y.replace('stage: Confirmed VU', 'stage: Confirmed UV'));
    const { code, stderr } = await cli(['mappings', 'check'], { MAPPINGS_PATH: file });
    expect(code).toBe(2);
    expect(stderr).toMatch(/stage "Confirmed UV" does not exist in pipeline "Company 2"; stages: .*"Confirmed VU"/);
  });

  it('mappings diff exits non-zero naming the file and its misspelt stage, and refuses a bad span', async () => {
    const file = editedMappings((y) => y.replace('stage: Confirmed VU', 'stage: Confirmed UV'));
    const [misspelt, span] = await Promise.all([
      cli(['mappings', 'diff', file]),
      cli(['mappings', 'diff', 'mappings/default.yaml', '--since', '1w']),
    ]);
    expect(misspelt.code).toBe(2);
    expect(misspelt.stdout).toBe('');
    expect(misspelt.stderr).toContain(file);
    expect(misspelt.stderr).toMatch(/stage "Confirmed UV" does not exist in pipeline "Company 2"; stages: .*"Confirmed VU"/);
    expect(span.code).toBe(2);
    expect(span.stderr).toMatch(/--since: "1w" is not a duration: a number with s, m, h or d/);
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

  it('dead list shows each dead job on one line, dead show its whole last error', async () => {
    const db = connect(env.DATABASE_URL!);
    let id: number;
    try {
      await migrate(db);
      // Only this test's job: the relink test leaves its order's sync waiting.
      await db.kysely.deleteFrom('jobs').execute();
      await enqueue(db.kysely, { kind: 'order.sync', key: 'order:DM-17', payload: { orderId: 'DM-17' }, maxAttempts: 1 });
      const [job] = await leaseJobs(db, { workerId: 'cli-test', limit: 1, leaseMs: 30_000 });
      id = job!.id;
      const error = new PermanentError('partner PATCH /orders/DM-17 answered 422');
      await failJob(db.kysely, job!, describeFailure(error), { baseMs: 1000, maxMs: 1000 });
    } finally {
      await db.close();
    }
    const list = await cli(['dead', 'list']);
    expect(list.stdout).toBe(`${id}\torder.sync\torder:DM-17\tattempts 1\tpartner PATCH /orders/DM-17 answered 422\n`);
    const show = await cli(['dead', 'show', String(id)]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^job \d+ order\.sync order:DM-17\nattempts 1 of 1 \(0 ended by lease expiry\)\n/);
    expect(show.stdout).toMatch(/\n\npartner PATCH \/orders\/DM-17 answered 422\n\s+at .*cli\.test\.ts/);
    expect((await cli(['dead', 'show', '999999'])).code).toBe(1);
  });
});

/** A query on the database a CLI run used (DATABASE_URL with its ?schema=). */
async function withKysely<T>(url: string, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const db = connect(url);
  try {
    return await fn(db.kysely);
  } finally {
    await db.close();
  }
}

describe.each(DATABASES)('amobridge dead and apikey commands on %s', (kind) => {
  let env: Record<string, string>;
  beforeAll(async () => {
    requireFreshBuild();
    const { url, schema } = await freshDatabaseUrl(kind, `cli-${kind}`);
    // DATABASE_URL and nothing else: no amoCRM, Company 1 or webview variable.
    env = { PATH: process.env.PATH ?? '', DATABASE_URL: schema ? `${url}?schema=${schema}` : url };
  });

  it('need DATABASE_URL only', async () => {
    expect(await cliWith(env, ['dead', 'list'])).toEqual({ code: 0, stdout: 'no dead jobs\n', stderr: '' });
    const created = await cliWith(env, ['apikey', 'create', 'ops', 'jobs:read']);
    expect(created.code).toBe(0);
    const id = /\(id ([a-f0-9]+);/.exec(created.stdout)?.[1];
    expect(id).toBeDefined();
    expect(await cliWith(env, ['apikey', 'revoke', id!])).toMatchObject({ code: 0, stdout: `key ${id} revoked\n` });
    expect(await cliWith(env, ['dead', 'replay', '12345'])).toMatchObject({ code: 1, stdout: 'job 12345 is not dead\n' });
  });

  it('apikey list shows names, ids, scopes and dates, never a secret; revoke takes the name (or the id); create refuses a duplicate name', async () => {
    const first = await cliWith(env, ['apikey', 'create', 'support', 'contacts:read', 'quota:read']);
    expect(first.code).toBe(0);
    const key = first.stdout.split('\n')[0]!;
    const id = /\(id ([a-f0-9]+);/.exec(first.stdout)?.[1];
    const duplicate = await cliWith(env, ['apikey', 'create', 'support', 'jobs:read']);
    expect(duplicate).toMatchObject({ code: 2, stdout: '', stderr: 'amobridge: an active key is already named support: revoke it first, or choose another name\n' });
    expect((await cliWith(env, ['apikey', 'create', 'audit', 'jobs:read'])).code).toBe(0);

    const list = await cliWith(env, ['apikey', 'list']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+ID\s+SCOPES\s+CREATED\s+REVOKED$/);
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^support\\s+${id}\\s+contacts:read,quota:read\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\s+-$`)));
    // The secret is base64url and may itself hold '_': everything after `ak_<id>_`.
    expect(list.stdout).not.toContain(key.split('_').slice(2).join('_'));
    const hashes = await withKysely(env.DATABASE_URL!, (db) => db.selectFrom('api_keys').select('secret_hash').execute());
    for (const { secret_hash } of hashes) expect(list.stdout).not.toContain(secret_hash);

    expect(await cliWith(env, ['apikey', 'revoke', 'support'])).toMatchObject({ code: 0, stdout: `key support (id ${id}) revoked\n` });
    expect(await cliWith(env, ['apikey', 'revoke', 'support'])).toMatchObject({ code: 1, stdout: 'no active key support\n' });
    const after = await cliWith(env, ['apikey', 'list']);
    expect(after.stdout).toMatch(new RegExp(`\nsupport\\s+${id}\\s+\\S+\\s+\\S+\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\n`));
    // The name is free again once its key is revoked.
    expect((await cliWith(env, ['apikey', 'create', 'support', 'contacts:read'])).code).toBe(0);
    expect((await cliWith(env, ['apikey', 'revoke'])).code).toBe(2);
  });

  it('a bad DATABASE_URL gets one line naming it', async () => {
    const { code, stderr } = await cliWith({ PATH: env.PATH!, DATABASE_URL: 'mysql://db.example/x' }, ['dead', 'list']);
    expect(code).toBe(2);
    expect(stderr).toBe(
      'amobridge: invalid configuration: DATABASE_URL: must be sqlite:<path> or postgres://…; fix it in the environment or in .env (.env.example describes every variable)\n',
    );
  });

  it('an amoCRM command names the amoCRM variables it lacks, and no others', async () => {
    const { code, stderr } = await cliWith(env, ['webhooks', 'register', 'https://bridge.example.com']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/invalid configuration: AMO_SUBDOMAIN is not set; AMO_WEBHOOK_SECRET is not set; fix it/);
    const auth = await cliWith({ ...env, AMO_SUBDOMAIN: 'company2', AMO_WEBHOOK_SECRET: 'x'.repeat(16) }, ['webhooks', 'register', 'https://bridge.example.com']);
    expect(auth.stderr).toMatch(/AMO_CLIENT_ID: set AMO_CLIENT_ID, AMO_CLIENT_SECRET and AMO_REDIRECT_URI \(OAuth\) or AMO_LONG_LIVED_TOKEN/);
    expect(stderr).not.toMatch(/PARTNER|WEBVIEW|SESSION/);
  });
});
