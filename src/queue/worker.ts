import { randomUUID } from 'node:crypto';
import type { Db } from '../db/connect.js';
import type { Job } from '../db/schema.js';
import { isRetryable } from '../lib/http-error.js';
import { redactText } from '../lib/redact.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { type BackoffPolicy, DEFAULT_BACKOFF } from './backoff.js';
import { completeJob, failJob, postponeJob, releaseJob } from './finish.js';
import { leaseJobs } from './lease.js';

/** What became of one job of a batch. */
export type JobResult =
  | { type: 'done' }
  /** Not a failure: wait and try again without spending an attempt. */
  | { type: 'postpone'; delayMs: number; reason: string }
  | { type: 'failed'; error: unknown };

/**
 * Runs the jobs of one kind. It gets a whole batch (at most one job per key, thanks to
 * the lease's FIFO rule) so it can share amoCRM calls between them, and answers per job.
 */
export interface JobHandler {
  kind: string;
  /**
   * Batch gathering: when a job of this kind is taken, jobs of the same kind due within
   * this many ms join its batch now. Events enqueued a little in the future (see
   * enqueue's runAt) then share one batched amoCRM read instead of one read each.
   */
  gatherMs?: number;
  run(jobs: Job[]): Promise<Map<number, JobResult>>;
}

export interface WorkerOptions {
  db: Db;
  handlers: JobHandler[];
  logger: Logger;
  metrics?: Metrics;
  workerId?: string;
  batchSize?: number;
  /** Batches in flight at once. amoCRM's rate limit, not CPU, bounds useful concurrency. */
  concurrency?: number;
  pollMs?: number;
  leaseMs?: number;
  backoff?: BackoffPolicy;
}

export class Worker {
  readonly id: string;
  private readonly handlers: Map<string, JobHandler>;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly backoff: BackoffPolicy;
  private running = false;
  private loops: Promise<void>[] = [];
  private wakers = new Set<() => void>();
  private inFlight = new Set<Job>();

  constructor(private readonly options: WorkerOptions) {
    this.id = options.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
    this.handlers = new Map(options.handlers.map((h) => [h.kind, h]));
    this.batchSize = options.batchSize ?? 50;
    this.concurrency = options.concurrency ?? 2;
    this.pollMs = options.pollMs ?? 250;
    this.leaseMs = options.leaseMs ?? 30_000;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (let i = 0; i < this.concurrency; i++) this.loops.push(this.loop());
    this.options.logger.info('worker.started', { workerId: this.id, concurrency: this.concurrency });
  }

  /** New work was enqueued in this process: look now instead of at the next poll. */
  wake(): void {
    for (const wake of this.wakers) wake();
  }

