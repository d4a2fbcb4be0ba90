import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { BenchConfig } from './config.js';
import { runChild } from './lib/child.js';
import { latestProfile, profileMarkdown, summarizeProfile } from './lib/cpu-profile.js';
import { benchDir, type DatabaseKind, freshDatabase } from './lib/databases.js';
import { figure, type Figure, type SectionResult } from './lib/report.js';
import type { QueueArgs, QueueRunResult } from './queue-child.js';

/**
 * Figure 4: queue scaling. Jobs per second through the real worker path (leaseJobs, a
 * no-op handler, completeJob) with a small backlog waiting and with a large one, each in
 * a fresh database and a process of its own; ratio = rate(large) ÷ rate(small).
 *
 * PostgreSQL is measured twice: right after the backlog formed, with the planner's
 * statistics as the bulk insert left them (what the bridge meets in the first minute of
 * a sudden backlog), and after ANALYZE (what autovacuum does within a minute). SQLite
 * keeps no statistics unless asked, so its one measurement is its steady state.
 *
 * Figure 4d: the small backlog again, in a table that already holds a million finished
 * jobs (a long-lived database before retention) ÷ the same in an empty table, on both
 * databases. On PostgreSQL the finished jobs are vacuumed and analyzed before anything
 * waits, so the planner believes the queue empty when the backlog arrives.
 */

const GOAL = 0.8;

async function run(kind: DatabaseKind, args: Omit<QueueArgs, 'url' | 'schema'>, nodeArgs?: string[]): Promise<QueueRunResult> {
  const db = await freshDatabase(kind, `queue_${args.backlog}`);
  try {
    return await runChild<QueueRunResult>('bench/queue-child.ts', { ...args, url: db.baseUrl, schema: db.schema }, {
      // Filling the rows and the lease probes come on top of the processing bound.
      timeoutMs: args.timeLimitMs * args.rounds + 180_000,
      nodeArgs,
    });
  } finally {
    await db.drop();
  }
}

const n = (v: number) => v.toLocaleString('en-US');

/** The statements of one lease and their plans, for the evidence of a missed goal. */
function planEvidence(title: string, kind: DatabaseKind, runs: Array<{ label: string; run: QueueRunResult }>): string {
  const [first] = runs;
  const out = [title, '', '```sql', ...(first?.run.leaseSql ?? []).map((s) => `${s};`), '```', ''];
  for (const { label, run } of runs) {
    out.push(`Their plans with ${label}${kind === 'postgres' ? ' (EXPLAIN ANALYZE, BUFFERS)' : ' (EXPLAIN QUERY PLAN)'}:`, '', '```', run.plans.join('\n\n'), '```', '');
  }
  return out.join('\n').trimEnd();
}

