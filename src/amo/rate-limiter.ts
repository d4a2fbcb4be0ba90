import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import type { Db } from '../db/connect.js';

/**
 * The amoCRM request budget (docs/architecture.md, "Be polite to amoCRM"): amoCRM must never
 * *see* more than `rps` requests in any one-second window. Every HTTP exchange with
 * amoCRM, token requests and retries included, takes a slot right before it starts and
 * hands it back (`release`) when it has ended — answered, failed or timed out.
 *
 * Why the end matters: amoCRM counts a request when it arrives, which is somewhere
 * between the moment we sent it and the moment its answer came back. Spacing *starts* one
 * second apart is not enough — a request delayed on the way (network, a busy gateway)
 * lands closer to the next one than it left, and a fixed safety margin only covers delays
 * shorter than itself. So a finished request keeps its slot for one window after its
 * answer arrived, and an unfinished one keeps it for as long as it runs. Then, for any
 * window amoCRM looks at, every request it counts there had either not finished or had
 * finished less than a window before the latest of them started; the limiter let at most
 * `rps` of those start. The guarantee holds whatever the latencies; the price is that a
 * slot is busy for (1 s + the request's latency).
 *
 * Both implementations add a small margin to the window, 15 ms by default. Latency needs
 * none (the argument above holds for any latency); the margin covers only what can make a
 * window measured here shorter than amoCRM's: timestamps rounded to the millisecond (the
 * database clock, amoCRM's log), a timer or a clock read a millisecond off, and a clock
 * rate that differs from amoCRM's by parts per million (microseconds per window). A few
 * milliseconds would do; 15 leaves several times that and costs 1.5% of the rate (each
 * group of `rps` requests spans 1015 ms plus a request's duration instead of 1000).
 */
export interface RateLimiter {
  /** Waits for a slot; call the returned function once the request has ended. */
  acquire(): Promise<RateSlotRelease>;
  /**
   * How long an acquire made now would wait for its slot (ms; 0 when one is free), from
   * the slots as they stand: reads only. Callers already queued in this process come
   * first, so each of them adds about one slot's share of a window.
   */
  currentWaitMs(): Promise<number>;
}

export type RateSlotRelease = () => void;

export interface RateLimiterOptions {
  /** Requests per second (AMO_RATE_LIMIT_RPS). Below 1: one request per 1/rps seconds. */
  rps: number;
  /** Added to the window; default 15 ms (see above why that is enough). */
  marginMs?: number;
  /**
   * Longest a request can run (the transport's timeout plus slack); a slot that was never
   * released (a crashed process) counts as finished this long after it was taken.
   * Default 60 s.
   */
  holdMs?: number;
}

/** The default margin: rounding and clock error, not latency (see the comment at the top). */
export const DEFAULT_MARGIN_MS = 15;

interface Budget {
  /** Slots per window. */
  limit: number;
  /** Window plus margin, in ms. */
  spanMs: number;
  holdMs: number;
}

function budgetOf(options: RateLimiterOptions): Budget {
  const { rps } = options;
  if (!Number.isFinite(rps) || rps <= 0) throw new RangeError(`rate limit must be positive, got ${rps}`);
  const marginMs = options.marginMs ?? DEFAULT_MARGIN_MS;
  if (!(marginMs >= 0)) throw new RangeError(`rate limit margin must be >= 0, got ${marginMs}`);
  const holdMs = options.holdMs ?? 60_000;
  if (!(holdMs > 0)) throw new RangeError(`rate limit hold must be > 0, got ${holdMs}`);
  // 7.5 rps is treated as 7 per second (never above the configured rate); 0.5 as 1 per 2 s.
  const limit = rps >= 1 ? Math.floor(rps) : 1;
  const windowMs = rps >= 1 ? 1000 : 1000 / rps;
  return { limit, spanMs: windowMs + marginMs, holdMs };
}

