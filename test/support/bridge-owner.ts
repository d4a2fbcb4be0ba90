import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createAmoSimulator } from '../../src/sandbox/amo/index.js';
import { SANDBOX_LONG_LIVED_TOKEN } from '../../src/sandbox/env.js';
import { createPartnerSimulator } from '../../src/sandbox/partner/index.js';
import { BridgeProcess } from './bridge-process.js';

/**
 * A stand-in for a vitest worker (test/process-cleanup.test.ts): starts both simulators
 * and a bridge through the test helper, prints the bridge's pid as one JSON line, then
 * waits to be stopped or killed.
 */
const amo = createAmoSimulator({ longLivedToken: SANDBOX_LONG_LIVED_TOKEN });
const partner = createPartnerSimulator();
const [amoUrl, partnerUrl] = await Promise.all([amo.listen(), partner.listen()]);
const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-owner-'));
const bridge = await BridgeProcess.create({
  databaseUrl: `sqlite:${path.join(dir, 'owner.db')}`,
  amoUrl,
  partnerUrl,
  logPath: path.join(dir, 'bridge.log'),
});
await bridge.start();
process.stdout.write(`${JSON.stringify({ pid: bridge.pid, url: bridge.url })}\n`);
setInterval(() => undefined, 60_000);