  /**
   * Stops taking work and waits for the batches in hand; whatever is still leased after
   * `graceMs` is given back so another instance (or the next start) takes it at once.
   */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake();
    const finished = Promise.all(this.loops).then(() => true);
    const timedOut = new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref());
    if (!(await Promise.race([finished, timedOut]))) {
      for (const job of this.inFlight) await releaseJob(this.options.db.kysely, job).catch(() => undefined);
    }
    this.loops = [];
    this.options.logger.info('worker.stopped', { workerId: this.id });
  }

  /** Leases and runs one batch; answers how many jobs it took. Tests drive it directly. */
  async runOnce(): Promise<number> {
    const jobs = await leaseJobs(this.options.db, {
      workerId: this.id,
      limit: this.batchSize,
      leaseMs: this.leaseMs,
      kinds: [...this.handlers.keys()],
    });
    if (jobs.length === 0) return 0;
    await this.gather(jobs);
    for (const job of jobs) this.inFlight.add(job);
    const heartbeat = setInterval(() => void this.extendLeases(jobs), Math.max(250, this.leaseMs / 3));
    try {
      const byKind = new Map<string, Job[]>();
      for (const job of jobs) byKind.set(job.kind, [...(byKind.get(job.kind) ?? []), job]);
      await Promise.all([...byKind].map(([kind, batch]) => this.runBatch(kind, batch)));
    } finally {
      clearInterval(heartbeat);
      for (const job of jobs) this.inFlight.delete(job);
    }
    return jobs.length;
  }

  /**
   * Tops a batch up with jobs of the same kind due within the handler's gatherMs, and
   * keeps doing so, a quarter of that span apart, while a burst is still arriving (each
   * round found more), for at most four rounds.
   */
  private async gather(jobs: Job[]): Promise<void> {
    for (const handler of this.handlers.values()) {
      if (!handler.gatherMs) continue;
      let taken = jobs.filter((j) => j.kind === handler.kind).length;
      for (let round = 0; round < 4 && taken > 0 && taken < this.batchSize; round++) {
        if (round > 0) await new Promise((r) => setTimeout(r, handler.gatherMs! / 4));
        const now = Date.now();
        const more = await leaseJobs(this.options.db, {
          workerId: this.id,
          limit: this.batchSize - taken,
          leaseMs: this.leaseMs,
          kinds: [handler.kind],
          now,
          dueBy: now + handler.gatherMs,
        });
        jobs.push(...more);
        taken += more.length;
        if (more.length === 0) break;
      }
    }
  }

  /** Runs until the queue has nothing runnable (tests and the demo). */
  async drain(maxRounds = 1000): Promise<void> {
    for (let i = 0; i < maxRounds; i++) if ((await this.runOnce()) === 0) return;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let taken = 0;
      try {
        taken = await this.runOnce();
      } catch (error) {
        this.options.logger.error('worker.lease_failed', { workerId: this.id, error: String(error) });
      }
      if (taken === 0 && this.running) await this.sleep(this.pollMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  private async runBatch(kind: string, jobs: Job[]): Promise<void> {
    const handler = this.handlers.get(kind);
    let results: Map<number, JobResult>;
    try {
      if (!handler) throw new Error(`no handler for job kind ${kind}`);
      results = await handler.run(jobs);
    } catch (error) {
      results = new Map(jobs.map((job) => [job.id, { type: 'failed', error }]));
    }
    for (const job of jobs) {
      const result = results.get(job.id) ?? { type: 'failed', error: new Error('handler gave no result') };
      await this.settle(job, result);
    }
  }

  private async settle(job: Job, result: JobResult): Promise<void> {
    const { db, logger, metrics } = this.options;
    const fields = { jobId: job.id, kind: job.kind, key: job.job_key, attempt: job.attempts };
    if (result.type === 'done') {
      await completeJob(db.kysely, job);
      metrics?.jobsFinished.inc({ kind: job.kind, result: 'done' });
      logger.debug('job.done', fields);
      return;
    }
    if (result.type === 'postpone') {
      await postponeJob(db.kysely, job, result.delayMs, result.reason);
      logger.info('job.postponed', { ...fields, reason: result.reason, delayMs: result.delayMs });
      return;
    }
    const error = result.error;
    // Peer answers are scrubbed where they are caught (HttpError); this catches the rest.
    const message = redactText(error instanceof Error ? error.message : String(error));
    const retryAfterMs =
      typeof error === 'object' && error !== null && 'retryAfterMs' in error && typeof error.retryAfterMs === 'number'
        ? error.retryAfterMs
        : undefined;
    const outcome = await failJob(db.kysely, job, { message, retryable: isRetryable(error), retryAfterMs }, this.backoff);
    metrics?.jobsFinished.inc({ kind: job.kind, result: outcome });
    const log = outcome === 'dead' ? logger.error.bind(logger) : logger.warn.bind(logger);
    log(outcome === 'dead' ? 'job.dead' : 'job.retry', { ...fields, error: message });
  }

  private async extendLeases(jobs: Job[]): Promise<void> {
    const now = Date.now();
    await this.options.db.kysely
      .updateTable('jobs')
      .set({ locked_until: now + this.leaseMs })
      .where('id', 'in', jobs.map((j) => j.id))
      .where('locked_by', '=', this.id)
      .where('status', '=', 'running')
      .execute()
      .catch(() => undefined);
  }
}
