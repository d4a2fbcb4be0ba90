import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';

/**
 * The one place the tests and the benchmarks start processes, so that none outlives its
 * owner. Every child leads a process group of its own (`detached`) and is remembered until
 * it exits; its whole group is killed
 *
 * - when the owner cleans up (`killOwnedProcesses`, after each test and each file),
 * - when the owner exits, or is told to stop (SIGTERM, as vitest stops a worker; SIGINT;
 *   SIGHUP),
 * - and when the owner dies without a word (SIGKILL, vitest's fallback): the child's
 *   parent watch sees it was orphaned and kills its own group.
 */

/**
 * Preloaded into every child (a data: URL, so plain node loads it as well as tsx): once the
 * parent is gone the child is re-parented, and it takes its group down with it.
 */
const PARENT_WATCH = `data:text/javascript,${encodeURIComponent(`
const parent = process.ppid;
setInterval(() => {
  if (process.ppid === parent) return;
  try { process.kill(-process.pid, 'SIGKILL'); } catch {}
  process.exit(70);
}, 200).unref();
`)}`;

interface Owned {
  child: ChildProcess;
  /** Spawn order, for `processMark`. */
  seq: number;
  exited: Promise<void>;
}

const owned = new Map<ChildProcess, Owned>();
let seq = 0;
let hooksInstalled = false;

/** `node [--import parent-watch] …args` as a process group of its own, owned by this process. */
export function spawnNode(args: string[], options: Omit<SpawnOptions, 'detached'> = {}): ChildProcess {
  return spawnOwned(process.execPath, ['--import', PARENT_WATCH, ...args], options);
}

/**
 * Any command (`npm start`, say) as a process group of its own, owned by this process. It
 * has no parent watch of its own: its group is killed with the others when the owner goes.
 */
export function spawnOwned(file: string, args: string[], options: Omit<SpawnOptions, 'detached'> = {}): ChildProcess {
  installExitHooks();
  const child = spawn(file, args, { ...options, detached: true });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve()); // never started
  }).then(() => void owned.delete(child));
  owned.set(child, { child, seq: ++seq, exited });
  return child;
}

/** Whether the child has not exited yet. */
export function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Sends `signal` to the child's whole process group; false when nothing is left to signal. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): boolean {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Resolves when the child has exited (at once if it has). */
export function exitOf(child: ChildProcess): Promise<void> {
  return owned.get(child)?.exited ?? Promise.resolve();
}

/** A point in time for `killOwnedProcesses({ since })`: children spawned after it. */
export function processMark(): number {
  return seq;
}

/**
 * SIGKILLs the process group of every owned child still running (or only those spawned
 * after `since`) and waits for them to exit. Answers how many it killed.
 */
export async function killOwnedProcesses(options: { since?: number } = {}): Promise<number> {
  const targets = [...owned.values()].filter((o) => o.seq > (options.since ?? 0));
  for (const { child } of targets) signalGroup(child, 'SIGKILL');
  await Promise.all(targets.map((o) => o.exited));
  return targets.length;
}

/**
 * Stops a child politely: `signal` to its group, then SIGKILL after `graceMs`. Answers
 * the exit code (null when a signal ended it).
 */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<number | null> {
  if (isRunning(child)) {
    signalGroup(child, signal);
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
    await exitOf(child);
    clearTimeout(timer);
  }
  return child.exitCode;
}

export interface NodeRun {
  /** Exit code; null when a signal ended it (see `timedOut`). */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `node …args` to its end, collecting its output; after `timeoutMs` its group gets
 * SIGTERM, then SIGKILL two seconds later. Never rejects for an exit code: callers judge.
 */
export async function runNode(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string }): Promise<NodeRun> {
  const child = spawnNode(args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stopProcess(child, 'SIGTERM', 2000);
  }, options.timeoutMs);
  const failed = new Promise<Error>((resolve) => child.once('error', resolve));
  // 'close' (not 'exit'): the output pipes are drained by then.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const outcome = await Promise.race([closed.then(() => undefined), failed]);
  clearTimeout(timer);
  if (outcome instanceof Error) throw outcome;
  return { code: child.exitCode, stdout, stderr, timedOut };
}

/** Kills what is left, synchronously: the only thing an exiting process can still do. */
function killAllNow(): void {
  for (const { child } of owned.values()) signalGroup(child, 'SIGKILL');
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllNow);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllNow();
      // With this listener gone, the signal again does what it would have done.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}
