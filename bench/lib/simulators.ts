import { type AmoSimulator, createAmoSimulator } from '../../src/sandbox/amo/index.js';
import { createPartnerSimulator, type PartnerSimulator } from '../../src/sandbox/partner/index.js';
import { SANDBOX_AMO_WEBHOOK_SECRET, SANDBOX_LONG_LIVED_TOKEN } from '../../src/sandbox/stack.js';

/** Both simulators on loopback, in the benchmark's own process. */
export interface Simulators {
  amo: AmoSimulator;
  partner: PartnerSimulator;
  amoUrl: string;
  partnerUrl: string;
  /** What `amobridge webhooks register` does: subscribe a bridge to stage changes. */
  subscribe(bridgeUrl: string): Promise<void>;
  close(): Promise<void>;
}

export async function startSimulators(options: { rateLimitRps: number; searchIndexDelayMs?: number }): Promise<Simulators> {
  const amo = createAmoSimulator({
    longLivedToken: SANDBOX_LONG_LIVED_TOKEN,
    rateLimitRps: options.rateLimitRps,
    searchIndexDelayMs: options.searchIndexDelayMs,
  });
  // Stage 2 and later: Company 1 does not close orders by itself.
  const partner = createPartnerSimulator({ autoClose: false });
  const [amoUrl, partnerUrl] = await Promise.all([amo.listen(), partner.listen()]);
  return {
    amo,
    partner,
    amoUrl,
    partnerUrl,
    async subscribe(bridgeUrl) {
      const res = await fetch(`${amoUrl}/api/v4/webhooks`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SANDBOX_LONG_LIVED_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ destination: `${bridgeUrl}/webhooks/amocrm/${SANDBOX_AMO_WEBHOOK_SECRET}`, settings: ['status_lead', 'update_lead'] }),
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`could not subscribe the bridge to amoCRM webhooks: ${res.status}`);
    },
    async close() {
      await Promise.all([amo.close(), partner.close()]);
    },
  };
}
