import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import net from 'node:net';
import { SANDBOX_AMO_WEBHOOK_SECRET, SANDBOX_LONG_LIVED_TOKEN } from '../../src/sandbox/stack.js';
import { DEFAULT_PARTNER_API_TOKEN, DEFAULT_PARTNER_WEBHOOK_SECRET } from '../../src/sandbox/partner/index.js';
import { waitFor } from './stack.js';

/** A port nobody listens on right now. */
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

/**
 * The bridge as operators run it, `src/main.ts` in its own process configured only by
 * environment variables, so a test can SIGKILL it like a crashed machine.
 */
export class BridgeProcess {
  private child: ChildProcess | undefined;
  readonly url: string;

  constructor(
    private readonly env: Record<string, string>,
    readonly port: number,
    private readonly logPath: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async create(options: { databaseUrl: string; amoUrl: string; partnerUrl: string; logPath: string; env?: Record<string, string> }) {
    const port = await freePort();
    return new BridgeProcess(
      {
        PORT: String(port),
        DATABASE_URL: options.databaseUrl,
        MAPPINGS_PATH: 'mappings/default.yaml',
        AMO_SUBDOMAIN: 'company2',
        AMO_BASE_URL: options.amoUrl,
        AMO_LONG_LIVED_TOKEN: SANDBOX_LONG_LIVED_TOKEN,
        AMO_WEBHOOK_SECRET: SANDBOX_AMO_WEBHOOK_SECRET,
        PARTNER_API_URL: options.partnerUrl,
        PARTNER_API_TOKEN: DEFAULT_PARTNER_API_TOKEN,
        PARTNER_WEBHOOK_SECRET: DEFAULT_PARTNER_WEBHOOK_SECRET,
        WEBVIEW_JWT_SECRET: 'process-webview-jwt-secret-0123456789abcdef',
        WEBVIEW_JWT_ISSUER: 'company1',
        WEBVIEW_JWT_AUDIENCE: 'amobridge',
        SESSION_SECRET: 'process-session-secret-0123456789abcdef',
        SWEEP_INTERVAL: '0',
        LOG_LEVEL: 'info',
        ...options.env,
      },
      port,
      options.logPath,
    );
  }

  async start(): Promise<void> {
    const log = createWriteStream(this.logPath, { flags: 'a' });
    await new Promise((r) => log.once('open', r));
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', log, log],
    });
    await waitFor(
      'the bridge process to be ready',
      async () => {
        if (this.child?.exitCode !== null) throw new Error(`bridge exited with ${this.child?.exitCode}; see ${this.logPath}`);
        const res = await fetch(`${this.url}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      30_000,
    );
  }

  /** Stops the process with a signal and answers its exit code (null when killed). */
  async stop(signal: NodeJS.Signals): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    return exited;
  }
}
