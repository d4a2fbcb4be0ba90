import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../src/db/connect.js';
import type { BenchConfig } from './config.js';
import type { LoadArgs, LoadRunResult } from './load.js';
import { DEFAULT_PARTNER_WEBHOOK_SECRET, probeMemory, type ProbedMemory, startBridgeProcess } from './lib/bridge-process.js';
import { runNode } from '../src/sandbox/processes.js';
import { compiledBridge } from './lib/build.js';
import { runChild } from './lib/child.js';
import { benchDir, type DatabaseKind, freshDatabase } from './lib/databases.js';
import { figure, type Figure, MB_UNIT, type SectionResult } from './lib/report.js';
import { type Simulators, startSimulators } from './lib/simulators.js';
import { MB } from './lib/stats.js';

/**
 * Figure 5: resident set size of the compiled bridge as `npm start` runs it (`node`, the
 * V8 flags of package.json's start script, `dist/main.js`; HTTP edge only, `--no-worker`,
 * so nothing drains the queue), on each database. 5a: ready and idle; baseline: a bare
 * Node.js HTTP server, the floor of any Node.js service. 5b: once `events` partner
 * webhooks were accepted and wait as jobs; baseline: the same process idle. Read from
 * /proc/<pid>/status (VmRSS; VmHWM for the peak).
 */

const IDLE_GOAL_MB = 90;
const LOADED_GOAL_MB = 130;

/** Where a process's memory is: /proc and the bridge's own Prometheus gauges. */
interface MemoryPicture {
  rss: number;
  peakRss: number | null;
  rssAnon: number | null;
  rssFile: number | null;
  threads: number | null;
  heapUsed: number | null;
  heapTotal: number | null;
  external: number | null;
}

async function picture(pid: number, url: string): Promise<MemoryPicture> {
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    // Not Linux.
  }
  const field = (name: string, kb = true) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status);
    return m ? Number(m[1]) * (kb ? 1024 : 1) : null;
  };
  const metrics = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) }).then((r) => r.text()).catch(() => '');
  const gauge = (name: string) => {
    const m = new RegExp(`^amobridge_${name} (\\S+)$`, 'm').exec(metrics);
    return m ? Number(m[1]) : null;
  };
  const rss = field('VmRSS');
  if (rss === null) throw new Error('cannot read VmRSS (needs Linux /proc)');
  return {
    rss,
    peakRss: field('VmHWM'),
    rssAnon: field('RssAnon'),
    rssFile: field('RssFile'),
    threads: field('Threads', false),
    heapUsed: gauge('nodejs_heap_size_used_bytes'),
    heapTotal: gauge('nodejs_heap_size_total_bytes'),
    external: gauge('nodejs_external_memory_bytes'),
  };
}

function afterGc(m: Measured): string {
  const mb = (v: number) => `${(v / MB).toFixed(1)} MB`;
  return `after a full GC: RSS ${mb(m.gc.after.rss)}, V8 heap ${mb(m.gc.after.heapUsed)} used of ${mb(m.gc.after.heapTotal)} (before it: ${mb(m.gc.before.heapUsed)} used)`;
}

function mbOrNa(v: number | null): string {
  return v === null ? 'n/a' : `${(v / MB).toFixed(1)} MB`;
}

function describe(p: MemoryPicture): string {
  const mb = (v: number | null) => (v === null ? 'n/a' : `${(v / MB).toFixed(1)} MB`);
  return `RSS ${mb(p.rss)} (anonymous ${mb(p.rssAnon)}, file-backed ${mb(p.rssFile)}), ${p.threads ?? '?'} threads, main V8 heap ${mb(p.heapUsed)} used of ${mb(p.heapTotal)}, external ${mb(p.external)}`;
}

interface Measured {
  idle: MemoryPicture;
  loaded: MemoryPicture;
  /** The loaded process before and after a full garbage collection (asked for after `loaded` was read). */
  gc: ProbedMemory;
  waiting: number;
  rps: number;
  /** The idle process's resident memory by mapping (see residentByMapping). */
  maps: string;
}

/**
 * Resident memory by mapping, largest first (/proc/<pid>/smaps): the node binary and the
 * libraries it maps are file-backed; V8's heap, code and every malloc are anonymous.
 */
