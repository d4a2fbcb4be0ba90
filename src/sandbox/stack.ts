import { createBridge, type Bridge, type BridgeTuning } from '../bridge.js';
import { configSchema } from '../config.js';
import { SANDBOX_LONG_LIVED_TOKEN, sandboxEnv } from './env.js';
import type { Logger } from '../logger.js';
import { loadMappingsFile } from '../mappings/load.js';
import { type AmoSimulator, type AmoSimulatorOptions, createAmoSimulator } from './amo/index.js';
import { createPartnerSimulator, type PartnerSimulator, type PartnerSimulatorOptions } from './partner/index.js';

/**
 * Both simulators and a bridge wired to each other over real HTTP on loopback: the
 * whole product in one process, for the demo and the end-to-end tests.
 */
export interface Stack {
  amo: AmoSimulator;
  partner: PartnerSimulator;
  bridge: Bridge;
  bridgeUrl: string;
  amoUrl: string;
  partnerUrl: string;
  stop(): Promise<void>;
}

export interface StackOptions {
  databaseUrl: string;
  logger: Logger;
  tuning?: BridgeTuning;
  amo?: AmoSimulatorOptions;
  partner?: PartnerSimulatorOptions;
  mappingsPath?: string;
  rateLimitRps?: number;
  env?: Record<string, string>;
}

export { SANDBOX_AMO_WEBHOOK_SECRET, SANDBOX_LONG_LIVED_TOKEN } from './env.js';

export async function startStack(options: StackOptions): Promise<Stack> {
  const amo = createAmoSimulator({ longLivedToken: SANDBOX_LONG_LIVED_TOKEN, ...options.amo });
  // Company 1 closes its orders itself only in stage 1 (docs/architecture.md); later stages switch it off.
  const stage = loadMappingsFile(options.mappingsPath ?? 'mappings/default.yaml').integrationStage;
  const partner = createPartnerSimulator({ autoClose: stage === 1, ...options.partner });
  const amoUrl = await amo.listen();
  const partnerUrl = await partner.listen();
  const config = configSchema.parse({
    ...sandboxEnv({
      port: 0,
      databaseUrl: options.databaseUrl,
      amoUrl,
      partnerUrl,
      mappingsPath: options.mappingsPath,
      rateLimitRps: options.rateLimitRps ?? options.amo?.rateLimitRps,
    }),
    ...(options.partner?.apiToken ? { PARTNER_API_TOKEN: options.partner.apiToken } : {}),
    ...(options.partner?.webhookSecret ? { PARTNER_WEBHOOK_SECRET: options.partner.webhookSecret } : {}),
    ...options.env,
  });
  const bridge = await createBridge(config, options.logger, options.tuning);
  const bridgeUrl = await bridge.listen(0);
  partner.setBridgeWebhookUrl(`${bridgeUrl}/webhooks/partner`);
  // What an operator does once (`amobridge webhooks register`, tested on its own):
  // subscribe the bridge to stage changes. Written straight into the simulator's state,
  // so the set-up spends none of the rate limit the bridge is measured against.
  amo.state.upsertWebhook(`${bridgeUrl}/webhooks/amocrm/${config.AMO_WEBHOOK_SECRET}`, ['status_lead', 'update_lead'], undefined);
  amo.stats.reset();
  return {
    amo,
    partner,
    bridge,
    bridgeUrl,
    amoUrl,
    partnerUrl,
    async stop() {
      await bridge.stop();
      await Promise.all([amo.close(), partner.close()]);
    },
  };
}
