import { createAmoSimulator } from './index.js';

/**
 * Runs the amoCRM simulator on its own: `tsx src/sandbox/amo/standalone.ts`.
 * AMO_SIM_PORT (default 8081) picks the port; AMO_SIM_LONG_LIVED_TOKEN, if set, is accepted
 * as a bearer token. Prints the URL and a one-time authorization code for the OAuth exchange.
 */

const port = Number(process.env.AMO_SIM_PORT ?? 8081);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`AMO_SIM_PORT must be a port number, got "${process.env.AMO_SIM_PORT}"`);
  process.exit(1);
}

const sim = createAmoSimulator({ longLivedToken: process.env.AMO_SIM_LONG_LIVED_TOKEN || undefined });
const url = await sim.listen(port);
console.log(`amoCRM simulator listening on ${url}`);
console.log(`  account ${sim.state.account.subdomain} (id ${sim.state.account.id})`);
console.log(`  OAuth client_id=sim-client-id client_secret=sim-client-secret redirect_uri=https://bridge.example/oauth`);
console.log(`  authorization code: ${sim.issueAuthorizationCode()}`);

const stop = (): void => {
  void sim.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
