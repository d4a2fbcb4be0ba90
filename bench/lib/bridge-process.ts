import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_PARTNER_WEBHOOK_SECRET } from '../../src/sandbox/partner/index.js';
import { freePort, sandboxEnv } from '../../src/sandbox/env.js';
import { runNode } from '../../src/sandbox/processes.js';
import { ServerProcess } from './child.js';

export { freePort };

export interface BridgeProcessOptions {
  databaseUrl: string;
  amoUrl: string;
  partnerUrl: string;
  /** Folder for the process's log (and CPU profiles, when asked for). */
  dir: string;
  /** `--no-worker`: the HTTP edge only. */
  worker: boolean;
  env?: Record<string, string>;
  nodeArgs?: string[];
  /** A compiled entry point run by plain node (see compiledBridge); default src/main.ts through tsx. */
  compiledEntry?: string;
  /** Load the memory probe (see probeMemory). */
  memoryProbe?: boolean;
}

/**
 * Preloaded into a bridge process (a data: URL, so plain node can load it too): on
 * SIGUSR2 it reads process.memoryUsage(), runs a full garbage collection (--expose-gc),
 * reads it again and writes both to $BENCH_MEMORY_PROBE.
 */
const MEMORY_PROBE = `import fs from 'node:fs';
process.on('SIGUSR2', () => {
  const before = process.memoryUsage();
  globalThis.gc();
  const after = process.memoryUsage();
  const file = process.env.BENCH_MEMORY_PROBE;
  fs.writeFileSync(file + '.tmp', JSON.stringify({ before, after }));
  fs.renameSync(file + '.tmp', file);
});`;

export interface ProbedMemory {
  before: NodeJS.MemoryUsage;
  after: NodeJS.MemoryUsage;
}

/** Asks a bridge started with `memoryProbe` for its memory before and after a full GC. */
export async function probeMemory(bridge: RunningBridge): Promise<ProbedMemory> {
  const file = bridge.probeFile;
  if (!file) throw new Error('the bridge was started without the memory probe');
  rmSync(file, { force: true });
  process.kill(bridge.process.pid, 'SIGUSR2');
  const deadline = Date.now() + 10_000;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error('the memory probe did not answer');
    await new Promise((r) => setTimeout(r, 20));
  }
  return JSON.parse(readFileSync(file, 'utf8')) as ProbedMemory;
}

export interface RunningBridge {
  url: string;
  process: ServerProcess;
  probeFile?: string;
}

/**
 * The bridge as operators run it: `src/main.ts` in its own process, configured only by
 * environment variables (the sandbox's credentials), ready when /readyz says so.
 */
export async function startBridgeProcess(options: BridgeProcessOptions): Promise<RunningBridge> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const probeFile = options.memoryProbe ? path.join(options.dir, 'memory-probe.json') : undefined;
  const probeArgs = probeFile ? ['--expose-gc', '--import', `data:text/javascript,${encodeURIComponent(MEMORY_PROBE)}`] : [];
  // Kysely's migrator lists the tables of every schema of the database; when another
  // process drops a schema at that moment (parallel test runs), the start fails with
  // "schema … does not exist". Such a start is tried again.
  const start = () => ServerProcess.start({
    script: options.compiledEntry ?? 'src/main.ts',
    tsx: options.compiledEntry === undefined,
    args: options.worker ? [] : ['--no-worker'],
    nodeArgs: [...probeArgs, ...(options.nodeArgs ?? [])],
    logPath: path.join(options.dir, 'bridge.log'),
    env: {
      ...sandboxEnv({ port, databaseUrl: options.databaseUrl, amoUrl: options.amoUrl, partnerUrl: options.partnerUrl }),
      ...(probeFile ? { BENCH_MEMORY_PROBE: probeFile } : {}),
      ...options.env,
    },
    ready: async () => {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return res.status === 200;
    },
    timeoutMs: 30_000,
  });
  let process_: ServerProcess | undefined;
  for (let attempt = 1; !process_; attempt++) {
    try {
      process_ = await start();
    } catch (error) {
      if (attempt >= 3 || !String(error).includes('does not exist')) throw error;
    }
  }
  return { url, process: process_, probeFile };
}

export { DEFAULT_PARTNER_WEBHOOK_SECRET };
