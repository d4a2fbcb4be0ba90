import express, { type Router } from 'express';
import { z } from 'zod';
import { JOB_STATUSES } from '../../../db/schema.js';
import { deadJobIdsSince, listDeadJobs, replayDeadJob, replayDeadJobs } from '../../../queue/dead-letter.js';
import { syncJobs } from '../../../sync/jobs.js';
import { sendProblem } from '../../problem.js';
import type { AdminDeps } from './index.js';
import type { RequireScope } from './require-scope.js';

const replaySinceSchema = z.strictObject({
  since: z.iso.datetime({ offset: true, error: 'since must be an ISO 8601 date and time, e.g. 2026-01-31T08:00:00Z' }),
  kind: z.enum(syncJobs.kinds as [string, ...string[]]).optional(),
});

/** Dead letters and the jobs around them: list, look, replay. */
export function adminJobsRouter(deps: AdminDeps, requireScope: RequireScope): Router {
  const router = express.Router();

  router.get('/admin/jobs', requireScope('jobs:read'), async (req, res) => {
    const query = z
      .object({ status: z.enum(JOB_STATUSES).exclude(['done']).default('dead'), limit: z.coerce.number().int().min(1).max(500).default(100) })
      .safeParse(req.query);
    if (!query.success) return sendProblem(res, 400, 'Bad query', query.error.issues.map((i) => i.message).join('; '));
    const jobs =
      query.data.status === 'dead'
        ? await listDeadJobs(deps.db.kysely, query.data.limit)
        : await deps.db.kysely
            .selectFrom('jobs')
            .selectAll()
            .where('status', '=', query.data.status)
            .orderBy('id')
            .limit(query.data.limit)
            .execute();
    res.json({ items: jobs.map(jobView) });
  });

  // Every dead job since a moment (of one kind): counted now, replayed in the background.
  router.post('/admin/jobs/replay', requireScope('jobs:replay'), express.json({ limit: '4kb' }), async (req, res) => {
    const body = replaySinceSchema.safeParse(req.body ?? {});
    if (!body.success) return sendProblem(res, 400, 'Bad body', body.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    const filter = { since: Date.parse(body.data.since), until: Date.now(), kind: body.data.kind };
    const ids = await deadJobIdsSince(deps.db.kysely, filter);
    const fields = { since: body.data.since, kind: body.data.kind, jobs: ids.length, apiKey: res.locals.apiKey };
    deps.logger.info('admin.jobs_replay_started', fields);
    res.status(202).json({ count: ids.length });
    if (ids.length === 0) return;
    replayDeadJobs(deps.db.kysely, ids).then(
      (replayed) => {
        deps.logger.info('admin.jobs_replayed', { ...fields, replayed });
        deps.onWorkEnqueued();
      },
      (error: unknown) => deps.logger.error('admin.jobs_replay_failed', { ...fields, error: String(error) }),
    );
  });

  router.post('/admin/jobs/:id/replay', requireScope('jobs:replay'), async (req, res) => {
    const id = Number(req.params.id);
    if (!Number.isInteger(id)) return sendProblem(res, 400, 'Bad job id');
    if (!(await replayDeadJob(deps.db.kysely, id))) return sendProblem(res, 404, 'Not Found', `job ${id} is not in the dead letter`);
    deps.logger.info('admin.job_replayed', { jobId: id, apiKey: res.locals.apiKey });
    deps.onWorkEnqueued();
    res.status(202).json({ status: 'queued', id });
  });

  return router;
}

export function jobView(job: { id: number; kind: string; job_key: string; status: string; attempts: number; max_attempts: number; run_at: number; last_error: string | null; updated_at: number }) {
  return {
    id: job.id,
    kind: job.kind,
    key: job.job_key,
    status: job.status,
    attempts: job.attempts,
    maxAttempts: job.max_attempts,
    runAt: new Date(job.run_at).toISOString(),
    updatedAt: new Date(job.updated_at).toISOString(),
    lastError: job.last_error,
  };
}
