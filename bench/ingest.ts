import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { connect } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { createPartnerAcceptor } from '../src/inbox/accept-partner-event.js';
import type { BenchConfig } from './config.js';
import type { LoadArgs, LoadRun, LoadRunResult } from './load.js';
import { DEFAULT_PARTNER_WEBHOOK_SECRET, freePort, type RunningBridge, startBridgeProcess } from './lib/bridge-process.js';
import { runChild, ServerProcess } from './lib/child.js';
import { latestProfile, profileMarkdown, summarizeProfile } from './lib/cpu-profile.js';
import { benchDir, type DatabaseKind, type FreshDatabase, freshDatabase } from './lib/databases.js';
import { figure, type Figure, type SectionResult } from './lib/report.js';
import { signedOrderWebhooks } from './lib/signed-webhooks.js';
import { type Simulators, startSimulators } from './lib/simulators.js';
import { type LatencySummary, summarize } from './lib/stats.js';

/**
 * Figure 1: partner webhook ingest. Every server under test runs in a child process of
 * its own and the load generator in another (bench/load.ts); the bare express baseline
 * and the bridges are started and loaded the same way, with the same kind of signed
 * bodies and headers. They are measured in interleaved rounds (bare, SQLite,
 * PostgreSQL, bare, …) so that whatever else the machine does in the meantime falls on
 * all of them alike; each figure pools its rounds.
 *
 * The bridge runs its HTTP edge only (`--no-worker`): what is measured is the signature
 * check, validation and the durable write before the 202, not the amoCRM work after it.
 */

const PATH = '/webhooks/partner';

interface Target {
  key: 'bare' | DatabaseKind;
  label: string;
  url: string;
  /** Only a bridge dedupes webhook-ids: its pool must never wrap. */
  unique: boolean;
  stop(): Promise<void>;
}

interface Pooled {
  rounds: LoadRunResult[];
  /** 2xx per second over all throughput rounds. */
  rps: number;
  latency: LatencySummary;
  maxSendLagMs: number;
  burst?: LoadRunResult;
}

function runSeconds(runs: LoadRun[]): number {
  return runs.reduce((s, r) => s + (r.durationSec ?? 0), 0);
}

async function load(target: Target, runs: LoadRun[], poolSize: number, prefix: string): Promise<Map<string, LoadRunResult>> {
  const args: LoadArgs = {
    url: target.url,
    path: PATH,
    pool: { size: poolSize, secret: DEFAULT_PARTNER_WEBHOOK_SECRET, prefix },
    runs,
    timeoutSec: Math.max(...runs.map((r) => r.durationSec ?? 0)) + 30,
  };
  const results = await runChild<LoadRunResult[]>('bench/load.ts', args, { timeoutMs: (runSeconds(runs) + 90) * 1000 });
  for (const r of results) {
    const other = Object.entries(r.statusCodes).filter(([code]) => code !== '202');
    if (other.length > 0 || r.errors > 0 || (target.unique && r.wrapped > 0)) {
      throw new Error(`${target.label} ${r.name}: answers ${JSON.stringify(r.statusCodes)}, ${r.errors} errors, ${r.wrapped} reused webhook ids`);
    }
  }
  return new Map(results.map((r) => [r.name, r]));
}

async function startBare(dir: string): Promise<Target> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = await ServerProcess.start({
    script: 'bench/servers/bare-express.ts',
    env: { PORT: String(port) },
    logPath: path.join(dir, 'bare.log'),
    ready: async () => {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return res.status === 200;
    },
    timeoutMs: 20_000,
  });
  return { key: 'bare', label: 'bare express', url, unique: false, stop: async () => void (await server.stop()) };
}

async function startBridge(kind: DatabaseKind, sims: Simulators, dir: string, nodeArgs?: string[]): Promise<Target & { bridge: RunningBridge; db: FreshDatabase }> {
  const db = await freshDatabase(kind, `ingest_${kind}`);
  const bridgeDir = path.join(dir, `${kind}${nodeArgs ? '-profiled' : ''}`);
  mkdirSync(bridgeDir, { recursive: true });
  const bridge = await startBridgeProcess({ databaseUrl: db.url, amoUrl: sims.amoUrl, partnerUrl: sims.partnerUrl, dir: bridgeDir, worker: false, nodeArgs }).catch(
    async (error: unknown) => {
      await db.drop();
      throw error;
    },
  );
  return {
    key: kind,
    label: `bridge on ${kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`,
    url: bridge.url,
    unique: true,
    bridge,
    db,
    async stop() {
      await bridge.process.stop();
      await db.drop();
    },
  };
}

