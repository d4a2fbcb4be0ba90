import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { freePort, sandboxEnv } from '../../src/sandbox/env.js';
import { spawnNode, spawnOwned } from '../../src/sandbox/processes.js';
import { requireFreshBuild } from './dist.js';
import { isRunning, processTree } from './process-tree.js';
import { waitFor } from './stack.js';

/**
 * How the process is started: `src/main.ts` through tsx, the build as `node dist/main.js`,
 * or `npm start` (npm → /bin/sh → node), as an operator or a service manager would.
 */
export type BridgeCommand = 'source' | 'compiled' | 'npm-start';

/**
 * Started through src/sandbox/processes.ts, so a test that fails or times out leaves no
 * bridge behind (its whole process group is killed).
 */
function spawnBridge(command: BridgeCommand, options: Parameters<typeof spawnOwned>[2]): ChildProcess {
  if (command === 'source') return spawnNode(['--import', 'tsx', 'src/main.ts'], options);
  if (command === 'compiled') return spawnNode(['dist/main.js'], options);
  return spawnOwned('npm', ['start'], options);
}

/**
 * The bridge as operators run it, in its own process configured only by environment
 * variables, so a test can SIGKILL it like a crashed machine or stop it with a signal. It
 * runs in a process group of its own: `kill()` takes down whatever it left behind.
 */
export class BridgeProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  readonly url: string;

  constructor(
    private readonly env: Record<string, string>,
    readonly port: number,
    private readonly logPath: string,
    // The build by default: what production runs, and it starts without tsx compiling src/.
    private readonly command: BridgeCommand = 'compiled',
    /** The folder it runs in (default this one): a deployment has dist/ but no src/. */
    private readonly cwd?: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async create(options: {
    databaseUrl: string;
    amoUrl: string;
    partnerUrl: string;
    logPath: string;
    env?: Record<string, string>;
    command?: BridgeCommand;
    cwd?: string;
  }) {
    const port = await freePort();
    return new BridgeProcess(
      {
        ...sandboxEnv({ port, databaseUrl: options.databaseUrl, amoUrl: options.amoUrl, partnerUrl: options.partnerUrl }),
        ...options.env,
      },
      port,
      options.logPath,
      options.command,
      options.cwd,
    );
  }

  /** The pid of the process started (npm's for `npm-start`, the bridge's otherwise), once spawned. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.command !== 'source' && !this.cwd) requireFreshBuild();
    const log = createWriteStream(this.logPath, { flags: 'a' });
    await new Promise((r) => log.once('open', r));
    const child = spawnBridge(this.command, {
      // npm wants a home for its cache and logs; the bridge itself reads only its variables.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...this.env },
      stdio: ['ignore', log, log],
      cwd: this.cwd,
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await waitFor(
      'the bridge process to be ready',
      async () => {
        if (child.exitCode !== null) throw new Error(`bridge exited with ${child.exitCode}; see ${this.logPath}`);
        const res = await fetch(`${this.url}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      30_000,
    );
  }

  /** The process started and everything below it, right now. */
  tree(): number[] {
    if (this.pid === undefined) throw new Error('the bridge process is not started');
    return processTree(this.pid);
  }

  /** Sends `signal` to the process started only (not its group), as `kill <pid>` does. */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** The process's exit, or null when it is still running after `timeoutMs`. */
  async exit(timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | null> {
    if (!this.exited) throw new Error('the bridge process is not started');
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), timeoutMs).unref());
    return Promise.race([this.exited, timeout]);
  }

  /** Stops the process with a signal and answers its exit code (null when killed). */
  async stop(signal: NodeJS.Signals): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    child.kill(signal);
    return (await this.exited!).code;
  }

  /** SIGKILL to the whole group: the clean-up after a test, whatever state it ended in. */
  kill(): void {
    if (this.child?.pid === undefined) return;
    for (const pid of processTree(this.child.pid).filter(isRunning)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    try {
      process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // No such group left.
    }
  }
}
