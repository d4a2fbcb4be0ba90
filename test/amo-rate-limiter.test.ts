import { afterEach, describe, expect, it } from 'vitest';
import { MemoryRateLimiter, PostgresRateLimiter, createRateLimiter, type RateLimiter } from '../src/amo/index.js';
import { connect, type Db } from '../src/db/connect.js';
import { DATABASES, dropDb, freshDb, POSTGRES_URL } from './support/databases.js';
import { maxInAnyWindow } from './support/rate-window.js';

/**
 * Fires `count` requests at once, each holding its slot for `latencyMs`, and records when
 * each was let through.
 */
async function burst(limiter: RateLimiter, count: number, latencyMs = 0): Promise<number[]> {
  const times: number[] = [];
  await Promise.all(
    Array.from({ length: count }, async () => {
      const release = await limiter.acquire();
      times.push(performance.now());
      if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs));
      release();
    }),
  );
  return times;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

describe('MemoryRateLimiter', () => {
  it('never lets more than N starts into any one-second window, and does not idle', async () => {
    const limiter = new MemoryRateLimiter({ rps: 10 });
    const started = performance.now();
    const times = await burst(limiter, 15);
    expect(maxInAnyWindow(times, 1000)).toBeLessThanOrEqual(10);
    // 15 starts at 10 per (1 s + margin): the second batch begins after one span.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('keeps a slot busy while its request runs and for a window after it ended', async () => {
    const limiter = new MemoryRateLimiter({ rps: 5 });
    const times = await burst(limiter, 6, 300);
    const sorted = [...times].sort((a, b) => a - b);
    // The sixth waits for the first request's end (300 ms) plus a window.
    expect(sorted[5] - sorted[0]).toBeGreaterThanOrEqual(1300);
  });

  it('frees a slot that was never handed back after its hold time', async () => {
    const limiter = new MemoryRateLimiter({ rps: 1, marginMs: 0, holdMs: 200 });
    const started = performance.now();
    await limiter.acquire(); // never released, as if the process lost track of it
    await limiter.acquire();
    expect(performance.now() - started).toBeGreaterThanOrEqual(1190);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('holds at the window edge even without a margin, and refuses a rate of zero', async () => {
    const limiter = new MemoryRateLimiter({ rps: 4, marginMs: 0 });
    const times = await burst(limiter, 5);
    expect(maxInAnyWindow(times, 1000)).toBeLessThanOrEqual(4);
    expect(() => new MemoryRateLimiter({ rps: 0 })).toThrow(RangeError);
  });
});

describe.each(DATABASES)('the rate limiter of a %s deployment', (kind) => {
  async function db(): Promise<Db> {
    const d = await freshDb(kind, `amo-rate-${kind}`);
    cleanups.push(() => dropDb(d));
    return d;
  }

  it('never lets more than N starts into any one-second window', async () => {
    const database = await db();
    const limiter = createRateLimiter(database, { rps: 6 });
    expect(limiter).toBeInstanceOf(kind === 'postgres' ? PostgresRateLimiter : MemoryRateLimiter);
    // One limiter per database and rate in a process: every client shares the budget.
    expect(createRateLimiter(database, { rps: 6 })).toBe(limiter);
    const times = await burst(limiter, 10);
    expect(maxInAnyWindow(times, 1000)).toBeLessThanOrEqual(6);
  });

  // Several instances share state only on PostgreSQL; SQLite is one process by design.
  if (kind === 'postgres') it('shares one budget between instances with their own connections', async () => {
    const database = await db();
    const other = connect(POSTGRES_URL, { schema: database.schema });
    cleanups.push(() => other.close());
    const a = new PostgresRateLimiter(database, { rps: 5 });
    const b = new PostgresRateLimiter(other, { rps: 5 });
    const [ta, tb] = await Promise.all([burst(a, 4, 100), burst(b, 4, 100)]);
    expect(maxInAnyWindow([...ta, ...tb], 1000)).toBeLessThanOrEqual(5);
    const slots = await database.kysely.selectFrom('rate_slots').select('at').execute();
    expect(slots).toHaveLength(8);
    // Each slot's `at` is now its request's end in the database clock.
    expect(maxInAnyWindow(slots.map((s) => Number(s.at)), 1000)).toBeLessThanOrEqual(5);
    const sorted = [...ta, ...tb].sort((x, y) => x - y);
    expect(sorted[5] - sorted[0]).toBeGreaterThanOrEqual(1000 + 100);
  });
});