export async function queueSection(config: BenchConfig): Promise<SectionResult> {
  const started = Date.now();
  const { small, large, finished, timeLimitSec } = config.queue;
  const timeLimitMs = timeLimitSec * 1000;
  const figures: Figure[] = [];
  const facts: string[] = [
    `Worker as the bridge runs it (batch 50, 2 loops, one completeJob per job), no-op handler of a kind of its own; jobs of distinct keys bulk-inserted into a fresh database (no finished jobs in the table, except for 4d). Small backlog: ${small.rounds} × ${n(small.backlog)} jobs inserted, each time all processed; large: ${n(large.backlog)} inserted, ${n(large.process)} processed. Each measurement is bounded to ${timeLimitSec} s. The time of one lease (leaseJobs, limit 50: its statements together) is the mean of 10, each in a transaction rolled back.`,
  ];
  const evidence: string[] = [];
  const variants: Array<{ kind: DatabaseKind; analyze: boolean; id: string; label: string }> = [];
  for (const kind of config.databases) {
    if (kind === 'sqlite') variants.push({ kind, analyze: false, id: '4a', label: 'SQLite' });
    else {
      variants.push({ kind, analyze: true, id: '4b', label: 'PostgreSQL, statistics current' });
      variants.push({ kind, analyze: false, id: '4c', label: 'PostgreSQL, before autovacuum ANALYZE' });
    }
  }
  /** Each database's small run in an empty table without ANALYZE: the baseline of 4d. */
  const emptyTable = new Map<DatabaseKind, QueueRunResult>();
  for (const v of variants) {
    const smallRun = await run(v.kind, { backlog: small.backlog, rounds: small.rounds, timeLimitMs, analyze: v.analyze });
    if (!v.analyze) emptyTable.set(v.kind, smallRun);
    const largeRun = await run(v.kind, { backlog: large.backlog, rounds: 1, process: large.process, timeLimitMs, analyze: v.analyze });
    const ratio = largeRun.rate / smallRun.rate;
    figures.push(
      figure({
        id: v.id,
        title: `Queue: jobs/s with ${n(large.backlog)} waiting, ${v.label}`,
        measured: { value: largeRun.rate, unit: 'jobs/s' },
        baseline: { value: smallRun.rate, unit: 'jobs/s', label: `${n(small.backlog)} waiting` },
        goal: { text: `ratio ≥ ${GOAL}`, met: ratio >= GOAL },
      }),
    );
    facts.push(
      `${v.label}: ${n(smallRun.processed)} jobs in ${smallRun.seconds.toFixed(2)} s with ${n(small.backlog)} waiting; ${n(largeRun.processed)} in ${largeRun.seconds.toFixed(2)} s with ${n(large.backlog)} waiting${largeRun.bounded ? ' (stopped by the time bound)' : ''} (filling took ${(largeRun.insertMs / 1000).toFixed(1)} s). One lease (limit 50): ${smallRun.leaseMs.toFixed(2)} ms with the small backlog, ${largeRun.leaseMs.toFixed(2)} ms with the large one.`,
    );
    if (ratio < GOAL && config.evidenceOnMiss) {
      evidence.push(
        planEvidence(
          `Queue, ${v.label}: the statements of one lease as leaseJobs sends them (${n(small.backlog)} waiting: ${smallRun.leaseMs.toFixed(2)} ms; ${n(large.backlog)} waiting: ${largeRun.leaseMs.toFixed(2)} ms per lease):`,
          v.kind,
          [
            { label: `${n(large.backlog)} waiting`, run: largeRun },
            { label: `${n(small.backlog)} waiting`, run: smallRun },
          ],
        ),
      );
      evidence.push(await profileLarge(v, { backlog: large.backlog, process: large.process }));
    }
  }

  for (const kind of config.databases) {
    const empty = emptyTable.get(kind);
    if (!empty) continue;
    const label = kind === 'sqlite' ? 'SQLite' : 'PostgreSQL';
    const full = await run(kind, { backlog: small.backlog, rounds: small.rounds, timeLimitMs, finished });
    const ratio = full.rate / empty.rate;
    figures.push(
      figure({
        id: '4d',
        title: `Queue: jobs/s with ${n(finished)} finished jobs in the table, ${label}`,
        measured: { value: full.rate, unit: 'jobs/s' },
        baseline: { value: empty.rate, unit: 'jobs/s', label: 'empty table' },
        goal: { text: `ratio ≥ ${GOAL}`, met: ratio >= GOAL },
      }),
    );
    facts.push(
      `${label}, ${n(finished)} finished jobs in the table (inserted in ${(full.finishedMs / 1000).toFixed(1)} s${kind === 'postgres' ? ', VACUUM ANALYZE and CHECKPOINT included' : ', WAL checkpoint included'}): ${n(full.processed)} jobs in ${full.seconds.toFixed(2)} s, ${small.rounds} × ${n(small.backlog)} waiting, against ${n(empty.processed)} in ${empty.seconds.toFixed(2)} s in an empty table (the small run of ${kind === 'sqlite' ? '4a' : '4c'}). One lease (limit 50): ${full.leaseMs.toFixed(2)} ms, against ${empty.leaseMs.toFixed(2)} ms.`,
    );
    if (ratio < GOAL && config.evidenceOnMiss) {
      evidence.push(
        planEvidence(
          `Queue, ${label}, ${n(finished)} finished jobs in the table: the statements of one lease (${full.leaseMs.toFixed(2)} ms per lease; ${empty.leaseMs.toFixed(2)} ms in an empty table):`,
          kind,
          [
            { label: `${n(finished)} finished jobs and ${n(small.backlog)} waiting`, run: full },
            { label: `an empty table and ${n(small.backlog)} waiting`, run: empty },
          ],
        ),
      );
    }
  }
  return { name: 'Queue scaling', seconds: (Date.now() - started) / 1000, figures, facts, evidence };
}

/** A CPU profile of the worker while it works through the large backlog. */
async function profileLarge(v: { kind: DatabaseKind; analyze: boolean; label: string }, large: { backlog: number; process: number }): Promise<string> {
  const dir = path.join(benchDir('queue'), 'cpuprof');
  mkdirSync(dir, { recursive: true });
  const profiled = await run(
    v.kind,
    { backlog: large.backlog, rounds: 1, process: Math.min(large.process, 2000), timeLimitMs: 20_000, analyze: v.analyze },
    ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  );
  const file = latestProfile(dir);
  if (!file) return `No CPU profile was written for ${v.label}.`;
  const summary = summarizeProfile(file, {
    top: 10,
    window: { fromEndMs: profiled.exitAt - profiled.processStartedAt, toEndMs: profiled.exitAt - profiled.processFinishedAt },
  });
  return profileMarkdown(
    summary,
    `CPU profile of the worker process, ${v.label}, ${n(large.backlog)} waiting, while it processed ${n(profiled.processed)} jobs at ${profiled.rate.toFixed(0)} jobs/s (node --cpu-prof, main thread, processing only; ${file})`,
  );
}