/** Distinct webhooks enough for a bridge's runs: it cannot outrun the bare handler. */
function poolFor(runs: LoadRun[], fastestRps: number, rate: number): number {
  const closed = runs.filter((r) => r.kind === 'autocannon' && r.overallRate === undefined);
  const paced = runs.filter((r) => r.kind === 'paced' || r.overallRate !== undefined);
  return Math.ceil(fastestRps * 1.5 * runSeconds(closed) + rate * 1.2 * runSeconds(paced)) + 1000;
}

export async function ingestSection(config: BenchConfig): Promise<SectionResult> {
  const started = Date.now();
  const dir = benchDir('ingest');
  const evidence: string[] = [];
  const { rounds, warmupSec, durationSec, connections, rate, latencySec, burstSec } = config.ingest;

  const sims = await startSimulators({ rateLimitRps: 50 });
  const targets: Target[] = [];
  const results = new Map<Target['key'], { throughput: LoadRunResult[]; latency: LoadRunResult[]; burst?: LoadRunResult }>();
  const commitStats = new Map<Target['key'], { commits: number; webhooks: number }>();
  try {
    // Started together (start-up is not measured); pushed in the order they are loaded.
    const launched = await Promise.allSettled([startBare(dir), ...config.databases.map((kind) => startBridge(kind, sims, dir))]);
    for (const s of launched) if (s.status === 'fulfilled') targets.push(s.value);
    const failed = launched.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    let fastest = 3000;
    for (let round = 0; round < rounds; round++) {
      for (const target of targets) {
        const runs: LoadRun[] = [
          ...(warmupSec > 0 ? [{ kind: 'autocannon' as const, name: 'warmup', connections, durationSec: warmupSec }] : []),
          { kind: 'autocannon', name: 'throughput', connections, durationSec },
          { kind: 'paced', name: 'latency', rate, durationSec: latencySec },
          ...(burstSec > 0 && round === rounds - 1 ? [{ kind: 'autocannon' as const, name: 'burst', connections, durationSec: burstSec, overallRate: rate }] : []),
        ];
        const poolSize = target.unique ? poolFor(runs, fastest, rate) : 20_000;
        const r = await load(target, runs, poolSize, `${target.key}${round}${Date.now().toString(36)}`);
        if (target.key === 'bare') fastest = Math.max(fastest, r.get('throughput')!.rps);
        const entry = results.get(target.key) ?? { throughput: [], latency: [] };
        entry.throughput.push(r.get('throughput')!);
        entry.latency.push(r.get('latency')!);
        entry.burst ??= r.get('burst');
        results.set(target.key, entry);
      }
    }
    for (const target of targets) if (target.key !== 'bare') commitStats.set(target.key, await readCommits(target.url));
  } finally {
    for (const t of targets) await t.stop().catch(() => undefined);
  }

  const pooled = new Map<Target['key'], Pooled>();
  for (const [key, r] of results) {
    const ok = r.throughput.reduce((s, x) => s + x.ok2xx, 0);
    const secs = r.throughput.reduce((s, x) => s + x.durationSec, 0);
    pooled.set(key, {
      rounds: r.throughput,
      rps: ok / secs,
      latency: summarize(r.latency.flatMap((x) => x.samples ?? [])),
      maxSendLagMs: Math.max(...r.latency.map((x) => x.maxSendLagMs ?? 0)),
      burst: r.burst,
    });
  }
  const bare = pooled.get('bare')!;

  const [sample] = signedOrderWebhooks(1, { secret: DEFAULT_PARTNER_WEBHOOK_SECRET, prefix: 'sqlite0000000' });
  const facts: string[] = [
    `Load generator: its own process (bench/load.ts), started anew for each server and round. Each round, for each server in turn: ${warmupSec > 0 ? `${warmupSec} s warm-up (discarded), ` : ''}${durationSec} s closed loop with autocannon (${connections} connections) for throughput, then ${latencySec} s open loop at a fixed ${rate} requests/s (one request every ${(1000 / rate).toFixed(1)} ms whatever the answers; node:http, keep-alive) for latency, timed from the request's write to the full answer. ${rounds} rounds, interleaved (bare, SQLite${config.databases.includes('postgres') ? ', PostgreSQL' : ''}, bare, …); figures pool the rounds.${burstSec > 0 ? ` The last round adds ${burstSec} s of autocannon's own overallRate ${rate} (each connection sends its share of every second back to back), reported below.` : ''}`,
    `Requests: distinct order.created webhooks (${Buffer.byteLength(sample!.body)}-byte body), each with its own webhook-id, order and user, signed (Standard Webhooks) before the run; the baseline gets the same kind of bytes.`,
    'Servers: `node --import tsx src/main.ts --no-worker` (LOG_LEVEL info, its log to a file) on a fresh database; baseline `node --import tsx bench/servers/bare-express.ts` (express.json(), then 202 with the same JSON answer).',
  ];
  const describe = (label: string, p: Pooled) => {
    const perRound = p.rounds.map((r) => r.rps.toFixed(0)).join(', ');
    const b = p.burst?.latency;
    return `${label}: ${perRound} req/s in the rounds (pooled ${p.rps.toFixed(0)}); at ${rate}/s p50 ${p.latency.p50.toFixed(2)} ms, p90 ${p.latency.p90.toFixed(2)} ms, p99 ${p.latency.p99.toFixed(2)} ms, max ${p.latency.max.toFixed(1)} ms over ${p.latency.count.toLocaleString('en-US')} requests (the sender ran up to ${p.maxSendLagMs.toFixed(1)} ms late)${b ? `; with autocannon's overallRate: p50 ${b.p50.toFixed(2)} ms, p99 ${b.p99.toFixed(2)} ms` : ''}.`;
  };
  facts.push(describe('Baseline', bare));

  const figures: Figure[] = [];
  for (const kind of config.databases) {
    const m = pooled.get(kind)!;
    const label = kind === 'sqlite' ? 'SQLite' : 'PostgreSQL';
    const ratio = m.rps / bare.rps;
    const p99Met = m.latency.p99 < 10;
    figures.push(
      figure({
        id: kind === 'sqlite' ? '1a' : '1b',
        title: `Webhook ingest throughput, ${label}`,
        measured: { value: m.rps, unit: 'req/s' },
        baseline: { value: bare.rps, unit: 'req/s', label: 'bare express' },
        goal: kind === 'sqlite' ? { text: 'ratio ≥ 0.5', met: ratio >= 0.5 } : { text: 'ratio ≥ 0.35', met: ratio >= 0.35 },
      }),
      figure({
        id: kind === 'sqlite' ? '1c' : '1e',
        title: `Ack latency p50 at ${rate} req/s, ${label}`,
        measured: { value: m.latency.p50, unit: 'ms' },
        baseline: { value: bare.latency.p50, unit: 'ms', label: 'bare express' },
        goal: { text: 'report', met: null },
      }),
      figure({
        id: kind === 'sqlite' ? '1d' : '1f',
        title: `Ack latency p99 at ${rate} req/s, ${label}`,
        measured: { value: m.latency.p99, unit: 'ms' },
        baseline: { value: bare.latency.p99, unit: 'ms', label: 'bare express' },
        goal: { text: 'p99 < 10 ms', met: p99Met },
      }),
    );
    facts.push(describe(`Bridge on ${label}`, m));
    const c = commitStats.get(kind);
    if (c && c.commits > 0) {
      facts.push(
        `Group commit on ${label}: ${c.webhooks.toLocaleString('en-US')} webhooks over all its runs in ${c.commits.toLocaleString('en-US')} transactions, ${(c.webhooks / c.commits).toFixed(1)} per commit on average (amobridge_webhooks_per_commit).`,
      );
    }
    if (config.evidenceOnMiss && ((kind === 'sqlite' && ratio < 0.5) || !p99Met)) {
      evidence.push(await profileBridge(kind, config, sims, dir, bare.rps, label));
    }
  }
  if (config.databases.includes('sqlite')) facts.push(await sqliteSyncFact(dir, config.quick ? 200 : 2000));
  await sims.close();
  return { name: 'Partner webhook ingest', seconds: (Date.now() - started) / 1000, figures, facts, evidence };
}

