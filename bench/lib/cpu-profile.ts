import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and answers where the time went: the functions
 * with the most self time, and the share of samples spent inside (inclusive) each
 * package or product file — the evidence behind a missed goal.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  /** Wall time covered, ms. */
  durationMs: number;
  /** Share of samples the process was busy (not idle). */
  busyShare: number;
  /** Top self time, as a share of busy samples. */
  selfTop: Array<{ name: string; share: number }>;
  /**
   * Self time by owner, with native code and Node internals charged to the package or
   * product file that called them: the shares add up to 100% of busy samples.
   */
  chargedByOwner: Array<{ owner: string; share: number }>;
  /** Inclusive time in each product file (src/…), as a share of busy samples. */
  inclusiveProduct: Array<{ owner: string; share: number }>;
}

/** Only the samples between these two instants, counted back from the profile's end (ms). */
export interface ProfileWindow {
  fromEndMs: number;
  toEndMs: number;
}

const INTERNAL = new Set(['node internals', '(native)']);

/**
 * The main thread's profile in `dir` (node names them CPU.<date>.<time>.<pid>.<thread>.<seq>;
 * thread 0 is the main one, others are workers such as tsx's module loader).
 */
export function latestProfile(dir: string): string | undefined {
  const files = readdirSync(dir)
    .filter((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f))
    .sort();
  return files.length ? path.join(dir, files[files.length - 1]!) : undefined;
}

/** Who a frame belongs to: an npm package, a product file (src/…), node internals, or V8. */
export function ownerOf(frame: CallFrame): string {
  const url = frame.url;
  if (!url) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node internals';
  const src = /\/(src|bench)\/(.+)$/.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  return url;
}

export function summarizeProfile(file: string, options: { top?: number; window?: ProfileWindow } = {}): ProfileSummary {
  const top = options.top ?? 12;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const from = options.window ? profile.endTime - options.window.fromEndMs * 1000 : Number.NEGATIVE_INFINITY;
  const to = options.window ? profile.endTime - options.window.toEndMs * 1000 : Number.POSITIVE_INFINITY;

  const selfCount = new Map<string, number>();
  const charged = new Map<string, number>();
  const product = new Map<string, number>();
  const add = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  let busy = 0;
  let all = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    all++;
    const id = profile.samples[i]!;
    const node = byId.get(id);
    if (!node) continue;
    const name = node.callFrame.functionName;
    if (name === '(idle)') continue;
    busy++;
    add(selfCount, `${name || '(anonymous)'} ${shortUrl(node.callFrame)}`.trim());
    const owners: string[] = [];
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const frame = byId.get(n)?.callFrame;
      if (frame && frame.functionName !== '(root)') owners.push(ownerOf(frame));
    }
    add(charged, owners.find((o) => !INTERNAL.has(o)) ?? owners[0] ?? '(unknown)');
    // Inclusive: each product file once per sample, however deep it recurs.
    for (const o of new Set(owners)) if (o.startsWith('src/')) add(product, o);
  }
  const share = (count: number) => (busy ? count / busy : 0);
  const ranked = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, top).map(([owner, c]) => ({ owner, share: share(c) }));
  return {
    file,
    durationMs: options.window ? options.window.fromEndMs - options.window.toEndMs : (profile.endTime - profile.startTime) / 1000,
    busyShare: all ? busy / all : 0,
    selfTop: [...selfCount].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, c]) => ({ name, share: share(c) })),
    chargedByOwner: ranked(charged),
    inclusiveProduct: ranked(product),
  };
}

function shortUrl(frame: CallFrame): string {
  if (!frame.url) return '';
  const nm = /node_modules\/(.+)$/.exec(frame.url);
  const src = /\/((?:src|bench)\/.+)$/.exec(frame.url);
  const where = nm ? nm[1]! : src ? src[1]! : frame.url.replace(/^file:\/\//, '');
  return `(${where}:${frame.lineNumber + 1})`;
}

/** `unit`: when given, each share is also shown as CPU time per unit of work (e.g. per webhook). */
export function profileMarkdown(summary: ProfileSummary, title: string, unit?: { name: string; cpuMs: number }): string {
  const share = (x: number) => `${(x * 100).toFixed(1)}%`;
  const pct = (x: number) => `${share(x)}${unit ? ` (${Math.round(x * unit.cpuMs * 1000)} µs per ${unit.name})` : ''}`;
  return [
    `${title} — ${(summary.durationMs / 1000).toFixed(1)} s profiled, busy ${share(summary.busyShare)} of samples.`,
    '',
    'Busy time by owner (native code and Node internals charged to the package or file that called them):',
    '',
    ...summary.chargedByOwner.map((o) => `- ${o.owner}: ${pct(o.share)}`),
    '',
    'Inclusive busy time in product code:',
    '',
    ...summary.inclusiveProduct.map((o) => `- ${o.owner}: ${pct(o.share)}`),
    '',
    'Top self time:',
    '',
    ...summary.selfTop.map((s) => `- ${pct(s.share)} ${s.name}`),
  ].join('\n');
}
