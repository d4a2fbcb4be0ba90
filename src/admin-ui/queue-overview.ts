import type { Job } from '../db/schema.js';
import type { QueueDepth, QueueState } from '../queue/depth.js';

/** The queue as the overview shows it: a row per job kind, totals, and the oldest waiting job. */
export interface QueueOverview {
  rows: Array<{ kind: string; counts: Record<QueueState, number> }>;
  totals: Record<QueueState, number>;
  oldest?: { id: number; kind: string; key: string; ageSeconds: number };
}

const zero = (): Record<QueueState, number> => ({ waiting: 0, running: 0, retrying: 0, dead: 0 });

/** Pure: readQueueDepth's samples as rows by kind, and the oldest waiting job's age at `now`. */
export function queueOverviewOf(depth: QueueDepth, oldest: Job | undefined, now: number): QueueOverview {
  const byKind = new Map<string, Record<QueueState, number>>();
  const totals = zero();
  for (const sample of depth.depth) {
    const counts = byKind.get(sample.kind) ?? zero();
    counts[sample.state] += sample.jobs;
    totals[sample.state] += sample.jobs;
    byKind.set(sample.kind, counts);
  }
  return {
    rows: [...byKind].map(([kind, counts]) => ({ kind, counts })),
    totals,
    oldest: oldest && { id: oldest.id, kind: oldest.kind, key: oldest.job_key, ageSeconds: Math.max(0, now - Number(oldest.run_at)) / 1000 },
  };
}
