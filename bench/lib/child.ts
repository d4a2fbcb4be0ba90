import { type ChildProcess, execFileSync } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { isRunning, runNode, spawnNode, stopProcess } from '../../src/sandbox/processes.js';

/**
 * Child processes of the benchmark: the load generator, the servers under test and the
 * queue runner each run in a process of their own, started as `node --import tsx …`, so
 * both sides of every ratio are started and driven the same way. They are started through
 * src/sandbox/processes.ts, so a run that fails or is killed leaves none behind.
 */

/** A one-shot child prints its result as one line starting with this mark. */
export const RESULT_MARK = 'BENCH_RESULT ';

/** In a one-shot child: the JSON argument its parent passed. */
export function childArgs<T>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error('expected one JSON argument');
  return JSON.parse(raw) as T;
}

/** In a one-shot child: hands the result to the parent. */
export function emitResult(value: unknown): void {
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(value)}\n`);
}

export interface RunChildOptions {
  /** The child is killed (SIGKILL) after this long and the run fails. */
  timeoutMs: number;
  /** Flags for node itself, e.g. --cpu-prof. */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

/** Runs `node --import tsx <script> <json args>` to its end; answers the result it printed. */
export async function runChild<T>(script: string, args: unknown, options: RunChildOptions): Promise<T> {
  const { code, stdout, stderr, timedOut } = await runNode([...(options.nodeArgs ?? []), '--import', 'tsx', script, JSON.stringify(args)], {
    env: { ...process.env, ...options.env },
    timeoutMs: options.timeoutMs,
  });
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARK));
  if (code !== 0 || !line) {
    const why = timedOut ? `was killed after ${options.timeoutMs} ms` : `exited with ${code}`;
    throw new Error(`${script} ${why}:\n${stderr.slice(-2000)}`);
  }
  return JSON.parse(line.slice(RESULT_MARK.length)) as T;
}

/** A long-running child (a server under test). */
export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly logPath: string,
  ) {}

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('the server process has no pid');
    return this.child.pid;
  }

  get alive(): boolean {
    return isRunning(this.child);
  }

  /**
   * Starts `node [nodeArgs] [--import tsx] <script> [args]` with its output in `logPath`, and
   * waits until `ready()` says yes (or the process dies, or `timeoutMs` passes).
   */
  static async start(options: {
    script: string;
    args?: string[];
    nodeArgs?: string[];
    /** Load the script through tsx (default); false for compiled JavaScript. */
    tsx?: boolean;
    env: Record<string, string>;
    logPath: string;
    ready: () => Promise<boolean>;
    timeoutMs: number;
  }): Promise<ServerProcess> {
    const log = createWriteStream(options.logPath, { flags: 'a' });
    await new Promise((r) => log.once('open', r));
    const loader = options.tsx === false ? [] : ['--import', 'tsx'];
    const child = spawnNode([...(options.nodeArgs ?? []), ...loader, options.script, ...(options.args ?? [])], {
      env: { PATH: process.env.PATH ?? '', ...options.env },
      stdio: ['ignore', log, log],
    });
    const server = new ServerProcess(child, options.logPath);
    const deadline = Date.now() + options.timeoutMs;
    for (;;) {
      if (!server.alive) throw new Error(`${options.script} exited early; see ${options.logPath}:\n${tail(options.logPath)}`);
      if (await options.ready().catch(() => false)) return server;
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`${options.script} was not ready within ${options.timeoutMs} ms; see ${options.logPath}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Resident set size and its peak, in bytes, from /proc (or `ps` elsewhere). */
  memory(): { rss: number; peakRss: number | null } {
    return processMemory(this.pid);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; answers the exit code. */
  stop(graceMs = 10_000): Promise<number | null> {
    return stopProcess(this.child, 'SIGTERM', graceMs);
  }
}

export function processMemory(pid: number): { rss: number; peakRss: number | null } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : null;
    };
    const rss = kb('VmRSS');
    if (rss !== null) return { rss, peakRss: kb('VmHWM') };
  } catch {
    // Not Linux: ask ps.
  }
  const out = execFileSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' });
  return { rss: Number(out.trim()) * 1024, peakRss: null };
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').slice(-2000);
  } catch {
    return '';
  }
}
