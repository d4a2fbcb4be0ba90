import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmoSimulator, createAmoSimulator } from '../src/sandbox/amo/index.js';
import { SANDBOX_AMO_WEBHOOK_SECRET, SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import { editedMappings } from './support/mappings.js';

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
});
