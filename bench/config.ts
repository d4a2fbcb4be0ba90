import type { DatabaseKind } from './lib/databases.js';

/** Every count and duration of a run: the full benchmark, or the quick smoke run. */
export interface BenchConfig {
  quick: boolean;
  databases: DatabaseKind[];
  sections: SectionName[];
  ingest: {
    /** Interleaved rounds over all servers. */
    rounds: number;
    /** Discarded run first, so both servers are measured warm. */
    warmupSec: number;
    durationSec: number;
    connections: number;
    /** The fixed-rate latency run (open loop, evenly paced). */
    rate: number;
    latencySec: number;
    /** The same rate with autocannon's own pacing (per-second bursts); 0 skips it. */
    burstSec: number;
  };
  amo: {
    /** Orders per burst; also the number of stage events. */
    orders: number;
    /** amoCRM's limit; the simulator and AMO_RATE_LIMIT_RPS are both set to limit × factor. */
    limitRps: number;
    rateFactor: number;
    /** Orders the naive client places for the baseline (its counts are per order). */
    naiveOrders: number;
    /** Figure 2d: new-user orders placed while a share of amoCRM's answers fail. */
    faultOrders: number;
    faultRate: number;
  };
  queue: {
    small: { backlog: number; rounds: number };
    large: { backlog: number; process: number };
    /** Finished jobs in the table for figure 4d (the small backlog then runs beside them). */
    finished: number;
    /** Bound of one processing measurement. */
    timeLimitSec: number;
  };
  memory: { events: number; settleMs: number };
  /** Gather profiles / query plans when a goal is missed. */
  evidenceOnMiss: boolean;
}

export const SECTIONS = ['ingest', 'amo', 'queue', 'memory'] as const;
export type SectionName = (typeof SECTIONS)[number];

export function benchConfig(options: { quick: boolean; rateFactor?: number; databases: DatabaseKind[]; sections: SectionName[]; evidence?: boolean }): BenchConfig {
  const { quick } = options;
  return {
    quick,
    databases: options.databases,
    sections: options.sections,
    ingest: quick
      ? { rounds: 1, warmupSec: 0, durationSec: 1, connections: 10, rate: 500, latencySec: 1, burstSec: 0 }
      : { rounds: 2, warmupSec: 2, durationSec: 5, connections: 10, rate: 500, latencySec: 5, burstSec: 5 },
    amo: quick
      ? { orders: 20, limitRps: 7, rateFactor: options.rateFactor ?? 3, naiveOrders: 10, faultOrders: 20, faultRate: 0.2 }
      : { orders: 500, limitRps: 7, rateFactor: options.rateFactor ?? 1, naiveOrders: 50, faultOrders: 200, faultRate: 0.2 },
    queue: quick
      ? { small: { backlog: 100, rounds: 1 }, large: { backlog: 2_000, process: 200 }, finished: 20_000, timeLimitSec: 20 }
      : { small: { backlog: 1_000, rounds: 5 }, large: { backlog: 100_000, process: 5_000 }, finished: 1_000_000, timeLimitSec: 60 },
    memory: quick ? { events: 300, settleMs: 100 } : { events: 10_000, settleMs: 1000 },
    evidenceOnMiss: options.evidence ?? !quick,
  };
}
