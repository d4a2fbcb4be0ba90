import express from 'express';
import type { AddressInfo } from 'node:net';
import { SANDBOX_LONG_LIVED_TOKEN } from '../env.js';
import { controlRouter } from './control.js';
import { createAmoSimulator } from './index.js';
import { requireBearer } from './middleware.js';

/**
 * Runs the amoCRM simulator on its own: `tsx src/sandbox/amo/standalone.ts`.
 *
 *   AMO_SIM_PORT              port, default 8081 (127.0.0.1 only)
 *   AMO_SIM_LONG_LIVED_TOKEN  bearer token always accepted, default 'sandbox-long-lived-token'
 *
 * Prints the URL and a one-time authorization code for the OAuth exchange. Changes made
 * through the API fire the subscribed webhooks, as in amoCRM; control routes under /_sim
 * (same bearer token): GET /_sim/leads, POST /_sim/leads/:id/move {stage, price?} (a
 * manager moving a deal in the UI). See README.md in this folder.
 */

const port = Number(process.env.AMO_SIM_PORT ?? 8081);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`AMO_SIM_PORT must be a port number, got "${process.env.AMO_SIM_PORT}"`);
  process.exit(1);
}
const token = process.env.AMO_SIM_LONG_LIVED_TOKEN || SANDBOX_LONG_LIVED_TOKEN;

const sim = createAmoSimulator({ longLivedToken: token });
const app = express();
app.use('/_sim', requireBearer((t) => t === token), controlRouter(sim));
app.use(sim.app);

const server = app.listen(port, '127.0.0.1', (error?: Error) => {
  if (error) {
    console.error(`amoCRM simulator: ${error.message}`);
    process.exit(1);
  }
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  console.log(`amoCRM simulator listening on ${url}`);
  console.log(`  account ${sim.state.account.subdomain} (id ${sim.state.account.id}); bearer token ${token}`);
  console.log(`  OAuth client_id=sim-client-id client_secret=sim-client-secret redirect_uri=https://bridge.example/oauth`);
  console.log(`  authorization code: ${sim.issueAuthorizationCode()}`);
  console.log(`  move a deal: curl -X POST ${url}/_sim/leads/<id>/move -H 'Authorization: Bearer ${token}' -H 'Content-Type: application/json' -d '{"stage":"Payment received"}'`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.closeAllConnections();
    server.close(() => void sim.close().then(() => process.exit(0)));
  });
}
