import net from 'node:net';
import { DEFAULT_PARTNER_API_TOKEN, DEFAULT_PARTNER_WEBHOOK_SECRET } from './partner/index.js';

export const SANDBOX_LONG_LIVED_TOKEN = 'sandbox-long-lived-token';
export const SANDBOX_AMO_WEBHOOK_SECRET = 'sandbox-amo-webhook-secret';
/** The seamless sign-in Company 1 does in the sandbox (see webview-link.ts). */
export const SANDBOX_WEBVIEW_JWT = {
  secret: 'sandbox-webview-jwt-secret-0123456789abcdef',
  issuer: 'company1',
  audience: 'amobridge',
};

/**
 * The operator contract's environment for a bridge wired to the simulators: the one
 * place the demo, the tests and the benchmarks take it from (in process or as `npm start`).
 */
export function sandboxEnv(options: {
  port: number;
  databaseUrl: string;
  amoUrl: string;
  partnerUrl: string;
  mappingsPath?: string;
  rateLimitRps?: number;
}): Record<string, string> {
  return {
    PORT: String(options.port),
    DATABASE_URL: options.databaseUrl,
    MAPPINGS_PATH: options.mappingsPath ?? 'mappings/default.yaml',
    AMO_SUBDOMAIN: 'company2',
    AMO_BASE_URL: options.amoUrl,
    AMO_LONG_LIVED_TOKEN: SANDBOX_LONG_LIVED_TOKEN,
    AMO_WEBHOOK_SECRET: SANDBOX_AMO_WEBHOOK_SECRET,
    AMO_RATE_LIMIT_RPS: String(options.rateLimitRps ?? 7),
    // Periodic jobs stay off, so a drained queue is empty; tests that need one turn it on.
    SWEEP_INTERVAL: '0',
    PARTNER_SWEEP_INTERVAL: '0',
    RETENTION_INTERVAL: '0',
    PARTNER_API_URL: options.partnerUrl,
    PARTNER_API_TOKEN: DEFAULT_PARTNER_API_TOKEN,
    PARTNER_WEBHOOK_SECRET: DEFAULT_PARTNER_WEBHOOK_SECRET,
    WEBVIEW_JWT_SECRET: SANDBOX_WEBVIEW_JWT.secret,
    WEBVIEW_JWT_ISSUER: SANDBOX_WEBVIEW_JWT.issuer,
    WEBVIEW_JWT_AUDIENCE: SANDBOX_WEBVIEW_JWT.audience,
    SESSION_SECRET: 'sandbox-session-secret-0123456789abcdef',
    LOG_LEVEL: 'info',
  };
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}
