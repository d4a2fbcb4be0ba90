/**
 * What every section hands back: figures (one table row each), the facts behind them,
 * and, for a missed goal, the evidence of what limits it.
 */

export interface Quantity {
  value: number;
  unit: string;
}

export interface Figure {
  /** Issue numbering: "1a", "2b", … */
  id: string;
  title: string;
  measured: Quantity;
  baseline: Quantity & { label: string };
  /** measured ÷ baseline. */
  ratio: number;
  goal: { text: string; met: boolean | null };
}

export interface SectionResult {
  name: string;
  seconds: number;
  figures: Figure[];
  /** Conditions of the measurement (counts, durations, settings). */
  facts: string[];
  /** Evidence gathered because a goal was missed (profiles, query plans). Markdown. */
  evidence: string[];
}

export function figure(input: Omit<Figure, 'ratio'> & { ratio?: number }): Figure {
  return { ...input, ratio: input.ratio ?? input.measured.value / input.baseline.value };
}

export function fmt(value: number, unit = ''): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 1 : abs >= 10 ? 2 : abs >= 1 ? 2 : 3;
  const text = value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit ? `${text} ${unit}` : text;
}

export function metText(met: boolean | null): string {
  return met === null ? 'reported' : met ? 'yes' : '**NO**';
}

export function tableRows(figures: Figure[]): string[][] {
  return figures.map((f) => [
    f.id,
    f.title,
    fmt(f.measured.value, f.measured.unit),
    `${fmt(f.baseline.value, f.baseline.unit)} (${f.baseline.label})`,
    fmt(f.ratio),
    f.goal.text,
    metText(f.goal.met),
  ]);
}

export const TABLE_HEAD = ['#', 'figure', 'measured', 'baseline', 'ratio', 'goal', 'met?'];

export function markdownTable(head: string[], rows: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [`| ${head.map(esc).join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
}

/** A plain-text table for the terminal. */
export function textTable(head: string[], rows: string[][]): string {
  const plain = rows.map((r) => r.map((c) => c.replace(/\*\*/g, '')));
  const widths = head.map((h, i) => Math.max(h.length, ...plain.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...plain.map(line)].join('\n');
}

/** Megabytes (2^20 bytes), as `ps` and /proc count them. */
export const MB_UNIT = 'MB';