/**
 * How long until a slot may be free, given the busy slots' end times (`Infinity` for one
 * still running). A running request cannot free its slot sooner than a full window from
 * now, so nothing is polled: the wait is exact for finished slots, one window otherwise.
 */
function waitFor(ends: number[], now: number, spanMs: number): number {
  let earliest = Number.POSITIVE_INFINITY;
  for (const end of ends) earliest = Math.min(earliest, Math.min(end, now) + spanMs);
  return Math.max(1, Math.ceil(earliest - now));
}

/**
 * The wait a new acquire faces: none with a slot free and nobody queued; else until the
 * earliest busy slot frees, plus a slot's share of a window per caller ahead of it.
 */
function currentWait(ends: number[], queued: number, now: number, budget: Budget): number {
  const free = ends.length < budget.limit;
  if (free && queued === 0) return 0;
  const first = free ? 0 : waitFor(ends, now, budget.spanMs);
  return Math.ceil(first + (queued * budget.spanMs) / budget.limit);
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

interface MemorySlot {
  /** When the request ended (performance.now()), or undefined while it runs. */
  end?: number;
  /** When an unreleased slot counts as ended anyway. */
  deadline: number;
}

/**
 * One process's budget, in memory (the embedded SQLite deployment runs one instance).
 * Monotonic clock, so wall-clock jumps cannot open the gate.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly budget: Budget;
  private slots: MemorySlot[] = [];
  private readonly serial = new Serial();
  /** Acquires not yet granted (queued behind the serial section, or waiting in it). */
  private waiting = 0;

  constructor(options: RateLimiterOptions) {
    this.budget = budgetOf(options);
  }

  acquire(): Promise<RateSlotRelease> {
    this.waiting++;
    return this.serial.run(() => this.take()).finally(() => this.waiting--);
  }

  currentWaitMs(): Promise<number> {
    const now = performance.now();
    const { spanMs } = this.budget;
    const ends = this.slots
      .map((s) => s.end ?? (now >= s.deadline ? s.deadline : Number.POSITIVE_INFINITY))
      .filter((end) => end > now - spanMs);
    return Promise.resolve(currentWait(ends, this.waiting, now, this.budget));
  }

  private async take(): Promise<RateSlotRelease> {
    const { limit, spanMs, holdMs } = this.budget;
    for (;;) {
      const now = performance.now();
      const endOf = (s: MemorySlot) => s.end ?? (now >= s.deadline ? s.deadline : Number.POSITIVE_INFINITY);
      this.slots = this.slots.filter((s) => endOf(s) > now - spanMs);
      if (this.slots.length < limit) {
        const slot: MemorySlot = { deadline: now + holdMs };
        this.slots.push(slot);
        return () => {
          slot.end ??= performance.now();
        };
      }
      // Timers may fire a hair early: the loop checks again rather than trusting them.
      await sleep(waitFor(this.slots.map(endOf), now, spanMs));
    }
  }
}

/** First key of the two-int advisory lock that guards a bucket of rate_slots. */
const RATE_LOCK_NAMESPACE = 0x616d6f31; // 'amo1'