function residentByMapping(pid: number): string {
  let smaps = '';
  try {
    smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return 'n/a (needs Linux /proc)';
  }
  const byName = new Map<string, number>();
  let name = '';
  for (const line of smaps.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      name = head[1] || 'anonymous';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) byName.set(name, (byName.get(name) ?? 0) + Number(rss[1]) * 1024);
  }
  return [...byName]
    .sort((a, b) => b[1] - a[1])
    .filter(([, bytes]) => bytes >= MB / 2)
    .map(([n, bytes]) => `${n.replace(/^.*node_modules\//, 'node_modules/')} ${(bytes / MB).toFixed(1)} MB`)
    .join(', ');
}

/**
 * The node flags `npm start` passes (package.json's start script: `exec node <flags>
 * dist/main.js`), so the figure is the process production runs.
 */
export function startFlags(): string[] {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts?: { start?: string } };
  const match = /exec node((?:\s+--\S+)*)\s+dist\/main\.js/.exec(pkg.scripts?.start ?? '');
  if (!match) throw new Error('package.json\'s start script does not run `exec node … dist/main.js`');
  return match[1]!.trim().split(/\s+/).filter(Boolean);
}

/** RSS of a bare Node.js HTTP server, ready and idle: what any Node.js service costs. */
async function bareNodeRss(settleMs: number): Promise<number> {
  const script = `const s = require('node:http').createServer((q, r) => r.end()).listen(0, '127.0.0.1', () => setTimeout(() => {
    process.stdout.write(/^VmRSS:\\s+(\\d+)/m.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1] + '\\n'); s.close(); }, ${settleMs}));`;
  const run = await runNode(['-e', script], { timeoutMs: 30_000 });
  const kb = Number(run.stdout.trim());
  if (run.code !== 0 || !(kb > 0)) throw new Error(`the bare Node.js server did not report its RSS: ${run.stderr.slice(-500)}`);
  return kb * 1024;
}

async function measure(kind: DatabaseKind, events: number, settleMs: number, sims: Simulators, compiledEntry: string, nodeArgs?: string[]): Promise<Measured> {
  const db = await freshDatabase(kind, 'memory');
  const bridge = await startBridgeProcess({
    databaseUrl: db.url,
    amoUrl: sims.amoUrl,
    partnerUrl: sims.partnerUrl,
    dir: benchDir('memory'),
    worker: false,
    compiledEntry,
    memoryProbe: true,
    nodeArgs,
  }).catch(async (error: unknown) => {
    await db.drop();
    throw error;
  });
  try {
    await sleep(settleMs);
    const idle = await picture(bridge.process.pid, bridge.url);
    const maps = residentByMapping(bridge.process.pid);
    const args: LoadArgs = {
      url: bridge.url,
      path: '/webhooks/partner',
      pool: { size: events, secret: DEFAULT_PARTNER_WEBHOOK_SECRET, prefix: `mem${kind}${nodeArgs ? 'c' : ''}${Date.now().toString(36)}` },
      runs: [{ kind: 'autocannon', name: 'fill', connections: 10, amount: events }],
      timeoutSec: 120,
    };
    const [fill] = await runChild<LoadRunResult[]>('bench/load.ts', args, { timeoutMs: 180_000 });
    if (fill!.statusCodes['202'] !== events) throw new Error(`expected ${events} webhooks accepted, got ${JSON.stringify(fill!.statusCodes)}`);
    await sleep(settleMs);
    const loaded = await picture(bridge.process.pid, bridge.url);
    const gc = await probeMemory(bridge);
    const probe = connect(db.baseUrl, { schema: db.schema });
    const row = await probe.kysely
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('status', '=', 'queued')
      .executeTakeFirstOrThrow()
      .finally(() => probe.close());
    return { idle, loaded, gc, waiting: Number(row.n), rps: fill!.rps, maps };
  } finally {
    await bridge.process.stop();
    await db.drop();
  }
}

