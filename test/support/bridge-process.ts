import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { freePort, sandboxEnv } from '../../src/sandbox/env.js';
import { waitFor } from './stack.js';

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
        ...sandboxEnv({ port, databaseUrl: options.databaseUrl, amoUrl: options.amoUrl, partnerUrl: options.partnerUrl }),
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