/** The database clock in epoch milliseconds. */
const dbNow = sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`;

/**
 * A budget shared by every instance that uses the same PostgreSQL database (and schema).
 * Each slot is a row of `rate_slots` whose `at` is, in the database's clock (the one
 * clock the instances share), the slot's deadline while its request runs and the
 * request's end once released. A transaction-scoped advisory lock makes "count the busy
 * slots, then take one" atomic across instances; it is held for a few short statements,
 * never while waiting or while a request runs.
 */
export class PostgresRateLimiter implements RateLimiter {
  private readonly budget: Budget;
  private readonly bucket: string;
  private readonly serial = new Serial();
  private takes = 0;

  constructor(
    private readonly db: Db,
    options: RateLimiterOptions & { bucket?: string },
  ) {
    if (db.dialect !== 'postgres') throw new Error('PostgresRateLimiter needs a PostgreSQL database');
    this.budget = budgetOf(options);
    this.bucket = options.bucket ?? 'amocrm';
  }

  /** Acquires of this process not yet granted. */
  private waiting = 0;

  /** Local callers queue here first, so one process asks the table one question at a time. */
  acquire(): Promise<RateSlotRelease> {
    this.waiting++;
    return this.serial.run(() => this.take()).finally(() => this.waiting--);
  }

  /** One read without the lock: other instances' queued callers are not seen, their slots are. */
  async currentWaitMs(): Promise<number> {
    const { spanMs } = this.budget;
    const { rows } = await sql<{ now: number; at: number | null }>`
      select ${dbNow} as now, s.at from (select 1) one
      left join rate_slots s on s.bucket = ${this.bucket} and s.at > ${dbNow} - ${spanMs}`.execute(this.db.kysely);
    const now = Number(rows[0]?.now ?? 0);
    const ends = rows.filter((r) => r.at !== null).map((r) => (Number(r.at) > now ? Number.POSITIVE_INFINITY : Number(r.at)));
    return currentWait(ends, this.waiting, now, this.budget);
  }

  private async take(): Promise<RateSlotRelease> {
    for (;;) {
      const result = await this.tryTake();
      if (typeof result === 'number') {
        await sleep(result);
        continue;
      }
      const id = result.id;
      return () => {
        // The end, stamped by the database clock after the answer arrived. If this write
        // fails the slot stays busy until its deadline: later, never sooner.
        this.db.kysely
          .updateTable('rate_slots')
          .set({ at: dbNow })
          .where('id', '=', id)
          .execute()
          .catch(() => undefined);
      };
    }
  }

  /** Takes a slot (its row id), or answers how many ms to wait before asking again. */
  private tryTake(): Promise<{ id: number } | number> {
    const { limit, spanMs, holdMs } = this.budget;
    const bucket = this.bucket;
    const prune = this.takes++ % 50 === 0;
    return this.db.kysely.transaction().execute(async (trx) => {
      // Keyed by schema too: deployments (and tests) that share a database but not a
      // schema have separate budgets, exactly as they have separate rate_slots tables.
      await sql`select pg_advisory_xact_lock(${RATE_LOCK_NAMESPACE}, hashtext(current_schema() || ':' || ${bucket}))`.execute(trx);
      // clock_timestamp(), not now(): now() is frozen at the start of the transaction,
      // which may be long before the lock was granted.
      const clock = await sql<{ now: number }>`select ${dbNow} as now`.execute(trx);
      const now = Number(clock.rows[0].now);
      const busy = await trx
        .selectFrom('rate_slots')
        .select('at')
        .where('bucket', '=', bucket)
        .where('at', '>', now - spanMs)
        .execute();
      if (busy.length < limit) {
        const row = await trx
          .insertInto('rate_slots')
          .values({ bucket, at: now + holdMs })
          .returning('id')
          .executeTakeFirstOrThrow();
        if (prune) {
          await trx
            .deleteFrom('rate_slots')
            .where('bucket', '=', bucket)
            .where('at', '<', now - spanMs - 60_000)
            .execute();
        }
        return { id: Number(row.id) };
      }
      // A row whose `at` lies ahead is a request still running (at = its deadline).
      return waitFor(
        busy.map((r) => (Number(r.at) > now ? Number.POSITIVE_INFINITY : Number(r.at))),
        now,
        spanMs,
      );
    });
  }
}

const shared = new WeakMap<Db, Map<string, RateLimiter>>();

/**
 * The limiter for a database: in memory on SQLite (one process), in the database on
 * PostgreSQL (every instance). One per database and settings within a process, so every
 * AmoClient of the process draws on the same budget.
 */
export function createRateLimiter(db: Db, options: RateLimiterOptions): RateLimiter {
  const key = `${options.rps}:${options.marginMs ?? ''}:${options.holdMs ?? ''}`;
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
