import express from 'express';
import type { AddressInfo } from 'node:net';
import { controlRouter } from './control.js';
import { createPartnerSimulator, DEFAULT_PARTNER_API_TOKEN, DEFAULT_PARTNER_WEBHOOK_SECRET } from './index.js';
import { requireBearer } from './routes.js';

/**
 * Runs the Company 1 simulator on its own (`tsx src/sandbox/partner/standalone.ts`).
 *
 *   PARTNER_SIM_PORT        port, default 8082 (127.0.0.1 only)
 *   PARTNER_API_TOKEN       bearer token, default 'partner-sim-token'
 *   PARTNER_WEBHOOK_SECRET  whsec_… signing secret, default the fixed test secret
 *   PARTNER_SIM_BRIDGE_URL  bridge webhook URL, default http://127.0.0.1:3000/webhooks/partner
 *   PARTNER_SIM_AUTO_CLOSE  '0' or 'false' for stage 2+ (no auto-close); default on
 *
 * Control routes under /_sim (same bearer token): POST /_sim/orders (a user orders),
 * POST /_sim/clock {advanceMs}, PATCH /_sim/faults, GET /_sim/deliveries.
 */
const port = Number(process.env.PARTNER_SIM_PORT ?? 8082);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PARTNER_SIM_PORT must be a port number, got ${process.env.PARTNER_SIM_PORT}`);
  process.exit(1);
}
const apiToken = process.env.PARTNER_API_TOKEN || DEFAULT_PARTNER_API_TOKEN;
const autoCloseEnv = process.env.PARTNER_SIM_AUTO_CLOSE?.toLowerCase();

const sim = createPartnerSimulator({
  apiToken,
  webhookSecret: process.env.PARTNER_WEBHOOK_SECRET || DEFAULT_PARTNER_WEBHOOK_SECRET,
  bridgeWebhookUrl: process.env.PARTNER_SIM_BRIDGE_URL || 'http://127.0.0.1:3000/webhooks/partner',
  autoClose: !(autoCloseEnv === '0' || autoCloseEnv === 'false'),
});

const app = express();
app.use('/_sim', requireBearer(apiToken), controlRouter(sim));
app.use(sim.app);

// The real clock moves on its own here: check for orders due to auto-close every minute.
const ticker = setInterval(() => void sim.advanceClock(0), 60_000);

const server = app.listen(port, '127.0.0.1', (error?: Error) => {
  if (error) {
    console.error(`partner simulator: ${error.message}`);
    process.exit(1);
  }
  console.log(`partner simulator listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    clearInterval(ticker);
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
