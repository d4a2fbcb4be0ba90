import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createAmoSimulator } from '../src/sandbox/amo/index.js';
import { freePort, sandboxEnv } from '../src/sandbox/env.js';
import { SANDBOX_LONG_LIVED_TOKEN } from '../src/sandbox/stack.js';
import { DIST_MAIN, requireFreshBuild } from './support/dist.js';
import { editedMappings } from './support/mappings.js';

/**
 * A bridge that cannot start says why and what to do, in one line on stderr, with no stack
 * trace, and exits non-zero: the operator reads it in `journalctl` or a terminal.
 */

interface Outcome {
  code: number | null;
  stderr: string;
}

/** `node dist/main.js` with the sandbox's environment changed by `change`; killed after 20 s. */
async function startWith(change: Record<string, string | undefined>, amoUrl = 'http://127.0.0.1:9/'): Promise<Outcome> {
  const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-startup-'));
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    ...sandboxEnv({
      port: await freePort(),
      databaseUrl: `sqlite:${path.join(dir, 'bridge.db')}`,
      // By default nothing listens there: those cases fail before amoCRM is asked anything.
      amoUrl,
      partnerUrl: 'http://127.0.0.1:9/',
    }),
    LOG_LEVEL: 'error',
    ...change,
  };
  const child = spawn(process.execPath, [DIST_MAIN], { env, cwd: process.cwd(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stderr };
}

function expectOneLine(outcome: Outcome, pattern: RegExp): void {
  expect(outcome.code, outcome.stderr).not.toBe(0);
  expect(outcome.code).not.toBeNull();
  const lines = outcome.stderr.split('\n').filter((l) => l !== '');
  expect(lines, outcome.stderr).toHaveLength(1);
  expect(outcome.stderr).not.toMatch(/^\s+at /m);
  expect(lines[0]).toMatch(/^amobridge: /);
  expect(lines[0]).toMatch(pattern);
}

describe('start-up errors of `node dist/main.js`', () => {
  beforeAll(() => requireFreshBuild());

  it('an unreachable PostgreSQL: the database, the refusal and DATABASE_URL', async () => {
    const port = await freePort();
    const outcome = await startWith({ DATABASE_URL: `postgres://bridge:s3cret-pass@127.0.0.1:${port}/amobridge` });
    expectOneLine(outcome, new RegExp(`cannot open the database postgres://bridge:\\*\\*\\*@127\\.0\\.0\\.1:${port}/amobridge: .*ECONNREFUSED.*; check DATABASE_URL`));
    expect(outcome.stderr).not.toContain('s3cret-pass');
  });

  it('an SQLite file whose folder cannot be made: the path and DATABASE_URL', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'amobridge-startup-')), 'a-file');
    writeFileSync(file, 'not a folder');
    const outcome = await startWith({ DATABASE_URL: `sqlite:${file}/data/bridge.db` });
    expectOneLine(outcome, /cannot open the database sqlite:.*a-file\/data\/bridge\.db: ENOTDIR.*; check DATABASE_URL: the file must be in a folder/);
  });

  it('a missing mappings file: its path and MAPPINGS_PATH', async () => {
    const outcome = await startWith({ MAPPINGS_PATH: '/nonexistent/stage-table.yaml' });
    expectOneLine(outcome, /cannot read mappings file \/nonexistent\/stage-table\.yaml: ENOENT.*point MAPPINGS_PATH at the right one/);
  });

  it('an integration stage out of range: the key and its allowed values', async () => {
    const file = editedMappings((y) => y.replace(/^integrationStage: \d/m, 'integrationStage: 4'));
    const outcome = await startWith({ MAPPINGS_PATH: file });
    expectOneLine(outcome, /mappings\.yaml is invalid: integrationStage: must be 1 \(intake\), 2 \(stage sync\) or 3 \(webview\); fix the file/);
  });

  it('an empty variable: its name, and where to set it', async () => {
    const outcome = await startWith({ PARTNER_API_TOKEN: '' });
    expectOneLine(outcome, /invalid configuration: PARTNER_API_TOKEN is empty; fix it in the environment or in \.env/);
    expect(outcome.code).toBe(2);
  });

  it('several bad variables: every name, still one line', async () => {
    const outcome = await startWith({ AMO_WEBHOOK_SECRET: undefined, SHUTDOWN_TIMEOUT: 'soon', PORT: '' });
    expectOneLine(outcome, /AMO_WEBHOOK_SECRET is not set; SHUTDOWN_TIMEOUT: .*; fix it in the environment/);
    expect(outcome.stderr).not.toMatch(/PORT/);
  });

  it('a stage the account does not have: the name, the stages that exist, exit 3', async () => {
    const amo = createAmoSimulator({ longLivedToken: SANDBOX_LONG_LIVED_TOKEN });
    try {
      const file = editedMappings((y) => y.replace('stage: Confirmed VU', 'stage: Confirmed UV'));
      const outcome = await startWith({ MAPPINGS_PATH: file }, await amo.listen());
      expectOneLine(outcome, /stage "Confirmed UV" does not exist in pipeline "Company 2"; stages: .*"Confirmed VU".*; fix the file/);
      expect(outcome.code).toBe(3);
    } finally {
      await amo.close();
    }
  });

  it('a port already taken: the port and PORT', async () => {
    const { createServer } = await import('node:net');
    const holder = createServer();
    const port = await new Promise<number>((resolve) => holder.listen(0, '0.0.0.0', () => resolve((holder.address() as { port: number }).port)));
    try {
      const outcome = await startWith({ PORT: String(port) });
      expectOneLine(outcome, new RegExp(`port ${port} is already in use; set PORT to a free port`));
    } finally {
      holder.close();
    }
  });
});