/**
 * What SQLite's synchronous setting costs the accept path: the same webhooks written by
 * the bridge's acceptor in this process, one per transaction and eight per transaction,
 * with synchronous=NORMAL (the bridge's) and FULL, on a file in the bench's folder. With
 * better-sqlite3 the commit, and FULL's fsync, block the event loop.
 */
async function sqliteSyncFact(dir: string, count: number): Promise<string> {
  const perWebhookUs = new Map<string, number>();
  const framesPerCommit = new Map<number, number>();
  for (const mode of ['NORMAL', 'FULL'] as const) {
    for (const group of [1, 8]) {
      const db = connect(`sqlite:${path.join(dir, `sync-${mode}-${group}.db`)}`);
      try {
        await migrate(db);
        db.sqlite!.pragma(`synchronous = ${mode}`);
        // No automatic checkpoint during the measurement, so that the WAL counts every page written.
        db.sqlite!.pragma('wal_autocheckpoint = 0');
        const acceptor = createPartnerAcceptor(db);
        const webhooks = signedOrderWebhooks(count, { secret: DEFAULT_PARTNER_WEBHOOK_SECRET, prefix: `sync${mode}${group}` });
        const input = (i: number) => {
          const w = webhooks[i]!;
          return { webhookId: w.headers['webhook-id']!, rawBody: w.body, event: JSON.parse(w.body) as Parameters<typeof acceptor.accept>[0]['event'] };
        };
        const started = performance.now();
        for (let i = 0; i < count; i += group) await Promise.all(Array.from({ length: group }, (_, j) => acceptor.accept(input(i + j))));
        perWebhookUs.set(`${mode}/${group}`, ((performance.now() - started) * 1000) / count);
        const [wal] = db.sqlite!.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
        framesPerCommit.set(group, (wal?.log ?? 0) / (count / group));
      } finally {
        await db.close();
      }
    }
  }
  const pageSize = 4096; // SQLite's default, which the bridge keeps
  const us = (key: string) => `${perWebhookUs.get(key)!.toFixed(0)} µs`;
  return `SQLite durability: the bridge runs SQLite with journal_mode=WAL and synchronous=NORMAL (src/db/connect.ts). A commit is then written to the WAL but not fsynced: an acknowledged webhook survives the process being killed (SIGKILL: test/crash-recovery.test.ts, test/group-commit.test.ts), and on power loss or an operating-system crash the transactions committed since the last WAL sync can be lost (never corrupted); Company 1 does not resend a webhook it saw acknowledged, and the partner sweep (PARTNER_SWEEP_INTERVAL) takes in any order the bridge does not know. synchronous=FULL would fsync the WAL at every commit. Measured here (${count.toLocaleString('en-US')} webhooks through the bridge's acceptor in the bench process, wall time per webhook): NORMAL ${us('NORMAL/1')} one per transaction, ${us('NORMAL/8')} eight per transaction; FULL ${us('FULL/1')} and ${us('FULL/8')} (no automatic checkpoint meanwhile). Each transaction appends every page it changed (in the four tables and their indexes) to the WAL: ${framesPerCommit.get(1)!.toFixed(1)} pages of ${pageSize} bytes for a webhook alone, ${framesPerCommit.get(8)!.toFixed(1)} for a group of eight. FULL's fsync blocks the event loop (better-sqlite3 is synchronous); group commit shares it among the webhooks of a group, but a webhook that arrives alone (the paced 500/s run) pays it whole, which is why NORMAL stays.`;
}

