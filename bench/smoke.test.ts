import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runNode } from '../src/sandbox/processes.js';

/**
 * `npm run bench:smoke` (bench/vitest.config.ts), not part of `npm test`: a quick run takes
 * two to three minutes on a 2-core machine. Benchmarks are not tests, but the harness must
 * not rot: one quick run (`bench/main.ts --quick`, small counts, every section) must produce
 * every figure of the benchmark issue with finite numbers, into a temp file, not docs/.
 */

interface ReportFigure {
  id: string;
  measured: { value: number };
  baseline: { value: number };
  ratio: number;
  goal: { text: string; met: boolean | null };
}

interface Report {
  command: string;
  machine: { cores: number; node: string; cpu: string };
  config: { quick: boolean; databases: string[] };
  sections: Array<{ name: string; figures: ReportFigure[] }>;
  failures: Array<{ section: string; error: string }>;
}

describe('benchmark harness', () => {
  it('produces every figure in a quick run', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-bench-smoke-'));
    const out = path.join(dir, 'benchmarks.md');
    const json = path.join(dir, 'benchmarks.json');
    const run = await runNode(['--import', 'tsx', 'bench/main.ts', '--quick', '--out', out, '--json', json], {
      timeoutMs: 540_000,
    });
    if (run.code !== 0) throw new Error(`bench ${run.timedOut ? 'timed out' : `exited with ${run.code}`}:\n${run.stdout}\n${run.stderr}`);

    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    expect(report.failures).toEqual([]);
    expect(report.config.quick).toBe(true);
    expect(report.machine.cores).toBeGreaterThan(0);

    const expected = ['1a', '1c', '1d', '2a', '2b', '2c', '2d', '3a', '3b', '4a', '4d', '5a', '5b'];
    if (report.config.databases.includes('postgres')) expected.push('1b', '1e', '1f', '4b', '4c', '4d', '5a', '5b');
    const figures = report.sections.flatMap((s) => s.figures);
    expect(figures.map((f) => f.id).sort()).toEqual([...expected].sort());
    for (const f of figures) {
      expect(Number.isFinite(f.measured.value), `${f.id} measured`).toBe(true);
      expect(Number.isFinite(f.baseline.value), `${f.id} baseline`).toBe(true);
      expect(Number.isFinite(f.ratio), `${f.id} ratio`).toBe(true);
      expect(f.goal.text.length, `${f.id} goal`).toBeGreaterThan(0);
    }

    const markdown = readFileSync(out, 'utf8');
    expect(markdown).toContain('| # | figure | measured | baseline | ratio | goal | met? |');
    expect(markdown).toContain(report.machine.node);
    for (const id of expected) expect(markdown).toContain(`| ${id} |`);
  }, 600_000);
});
