import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

/**
 * The amoCRM request budget (DESIGN.md, "Stay under amoCRM's limit"): never more than
 * `rps` requests may *start* in any one-second window. Every HTTP exchange with amoCRM,
 * token requests and retries included, calls `acquire()` immediately before it starts.
 *
 * Both implementations keep a sliding log of start times rather than counting per
 * calendar second (a fixed window lets 2N through across a boundary), and stretch the
 * window by a safety margin: requests leave here a little unevenly (event loop, DB
 * round trip) and reach amoCRM after varying network delays, so two starts exactly one
 * second apart here may arrive closer together there.
 */
export interface RateLimiter {
  acquire(): Promise<void>;
}

export interface RateLimiterOptions {
  /** Requests per second (AMO_RATE_LIMIT_RPS). Fractions below 1 mean one per 1/rps s. */
  rps: number;
  /** Added to the window to absorb jitter; default 100 ms (memory) / 150 ms (PostgreSQL). */
  marginMs?: number;
}

interface Budget {
  /** Starts allowed per window. */
  limit: number;
  /** Window plus margin, in ms: the N+1-th start waits this long after the first. */
  spanMs: number;
}

function budgetOf(options: RateLimiterOptions, defaultMarginMs: number): Budget {
  const { rps } = options;
  if (!Number.isFinite(rps) || rps <= 0) throw new RangeError(`rate limit must be positive, got ${rps}`);
  const marginMs = options.marginMs ?? defaultMarginMs;
  if (!(marginMs >= 0)) throw new RangeError(`rate limit margin must be >= 0, got ${marginMs}`);
  // 7.5 rps is treated as 7 per second (never above the configured rate); 0.5 as 1 per 2 s.
  const limit = rps >= 1 ? Math.floor(rps) : 1;
  const windowMs = rps >= 1 ? 1000 : 1000 / rps;
  return { limit, spanMs: windowMs + marginMs };
}

/** Runs async sections one after another (a promise-chain mutex). */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * One process's budget, in memory (the embedded SQLite deployment runs one instance).
 * Monotonic clock, so wall-clock jumps cannot open the gate.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly budget: Budget;
  /** Start times (performance.now()) of the last `limit` requests, oldest first. */
  private readonly starts: number[] = [];
  private readonly serial = new Serial();

  constructor(options: RateLimiterOptions) {
    this.budget = budgetOf(options, 100);
  }

  acquire(): Promise<void> {
    return this.serial.run(() => this.take());
  }

  private async take(): Promise<void> {
    const { limit, spanMs } = this.budget;
    for (;;) {
      const now = performance.now();
      while (this.starts.length > 0 && this.starts[0] <= now - spanMs) this.starts.shift();
      if (this.starts.length < limit) {
        this.starts.push(now);
        return;
      }
      // Timers may fire a hair early: the loop checks again rather than trusting them.
      await sleep(Math.max(1, Math.ceil(this.starts[0] + spanMs - now)));
    }
  }
}

/** First key of the two-int advisory lock that guards a bucket of rate_slots. */
const RATE_LOCK_NAMESPACE = 0x616d6f31; // 'amo1'

/**
 * A budget shared by every instance that uses the same PostgreSQL database (and schema):
 * start times live in `rate_slots`, stamped with the database clock (instances' clocks
 * may disagree; the database's is the one they share), and a transaction-scoped advisory
 * lock makes "count the recent starts, then take a slot" atomic across instances. The lock
 * is held for three short statements, never while waiting or while a request runs.
 */
export class PostgresRateLimiter implements RateLimiter {
  private readonly budget: Budget;
  private readonly serial = new Serial();
  private readonly bucket: string;
  private takes = 0;

  constructor(
    private readonly db: Db,
    options: RateLimiterOptions & { bucket?: string },
  ) {
    if (db.dialect !== 'postgres') throw new Error('PostgresRateLimiter needs a PostgreSQL database');
    this.budget = budgetOf(options, 150);
    this.bucket = options.bucket ?? 'amocrm';
  }

  /** Local callers queue here first, so one process polls the table with one query at a time. */
  acquire(): Promise<void> {
    return this.serial.run(() => this.take());
  }

  private async take(): Promise<void> {
    for (;;) {
      const waitMs = await this.tryTake();
      if (waitMs <= 0) return;
      await sleep(Math.max(1, Math.ceil(waitMs)));
    }
  }

  /** Takes a slot and answers 0, or answers how long to wait before asking again. */
  private tryTake(): Promise<number> {
    const { limit, spanMs } = this.budget;
    const bucket = this.bucket;
    const prune = this.takes++ % 50 === 0;
    return this.db.kysely.transaction().execute(async (trx) => {
      // Keyed by schema too: deployments (and tests) that share a database but not a
      // schema have separate budgets, exactly as they have separate rate_slots tables.
      await sql`select pg_advisory_xact_lock(${RATE_LOCK_NAMESPACE}, hashtext(current_schema() || ':' || ${bucket}))`.execute(trx);
      // clock_timestamp(), not now(): now() is frozen at the start of the transaction,
      // which may be long before the lock was granted.
      const clock = await sql<{ now: number }>`select (extract(epoch from clock_timestamp()) * 1000)::bigint as now`.execute(trx);
      const now = Number(clock.rows[0].now);
      const recent = await trx
        .selectFrom('rate_slots')
        .select('at')
        .where('bucket', '=', bucket)
        .where('at', '>', now - spanMs)
        .orderBy('at', 'desc')
        .limit(limit)
        .execute();
      if (recent.length < limit) {
        await trx.insertInto('rate_slots').values({ bucket, at: now }).execute();
        if (prune) {
          await trx.deleteFrom('rate_slots').where('bucket', '=', bucket).where('at', '<', now - 60_000).execute();
        }
        return 0;
      }
      const oldest = Number(recent[recent.length - 1].at);
      return oldest + spanMs - now;
    });
  }
}

const shared = new WeakMap<Db, Map<string, RateLimiter>>();

/**
 * The limiter for a database: in memory on SQLite (one process), in the database on
 * PostgreSQL (every instance). One per database and rate within a process, so every
 * AmoClient of the process draws on the same budget.
 */
export function createRateLimiter(db: Db, options: RateLimiterOptions): RateLimiter {
  const key = `${options.rps}:${options.marginMs ?? ''}`;
  let byKey = shared.get(db);
  if (!byKey) {
    byKey = new Map();
    shared.set(db, byKey);
  }
  let limiter = byKey.get(key);
  if (!limiter) {
    limiter = db.dialect === 'postgres' ? new PostgresRateLimiter(db, options) : new MemoryRateLimiter(options);
    byKey.set(key, limiter);
  }
  return limiter;
}
