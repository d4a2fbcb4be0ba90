import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { amoSection } from './amo-efficiency.js';
import { benchConfig, type BenchConfig, SECTIONS, type SectionName } from './config.js';
import { ingestSection } from './ingest.js';
import { type DatabaseKind, POSTGRES_URL, postgresAvailable } from './lib/databases.js';
import { markdownTable, type SectionResult, TABLE_HEAD, tableRows, textTable } from './lib/report.js';
import { memorySection } from './memory.js';
import { notesFor } from './notes.js';
import { queueSection } from './queue.js';

/**
 * `npm run bench`: measures every figure of the benchmark issue against a baseline taken
 * in the same run, prints the table and rewrites docs/benchmarks.md.
 *
 *   --quick            small counts (the smoke test; also BENCH_QUICK=1)
 *   --out <file>       where the report goes (default docs/benchmarks.md)
 *   --json <file>      also write the figures as JSON
 *   --only <a,b>       sections: ingest, amo, queue, memory
 *   --rate-factor <n>  raise amoCRM's 7 req/s (simulator and AMO_RATE_LIMIT_RPS alike) n times
 *   --no-postgres      SQLite only
 *   --no-evidence      do not profile missed goals
 */

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.BENCH_QUICK === '1' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
    json: { type: 'string' },
    only: { type: 'string' },
    'rate-factor': { type: 'string' },
    'no-postgres': { type: 'boolean', default: false },
    'no-evidence': { type: 'boolean', default: false },
  },
  allowPositionals: false,
});

interface RunReport {
  date: string;
  command: string;
  machine: Record<string, string | number>;
  seconds: number;
  config: BenchConfig;
  sections: SectionResult[];
  failures: Array<{ section: string; error: string }>;
}

const runners: Record<SectionName, (config: BenchConfig) => Promise<SectionResult>> = {
  ingest: ingestSection,
  amo: amoSection,
  queue: queueSection,
  memory: memorySection,
};