/** The bridge's own count of its accept transactions and the webhooks they wrote (its /metrics). */
async function readCommits(url: string): Promise<{ commits: number; webhooks: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { commits: value('amobridge_webhooks_per_commit_count'), webhooks: value('amobridge_webhooks_per_commit_sum') };
}

/** A profiled bridge (node --cpu-prof) under the closed-loop load; the summary covers that run only. */
async function profileBridge(kind: DatabaseKind, config: BenchConfig, sims: Simulators, dir: string, bareRps: number, label: string): Promise<string> {
  const profileDir = path.join(dir, `${kind}-cpuprof`);
  mkdirSync(profileDir, { recursive: true });
  const { connections, rate } = config.ingest;
  const runs: LoadRun[] = [
    { kind: 'autocannon', name: 'warmup', connections, durationSec: 2 },
    { kind: 'autocannon', name: 'throughput', connections, durationSec: 6 },
  ];
  const target = await startBridge(kind, sims, dir, ['--cpu-prof', `--cpu-prof-dir=${profileDir}`]);
  let result: LoadRunResult;
  let stoppedAt: number;
  try {
    result = (await load(target, runs, poolFor(runs, bareRps, rate), `prof${kind}${Date.now().toString(36)}`)).get('throughput')!;
  } finally {
    stoppedAt = Date.now();
    await target.stop();
  }
  const file = latestProfile(profileDir);
  if (!file) return `Ingest on ${label}: no CPU profile was written.`;
  const summary = summarizeProfile(file, { top: 15, window: { fromEndMs: stoppedAt - result.startedAt, toEndMs: stoppedAt - result.finishedAt } });
  const cpuPerRequestMs = (summary.busyShare * summary.durationMs) / result.ok2xx;
  return profileMarkdown(
    summary,
    `CPU profile of the bridge on ${label} during a ${result.durationSec.toFixed(0)} s closed-loop run at ${result.rps.toFixed(0)} req/s (node --cpu-prof, main thread, that run's samples only; ${file}). Main-thread CPU per accepted webhook: ${cpuPerRequestMs.toFixed(2)} ms (the profiler adds some), so ${rate} webhooks/s keep it about ${Math.min(100, (cpuPerRequestMs * rate) / 10).toFixed(0)}% busy`,
    { name: 'webhook', cpuMs: cpuPerRequestMs },
  );
}