export async function memorySection(config: BenchConfig): Promise<SectionResult> {
  const started = Date.now();
  const { events, settleMs } = config.memory;
  const flags = startFlags();
  const figures: Figure[] = [];
  const startsAs = `node ${[...flags, 'dist/main.js'].join(' ')}`;
  const facts: string[] = [
    `Bridge: the build of this tree (dist/ when current, else scripts/build.js into a temp folder), run as \`npm start\` runs it: \`${startsAs} --no-worker\`, on a fresh database; webhooks sent by autocannon in its own process (10 connections) until all were accepted; memory read ${settleMs} ms later from /proc/<pid>/status and the bridge's /metrics.`,
  ];
  const evidence: string[] = [];
  const compiled = await compiledBridge();
  const bare = await bareNodeRss(settleMs);
  facts.push(`Bare Node.js HTTP server (\`node -e\`, node:http, listening, idle): RSS ${(bare / MB).toFixed(1)} MB.`);
  const sims = await startSimulators({ rateLimitRps: 50 });
  let comparedFlags = false;
  try {
    for (const kind of config.databases) {
      const label = kind === 'sqlite' ? 'SQLite' : 'PostgreSQL';
      const m = await measure(kind, events, settleMs, sims, compiled, flags);
      const idleMb = m.idle.rss / MB;
      const loadedMb = m.loaded.rss / MB;
      figures.push(
        figure({
          id: '5a',
          title: `RSS of the compiled bridge, idle, ${label}`,
          measured: { value: idleMb, unit: MB_UNIT },
          baseline: { value: bare / MB, unit: MB_UNIT, label: 'bare Node.js HTTP server' },
          goal: { text: `≤ ${IDLE_GOAL_MB} MB`, met: idleMb <= IDLE_GOAL_MB },
        }),
        figure({
          id: '5b',
          title: `RSS of the compiled bridge with ${events.toLocaleString('en-US')} jobs waiting, ${label}`,
          measured: { value: loadedMb, unit: MB_UNIT },
          baseline: { value: idleMb, unit: MB_UNIT, label: 'same process idle' },
          goal: { text: `≤ ${LOADED_GOAL_MB} MB`, met: loadedMb <= LOADED_GOAL_MB },
        }),
      );
      facts.push(
        `${label}: ${m.waiting.toLocaleString('en-US')} jobs waiting after ${events.toLocaleString('en-US')} webhooks (${m.rps.toFixed(0)} req/s). Idle: ${describe(m.idle)}. Loaded: ${describe(m.loaded)}; peak RSS ${m.loaded.peakRss !== null ? `${(m.loaded.peakRss / MB).toFixed(1)} MB` : 'n/a'}; ${afterGc(m)}.`,
      );
      // What the flags buy and cost does not depend on the database: one comparison is enough.
      if (!comparedFlags && flags.length > 0) {
        comparedFlags = true;
        const plain = await measure(kind, events, settleMs, sims, compiled, []);
        facts.push(
          `${label}, the V8 flags of \`npm start\` (${flags.join(' ')}) against none, same build, same load: idle RSS ${(m.idle.rss / MB).toFixed(1)} MB against ${(plain.idle.rss / MB).toFixed(1)} MB, with ${events.toLocaleString('en-US')} jobs waiting ${(m.loaded.rss / MB).toFixed(1)} MB against ${(plain.loaded.rss / MB).toFixed(1)} MB (peak ${mbOrNa(m.loaded.peakRss)} against ${mbOrNa(plain.loaded.peakRss)}); webhooks accepted at ${m.rps.toFixed(0)} req/s against ${plain.rps.toFixed(0)} req/s (10 connections, closed loop). Without the flags: idle ${describe(plain.idle)}; loaded ${describe(plain.loaded)}; ${afterGc(plain)}.`,
        );
      }
      if ((idleMb > IDLE_GOAL_MB || loadedMb > LOADED_GOAL_MB) && config.evidenceOnMiss) {
        evidence.push(`Memory of the idle bridge on ${label} (\`${startsAs}\`), by mapping (/proc/<pid>/smaps; the node binary and libraries are file-backed, V8's heap, its code and every malloc anonymous): ${m.maps}. A bare Node.js HTTP server takes ${(bare / MB).toFixed(1)} MB.`);
      }
    }
  } finally {
    await sims.close();
  }
  return { name: 'Memory', seconds: (Date.now() - started) / 1000, figures, facts, evidence };
}