async function main(): Promise<void> {
  const started = Date.now();
  const sections = values.only ? (values.only.split(',').map((s) => s.trim()) as SectionName[]) : [...SECTIONS];
  for (const s of sections) if (!SECTIONS.includes(s)) throw new Error(`unknown section ${s}; one of ${SECTIONS.join(', ')}`);
  const rateFactor = values['rate-factor'] !== undefined ? Number(values['rate-factor']) : undefined;
  if (rateFactor !== undefined && !(rateFactor >= 1 && 7 * rateFactor <= 50)) throw new Error('--rate-factor must be between 1 and 7 (AMO_RATE_LIMIT_RPS ≤ 50)');

  const databases: DatabaseKind[] = ['sqlite'];
  let postgresVersion = 'not used';
  if (!values['no-postgres']) {
    if (await postgresAvailable()) {
      databases.push('postgres');
      postgresVersion = await serverVersion();
    } else {
      postgresVersion = `unreachable at ${POSTGRES_URL}: PostgreSQL figures skipped`;
    }
  }
  const config = benchConfig({ quick: values.quick ?? false, rateFactor, databases, sections, evidence: values['no-evidence'] ? false : undefined });

  const report: RunReport = {
    date: new Date().toISOString(),
    command: commandLine(),
    machine: machineFacts(postgresVersion),
    seconds: 0,
    config,
    sections: [],
    failures: [],
  };
  for (const name of sections) {
    const t = Date.now();
    process.stderr.write(`bench: ${name}…\n`);
    try {
      report.sections.push(await runners[name](config));
    } catch (error) {
      report.failures.push({ section: name, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
    process.stderr.write(`bench: ${name} done in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  }
  report.seconds = (Date.now() - started) / 1000;
  report.machine.loadAtEnd = os.loadavg().map((v) => v.toFixed(2)).join(' ');

  const rows = tableRows(report.sections.flatMap((s) => s.figures));
  process.stdout.write(`\n${textTable(TABLE_HEAD, rows)}\n\nTotal ${report.seconds.toFixed(1)} s on ${report.machine.cores} cores.\n`);
  for (const f of report.failures) process.stdout.write(`\nSECTION FAILED: ${f.section}\n${f.error}\n`);

  mkdirSync(path.dirname(path.resolve(values.out!)), { recursive: true });
  writeFileSync(values.out!, markdown(report));
  process.stdout.write(`Report written to ${values.out}\n`);
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
  if (report.failures.length > 0) process.exitCode = 1;
}

function commandLine(): string {
  const args = process.argv.slice(2);
  const quoted = args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${quoted ? ` -- ${quoted}` : ''}`;
  return `tsx bench/main.ts${quoted ? ` ${quoted}` : ''}`;
}

function machineFacts(postgresVersion: string): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    postgres: postgresVersion,
    loadAtStart: os.loadavg().map((v) => v.toFixed(2)).join(' '),
  };
}

async function serverVersion(): Promise<string> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const result = await client.query<{ server_version: string }>('show server_version');
    return `PostgreSQL ${result.rows[0]?.server_version ?? '?'} (${POSTGRES_URL.replace(/\/\/[^@]*@/, '//')})`;
  } finally {
    await client.end();
  }
}

/**
 * Whether other work competed for the machine when the run began: a 1-minute load average
 * above half the cores. (At the end the average holds the benchmark's own last minute.)
 */
function busy(report: RunReport): boolean {
  return Number(String(report.machine.loadAtStart).split(' ')[0]) > Number(report.machine.cores) / 2;
}

function markdown(report: RunReport): string {
  const figures = report.sections.flatMap((s) => s.figures);
  const missed = figures.filter((f) => f.goal.met === false);
  const m = report.machine;
  const out: string[] = [
    '# Benchmarks',
    '',
    '<!-- Generated by `npm run bench` (bench/main.ts); edits by hand are overwritten. -->',
    '',
    `- Date: ${report.date}`,
    `- Command: \`${report.command}\`${report.config.quick ? ' (quick mode: small counts, not a measurement)' : ''}`,
    `- Machine: ${m.cores} cores (${m.cpu}), ${m.memory} memory, ${m.os}`,
    `- Node.js: ${m.node}; database server: ${m.postgres}`,
    `- Load average (1, 5, 15 min) at start: ${m.loadAtStart}; at end: ${m.loadAtEnd} (the end includes the benchmark's own last minute)`,
    `- Run time: ${report.seconds.toFixed(1)} s (${report.sections.map((s) => `${s.name} ${s.seconds.toFixed(0)} s`).join(', ')})`,
    '',
    'Every ratio is measured ÷ baseline, both measured in this run on this machine, the same way.',
    '',
    ...(busy(report) ? ['> **The machine was busy during this run** (load average above half its cores when it began): the ratios still compare like with like, but the absolute figures, latencies above all, are not representative.', ''] : []),
    markdownTable(TABLE_HEAD, tableRows(figures)),
    '',
  ];
  if (report.failures.length > 0) {
    out.push('## Sections that failed', '');
    for (const f of report.failures) out.push(`### ${f.section}`, '', '```', f.error, '```', '');
  }
  out.push('## How each figure is measured', '');
  for (const s of report.sections) {
    out.push(`### ${s.name}`, '', ...s.facts.map((f) => `- ${f}`), '');
  }
  out.push('## Missed goals', '');
  if (missed.length === 0) out.push('None: every goal with a threshold is met in this run.', '');
  for (const f of missed) {
    out.push(`### ${f.id} ${f.title}`, '', ...notesFor(f.id).flatMap((paragraph) => [paragraph, '']));
  }
  const evidence = report.sections.flatMap((s) => s.evidence);
  if (evidence.length > 0) {
    out.push('## Evidence gathered in this run', '');
    for (const e of evidence) out.push(e, '');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

await main();
