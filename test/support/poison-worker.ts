import { z } from 'zod';
import { connect } from '../../src/db/connect.js';
import { createLogger } from '../../src/logger.js';
import { reclaimAllLeases } from '../../src/queue/finish.js';
import { defineJobs } from '../../src/queue/jobs.js';
import { Worker } from '../../src/queue/worker.js';

const poisonJobs = defineJobs({ 'test.poison': z.object({}), 'test.ok': z.object({}) });

/**
 * A worker process for the poison-job test (`node --import tsx test/support/poison-worker.ts
 * <json>`): a `test.poison` job kills the process outright, as a segfault or the OOM killer
 * would; `test.ok` jobs succeed. It starts the way the bridge does (on SQLite, reclaiming
 * the leases the last process held) and exits 0 once no job is left to run.
 */
const { databaseUrl, schema, leaseMs } = JSON.parse(process.argv[2] ?? '{}') as { databaseUrl: string; schema?: string; leaseMs: number };
const db = connect(databaseUrl, { schema });
const logger = createLogger('info');
if (db.dialect === 'sqlite') await reclaimAllLeases(db.kysely);

const worker = new Worker({
  db,
  logger,
  leaseMs,
  pollMs: 50,
  handlers: [
    poisonJobs.handler('test.poison', {
      async run() {
        process.kill(process.pid, 'SIGKILL');
        return new Map();
      },
    }),
    poisonJobs.handler('test.ok', {
      async run(jobs) {
        return new Map(jobs.map((job) => [job.id, { type: 'done' as const }]));
      },
    }),
  ],
});
worker.start();

for (;;) {
  await new Promise((r) => setTimeout(r, 100));
  const left = await db.kysely.selectFrom('jobs').select('id').where('status', 'not in', ['done', 'dead']).execute();
  if (left.length === 0) break;
}
await worker.stop();
await db.close();
process.exit(0);
