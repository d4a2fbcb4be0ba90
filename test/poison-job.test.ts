import { spawn } from 'node:child_process';
import { describe, it } from 'vitest';
import { connect } from '../src/db/connect.js';
import { migrate } from '../src/db/migrate.js';
import { enqueue } from '../src/queue/enqueue.js';
import { DATABASES, freshDatabaseUrl } from './support/databases.js';

/** Runs the poison worker once; answers the signal that ended it (null: it exited by itself). */
function runWorker(args: { databaseUrl: string; schema?: string; leaseMs: number }): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/poison-worker.ts', JSON.stringify(args)], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += String(chunk)));
    child.stderr.on('data', (chunk: Buffer) => (output += String(chunk)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output });
    });
  });
}

// The two databases run side by side: most of each test is spent starting processes.
describe.concurrent('poison jobs', () => {
  it.for(DATABASES)('on %s, a job that kills its worker process on every attempt ends dead after its attempts, and the rest of the queue flows', { timeout: 90_000 }, async (kind, { expect, onTestFinished }) => {
    const { url, schema } = await freshDatabaseUrl(kind, `poison-${kind}`);
    const db = connect(url, { schema });
    onTestFinished(() => db.close());
    await migrate(db);
    // The bystander shares the first batches with the poison job, and has the same budget.
    await enqueue(db.kysely, { kind: 'test.poison', key: 'order:poison', maxAttempts: 3 });
    await enqueue(db.kysely, { kind: 'test.ok', key: 'order:bystander', maxAttempts: 3 });

    const runs: Array<NodeJS.Signals | null> = [];
    for (let run = 1; run <= 8; run++) {
      const result = await runWorker({ databaseUrl: url, schema, leaseMs: 400 });
      runs.push(result.signal);
      if (result.signal === null) {
        expect(result.code, result.output).toBe(0);
        break;
      }
      // Work queued while the poison job is still around is not held up by it.
      if (run === 1) await enqueue(db.kysely, { kind: 'test.ok', key: 'order:later', maxAttempts: 3 });
    }

    // Lost once, the two are retried together; lost twice, the poison job runs alone.
    expect(runs).toEqual(['SIGKILL', 'SIGKILL', 'SIGKILL', null]);
    const rows = await db.kysely.selectFrom('jobs').selectAll().orderBy('id').execute();
    const byKey = Object.fromEntries(rows.map((r) => [r.job_key, r]));
    expect(byKey['order:poison']).toMatchObject({ status: 'dead', attempts: 3, lease_expiries: 3, locked_by: null });
    expect(byKey['order:poison']!.last_error).toMatch(/^lease expired 3 times/);
    expect(byKey['order:bystander']).toMatchObject({ status: 'done', lease_expiries: 2 });
    expect(byKey['order:later']).toMatchObject({ status: 'done', lease_expiries: 0 });
  });
});
