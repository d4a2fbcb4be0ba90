import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * Benchmarks are not tests (`npm test` does not run them), but the harness must not rot:
 * one quick run (`bench/main.ts --quick`, small counts, every section) must produce every
 * figure of the benchmark issue with finite numbers, into a temp file, not docs/.
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

const run = promisify(execFile);

describe('benchmark harness', () => {
  it('produces every figure in a quick run', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'amobridge-bench-smoke-'));
    const out = path.join(dir, 'benchmarks.md');
    const json = path.join(dir, 'benchmarks.json');
    await run(process.execPath, ['--import', 'tsx', 'bench/main.ts', '--quick', '--out', out, '--json', json], {
      timeout: 150_000,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, BENCH_KEEP_SCHEMAS: '1' },
    }).catch((error: unknown) => {
      const e = error as { stdout?: string; stderr?: string };
      throw new Error(`bench failed:\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
    });

    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    expect(report.failures).toEqual([]);
    expect(report.config.quick).toBe(true);
    expect(report.machine.cores).toBeGreaterThan(0);

    const expected = ['1a', '1c', '1d', '2a', '2b', '2c', '3a', '3b', '4a', '5a'];
    if (report.config.databases.includes('postgres')) expected.push('1b', '1e', '1f', '4b', '4c', '5b');
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
  }, 180_000);
});
