import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { freePort, sandboxEnv } from '../../src/sandbox/env.js';
import { isRunning, spawnNode, stopProcess } from '../../src/sandbox/processes.js';
import { waitFor } from './stack.js';

/**
 * The bridge as operators run it, `src/main.ts` in its own process configured only by
 * environment variables, so a test can SIGKILL it like a crashed machine. Started through
 * src/sandbox/processes.ts: a test that fails or times out leaves no bridge behind.
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

  /** The running process's id (its process group's too). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const log = createWriteStream(this.logPath, { flags: 'a' });
    await new Promise((r) => log.once('open', r));
    const child = spawnNode(['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', log, log],
    });
    this.child = child;
    await waitFor(
      'the bridge process to be ready',
      async () => {
        if (!isRunning(child)) throw new Error(`bridge exited with ${child.exitCode}; see ${this.logPath}`);
        const res = await fetch(`${this.url}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      30_000,
    );
  }

  /**
   * Stops the process with a signal and answers its exit code (null when killed). A
   * SIGTERM that is not obeyed within the bridge's own shutdown limit becomes a SIGKILL.
   */
  async stop(signal: NodeJS.Signals): Promise<number | null> {
    const child = this.child;
    if (!child) return null;
    return stopProcess(child, signal, 30_000);
  }
}
