import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../src/db/connect.js';
import { enqueue } from '../src/queue/enqueue.js';
import { completeJob } from '../src/queue/finish.js';
import { leaseJobs } from '../src/queue/lease.js';
import { markClaimsUnknown, readClaim, settleClaim, takeClaim } from '../src/sync/claims.js';
import { DATABASES, dropDb, freshDb } from './support/databases.js';

const T0 = 1_700_000_000_000;
const SETTLE = 5_000;

describe.each(DATABASES)('create claims on %s', (kind) => {
  let db: Db;
  beforeEach(async (ctx) => {
    db = await freshDb(kind, ctx.task.name);
  });
  afterEach(async () => dropDb(db));

  it('let exactly one job create, and nobody take over while that job may still be sending', async () => {
    await enqueue(db.kysely, { kind: 'order.sync', key: 'order:1' }, T0);
    await enqueue(db.kysely, { kind: 'order.sync', key: 'order:2' }, T0);
    const [a, b] = await leaseJobs(db, { workerId: 'w', limit: 2, leaseMs: 30_000, now: T0 });
    const key = 'contact:user-1';

    const free = await readClaim(db.kysely, key, SETTLE, a!.id, T0);
    expect(free).toEqual({ state: 'free' });
    expect(await takeClaim(db.kysely, key, free, a!.id, T0)).toBe(true);
    expect(await takeClaim(db.kysely, key, free, b!.id, T0)).toBe(false);

    // Long after the settle time, job a still holds its lease: its request may be waiting
    // in the rate limiter, so b must not create again.
    const later = T0 + 20_000;
    expect(await readClaim(db.kysely, key, SETTLE, b!.id, later)).toMatchObject({ state: 'pending', settled: false });
    // a itself, retrying, knows its own earlier attempt is over.
    expect(await readClaim(db.kysely, key, SETTLE, a!.id, later)).toMatchObject({ state: 'pending', settled: true });

    // a's attempt ends without an answer: the index's grace counts from then.
    await markClaimsUnknown(db.kysely, [key], later);
    await completeJob(db.kysely, a!, later);
    expect(await readClaim(db.kysely, key, SETTLE, b!.id, later + 1_000)).toMatchObject({ settled: false });
    const settled = await readClaim(db.kysely, key, SETTLE, b!.id, later + SETTLE);
    expect(settled).toMatchObject({ state: 'pending', settled: true });
    expect(await takeClaim(db.kysely, key, settled, b!.id, later + SETTLE)).toBe(true);
    // The same stale view cannot win twice.
    expect(await takeClaim(db.kysely, key, settled, a!.id, later + SETTLE)).toBe(false);

    await settleClaim(db.kysely, key, 4242);
    expect(await readClaim(db.kysely, key, SETTLE, a!.id, later + SETTLE)).toEqual({ state: 'created', entityId: 4242 });
  });

  it('free a crashed holder once its lease runs out', async () => {
    await enqueue(db.kysely, { kind: 'order.sync', key: 'order:1' }, T0);
    const [a] = await leaseJobs(db, { workerId: 'dead-worker', limit: 1, leaseMs: 30_000, now: T0 });
    const key = 'deal:order-1';
    expect(await takeClaim(db.kysely, key, { state: 'free' }, a!.id, T0)).toBe(true);
    expect(await readClaim(db.kysely, key, SETTLE, 999, T0 + 29_000)).toMatchObject({ settled: false });
    expect(await readClaim(db.kysely, key, SETTLE, 999, T0 + 31_000)).toMatchObject({ settled: true });
  });
});
