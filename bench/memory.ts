import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../src/db/connect.js';
import type { BenchConfig } from './config.js';
import type { LoadArgs, LoadRunResult } from './load.js';
import { DEFAULT_PARTNER_WEBHOOK_SECRET, probeMemory, type ProbedMemory, startBridgeProcess } from './lib/bridge-process.js';
import { compiledBridge } from './lib/build.js';
import { runChild } from './lib/child.js';
import { benchDir, type DatabaseKind, freshDatabase } from './lib/databases.js';
import { figure, type Figure, MB_UNIT, type SectionResult } from './lib/report.js';
import { type Simulators, startSimulators } from './lib/simulators.js';
import { MB } from './lib/stats.js';

/**
 * Figure 5: resident set size of the compiled bridge as `npm start` runs it (`node
 * dist/main.js`, HTTP edge only, `--no-worker`, so nothing drains the queue) once `events`
 * partner webhooks were accepted and wait as jobs; baseline: the same process, ready and
 * idle, before the first one. Read from /proc/<pid>/status (VmRSS; VmHWM for the peak).
 */

const GOAL_MB = 150;

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
}

/** V8 heap caps tried when the goal is missed: a smaller young generation and old space. */
export const HEAP_CAPS = ['--max-semi-space-size=4', '--max-old-space-size=96'];

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
    return { idle, loaded, gc, waiting: Number(row.n), rps: fill!.rps };
  } finally {
    await bridge.process.stop();
    await db.drop();
  }
}

export async function memorySection(config: BenchConfig): Promise<SectionResult> {
  const started = Date.now();
  const { events, settleMs } = config.memory;
  const figures: Figure[] = [];
  const facts: string[] = [
    `Bridge: the build of this tree (dist/ when current, else scripts/build.js into a temp folder), run as \`npm start\` runs it: \`node dist/main.js --no-worker\`, on a fresh database; webhooks sent by autocannon in its own process (10 connections) until all were accepted; memory read ${settleMs} ms later from /proc/<pid>/status and the bridge's /metrics.`,
  ];
  const evidence: string[] = [];
  const compiled = await compiledBridge();
  const sims = await startSimulators({ rateLimitRps: 50 });
  let capsTried = false;
  try {
    for (const kind of config.databases) {
      const label = kind === 'sqlite' ? 'SQLite' : 'PostgreSQL';
      const m = await measure(kind, events, settleMs, sims, compiled);
      const rssMb = m.loaded.rss / MB;
      const met = rssMb <= GOAL_MB;
      figures.push(
        figure({
          id: kind === 'sqlite' ? '5a' : '5b',
          title: `RSS of the compiled bridge with ${events.toLocaleString('en-US')} jobs waiting, ${label}`,
          measured: { value: rssMb, unit: MB_UNIT },
          baseline: { value: m.idle.rss / MB, unit: MB_UNIT, label: 'same process idle' },
          goal: { text: `≤ ${GOAL_MB} MB`, met },
        }),
      );
      facts.push(
        `${label}: ${m.waiting.toLocaleString('en-US')} jobs waiting after ${events.toLocaleString('en-US')} webhooks (${m.rps.toFixed(0)} req/s). Idle: ${describe(m.idle)}. Loaded: ${describe(m.loaded)}; peak RSS ${m.loaded.peakRss !== null ? `${(m.loaded.peakRss / MB).toFixed(1)} MB` : 'n/a'}; ${afterGc(m)}.`,
      );
      // The heap V8 keeps does not depend on the database: one comparison is enough.
      if (!met && config.evidenceOnMiss && !capsTried) {
        capsTried = true;
        const capped = await measure(kind, events, settleMs, sims, compiled, HEAP_CAPS);
        evidence.push(
          [
            `Memory on ${label}, ${events.toLocaleString('en-US')} webhooks, the compiled bridge two ways:`,
            '',
            `- \`node dist/main.js --no-worker\`: idle ${describe(m.idle)}; loaded ${describe(m.loaded)}; ${afterGc(m)};`,
            `- \`node ${HEAP_CAPS.join(' ')} dist/main.js --no-worker\`: idle ${describe(capped.idle)}; loaded ${describe(capped.loaded)}; ${afterGc(capped)}; accepted ${capped.rps.toFixed(0)} req/s (${m.rps.toFixed(0)} without the caps).`,
          ].join('\n'),
        );
      }
    }
  } finally {
    await sims.close();
  }
  return { name: 'Memory', seconds: (Date.now() - started) / 1000, figures, facts, evidence };
}
