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
 */

const GOAL = 0.8;

async function run(kind: DatabaseKind, args: Omit<QueueArgs, 'url' | 'schema'>, nodeArgs?: string[]): Promise<QueueRunResult> {
  const db = await freshDatabase(kind, `queue_${args.backlog}`);
  try {
    return await runChild<QueueRunResult>('bench/queue-child.ts', { ...args, url: db.baseUrl, schema: db.schema }, {
      // Filling 100,000 rows and the lease probes come on top of the processing bound.
      timeoutMs: args.timeLimitMs * args.rounds + 180_000,
      nodeArgs,
    });
  } finally {
    await db.drop();
  }
}

const n = (v: number) => v.toLocaleString('en-US');

export async function queueSection(config: BenchConfig): Promise<SectionResult> {
  const started = Date.now();
  const { small, large, timeLimitSec } = config.queue;
  const timeLimitMs = timeLimitSec * 1000;
  const figures: Figure[] = [];
  const facts: string[] = [
    `Worker as the bridge runs it (batch 50, 2 loops, one completeJob per job), no-op handler of a kind of its own; jobs of distinct keys bulk-inserted into a fresh database (no finished jobs in the table). Small backlog: ${small.rounds} × ${n(small.backlog)} jobs inserted, each time all processed; large: ${n(large.backlog)} inserted, ${n(large.process)} processed. Each measurement is bounded to ${timeLimitSec} s. The time of one lease statement is the mean of 10, each in a transaction rolled back.`,
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
  for (const v of variants) {
    const smallRun = await run(v.kind, { backlog: small.backlog, rounds: small.rounds, timeLimitMs, analyze: v.analyze });
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
      `${v.label}: ${n(smallRun.processed)} jobs in ${smallRun.seconds.toFixed(2)} s with ${n(small.backlog)} waiting; ${n(largeRun.processed)} in ${largeRun.seconds.toFixed(2)} s with ${n(large.backlog)} waiting${largeRun.bounded ? ' (stopped by the time bound)' : ''} (filling took ${(largeRun.insertMs / 1000).toFixed(1)} s). One lease statement (limit 50): ${smallRun.leaseMs.toFixed(2)} ms with the small backlog, ${largeRun.leaseMs.toFixed(2)} ms with the large one.`,
    );
    if (ratio < GOAL && config.evidenceOnMiss) {
      evidence.push(
        [
          `Queue, ${v.label}: the lease statement as leaseJobs sends it (${n(small.backlog)} waiting: ${smallRun.leaseMs.toFixed(2)} ms; ${n(large.backlog)} waiting: ${largeRun.leaseMs.toFixed(2)} ms per statement):`,
          '',
          '```sql',
          largeRun.leaseSql,
          '```',
          '',
          `Its plan with ${n(large.backlog)} waiting${v.kind === 'postgres' ? ' (EXPLAIN ANALYZE, BUFFERS)' : ' (EXPLAIN QUERY PLAN)'}:`,
          '',
          '```',
          largeRun.plan,
          '```',
          '',
          `With ${n(small.backlog)} waiting:`,
          '',
          '```',
          smallRun.plan,
          '```',
        ].join('\n'),
      );
      const dir = path.join(benchDir('queue'), 'cpuprof');
      mkdirSync(dir, { recursive: true });
      const profiled = await run(
        v.kind,
        { backlog: large.backlog, rounds: 1, process: Math.min(large.process, 2000), timeLimitMs: 20_000, analyze: v.analyze },
        ['--cpu-prof', `--cpu-prof-dir=${dir}`],
      );
      const file = latestProfile(dir);
      if (file) {
        const summary = summarizeProfile(file, {
          top: 10,
          window: { fromEndMs: profiled.exitAt - profiled.processStartedAt, toEndMs: profiled.exitAt - profiled.processFinishedAt },
        });
        evidence.push(
          profileMarkdown(
            summary,
            `CPU profile of the worker process, ${v.label}, ${n(large.backlog)} waiting, while it processed ${n(profiled.processed)} jobs at ${profiled.rate.toFixed(0)} jobs/s (node --cpu-prof, main thread, processing only; ${file})`,
          ),
        );
      }
    }
  }
  return { name: 'Queue scaling', seconds: (Date.now() - started) / 1000, figures, facts, evidence };
}
