import { randomUUID } from 'node:crypto';
import type { Db } from '../db/connect.js';
import type { Job } from '../db/schema.js';
import { onBehalfOf } from '../lib/call-context.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { type BackoffPolicy, DEFAULT_BACKOFF } from './backoff.js';
import { describeFailure } from './failure.js';
import { abandonJob, completeJob, expireLeases, failJob, postponeJob, releaseJob } from './finish.js';
import { type JobHandler, type JobResult, type PayloadJob, parsePayload } from './jobs.js';
import { leaseJobs, leaseSuspects } from './lease.js';

export type { JobHandler, JobResult } from './jobs.js';

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
  /**
   * Told of every attempt's end once it is recorded (the order log's job outcomes). A
   * failure here is logged and does not change the job's outcome.
   */
  onSettled?: (job: Job, outcome: SettledOutcome) => Promise<void>;
}

/** How an attempt ended, as onSettled hears it. */
export type SettledOutcome =
  | { type: 'done' }
  | { type: 'postponed'; reason: string }
  | { type: 'retry' | 'wait' | 'dead' | 'abandoned'; error: string };

/** Jobs leased together, and how to tell the worker they are over. */
interface Taken {
  jobs: Job[];
  /** Suspects (their lease ran out before): they run once the batches under way are over. */
  solo: boolean;
  /** The batches under way when it was taken. */
  others: Array<Promise<void>>;
  finish(): void;
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
  /** Batches under way; each resolves when its batch is over. */
  private batches = new Set<Promise<void>>();
  /** Suspects are taken: nothing else is leased until they have run. */
  private solo = false;
  /** Lease decisions are taken one at a time (whether a suspect may run depends on the others). */
  private turn: Promise<unknown> = Promise.resolve();
  /** Heartbeats failed in a row: the first is logged, then the recovery. */
  private heartbeatFailures = 0;

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
    const taken = await this.take();
    if (!taken) return 0;
    const { jobs } = taken;
    for (const job of jobs) this.inFlight.add(job);
    const heartbeat = setInterval(() => void this.extendLeases(jobs), Math.max(250, this.leaseMs / 3));
    try {
      // Suspects run apart: should one kill the process again, it takes no other work with it.
      if (taken.solo) await Promise.all(taken.others);
      else await this.gather(jobs);
      for (const job of jobs) this.inFlight.add(job);
      const byKind = new Map<string, Job[]>();
      for (const job of jobs) byKind.set(job.kind, [...(byKind.get(job.kind) ?? []), job]);
      await Promise.all([...byKind].map(([kind, batch]) => this.runBatch(kind, batch)));
    } finally {
      clearInterval(heartbeat);
      for (const job of jobs) this.inFlight.delete(job);
      taken.finish();
    }
    return jobs.length;
  }

  /**
   * The decision (suspects or a batch?) is taken one loop at a time; a batch's lease, the
   * slow statement under a large backlog, then runs beside the other loops'.
   */
  private async take(): Promise<Taken | undefined> {
    const decided = this.turn.then(() => this.decide());
    this.turn = decided.catch(() => undefined);
    const taken = await decided;
    if (!taken || taken.solo) return taken;
    try {
      const lease = { workerId: this.id, limit: this.batchSize, leaseMs: this.leaseMs, kinds: [...this.handlers.keys()] };
      taken.jobs.push(...(await leaseJobs(this.options.db, lease)));
    } finally {
      if (taken.jobs.length === 0) taken.finish();
    }
    return taken.jobs.length > 0 ? taken : undefined;
  }

  /**
   * Ends the leases that ran out, then takes the suspects if there are any (to run apart),
   * or opens the slot of a batch that take() then leases. Either is registered among the
   * batches under way before the next decision, so suspects wait for every batch before them.
   */
  private async decide(): Promise<Taken | undefined> {
    if (this.solo) return undefined;
    const now = Date.now();
    await this.endExpiredLeases(now);
    const suspects = await leaseSuspects(this.options.db, {
      workerId: this.id,
      limit: this.batchSize,
      leaseMs: this.leaseMs,
      kinds: [...this.handlers.keys()],
      now,
    });
    const solo = suspects.length > 0;
    if (solo) this.solo = true;
    const others = [...this.batches];
    let resolve!: () => void;
    const over = new Promise<void>((r) => (resolve = r));
    this.batches.add(over);
    return {
      jobs: suspects,
      solo,
      others,
      finish: () => {
        this.batches.delete(over);
        if (solo) this.solo = false;
        resolve();
      },
    };
  }

  private async endExpiredLeases(now: number): Promise<void> {
    const { logger, metrics } = this.options;
    const { retrying, dead } = await expireLeases(this.options.db.kysely, { now });
    for (const job of retrying) {
      metrics?.jobsFinished.inc({ kind: job.kind, result: 'retry' });
      logger.warn('job.lease_expired', { ...fieldsOf(job), expiries: job.lease_expiries });
      await this.tell(job, { type: 'retry', error: job.last_error ?? 'lease expired' });
    }
    for (const job of dead) {
      metrics?.jobsFinished.inc({ kind: job.kind, result: 'dead' });
      logger.error('job.dead', { ...fieldsOf(job), error: job.last_error });
      await this.tell(job, { type: 'dead', error: job.last_error ?? 'lease expired' });
    }
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
        const failure = describeFailure(error);
        this.options.logger.error('worker.lease_failed', { workerId: this.id, error: failure.message, stack: failure.stack });
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

  /** Parses each payload with the kind's schema (the one place it happens), then runs the handler. */
  private async runBatch(kind: string, jobs: Job[]): Promise<void> {
    const handler = this.handlers.get(kind);
    const results = new Map<number, JobResult>();
    const parsed: Array<PayloadJob<unknown>> = [];
    for (const job of jobs) {
      if (!handler) {
        results.set(job.id, { type: 'failed', error: new Error(`no handler for job kind ${kind}`) });
        continue;
      }
      const payload = parsePayload(handler, job);
      if (payload.ok) parsed.push(payload.job);
      else results.set(job.id, { type: 'failed', error: payload.error });
    }
    if (handler && parsed.length > 0) {
      try {
        // Outbound calls of the batch count for its orders (src/lib/call-context.ts).
        const orderIds = parsed.flatMap((job) => (job.job_key.startsWith('order:') ? [job.job_key.slice('order:'.length)] : []));
        for (const [id, result] of await onBehalfOf(orderIds, () => handler.run(parsed))) results.set(id, result);
      } catch (error) {
        for (const job of parsed) results.set(job.id, { type: 'failed', error });
      }
    }
    for (const job of jobs) {
      const result = results.get(job.id) ?? { type: 'failed', error: new Error('handler gave no result') };
      await this.settle(job, result);
    }
  }

  private async settle(job: Job, result: JobResult): Promise<void> {
    const { db, logger, metrics } = this.options;
    const fields = fieldsOf(job);
    if (result.type === 'done') {
      await completeJob(db.kysely, job);
      metrics?.jobsFinished.inc({ kind: job.kind, result: 'done' });
      logger.debug('job.done', fields);
      return this.tell(job, { type: 'done' });
    }
    if (result.type === 'postpone') {
      await postponeJob(db.kysely, job, result.delayMs, result.reason);
      logger.info('job.postponed', { ...fields, reason: result.reason, delayMs: result.delayMs });
      return this.tell(job, { type: 'postponed', reason: result.reason });
    }
    const failure = describeFailure(result.error);
    if (result.type === 'abandoned') {
      await abandonJob(db.kysely, job, failure);
      metrics?.jobsFinished.inc({ kind: job.kind, result: 'abandoned' });
      logger.warn('job.abandoned', { ...fields, error: failure.message, stack: failure.stack });
      return this.tell(job, { type: 'abandoned', error: failure.message });
    }
    const outcome = await failJob(db.kysely, job, failure, this.backoff);
    metrics?.jobsFinished.inc({ kind: job.kind, result: outcome === 'wait' ? 'retry' : outcome });
    // A refusal was logged once, with its fix, by the service's health tracker: each job waiting on it is no news.
    if (outcome === 'wait') logger.debug('job.waiting_for_credentials', { ...fields, error: failure.message });
    else if (outcome === 'dead') logger.error('job.dead', { ...fields, error: failure.message, stack: failure.stack });
    else logger.warn('job.retry', { ...fields, error: failure.message, stack: failure.stack });
    await this.tell(job, { type: outcome, error: failure.message });
  }

  private async tell(job: Job, outcome: SettledOutcome): Promise<void> {
    if (!this.options.onSettled) return;
    try {
      await this.options.onSettled(job, outcome);
    } catch (error) {
      this.options.logger.warn('job.on_settled_failed', { ...fieldsOf(job), error: describeFailure(error).message });
    }
  }

  /** Keeps the batch's leases alive; a failing streak is logged once, and its end. */
  private async extendLeases(jobs: Job[]): Promise<void> {
    const { db, logger } = this.options;
    try {
      await db.kysely
        .updateTable('jobs')
        .set({ locked_until: Date.now() + this.leaseMs })
        .where('id', 'in', jobs.map((j) => j.id))
        .where('locked_by', '=', this.id)
        .where('status', '=', 'running')
        .execute();
      if (this.heartbeatFailures > 0) {
        logger.info('job.heartbeat_recovered', { workerId: this.id, failures: this.heartbeatFailures });
        this.heartbeatFailures = 0;
      }
    } catch (error) {
      if (this.heartbeatFailures++ > 0) return;
      const failure = describeFailure(error);
      // Leases then run out and another worker may take these jobs while they still run here.
      logger.warn('job.heartbeat_failed', { workerId: this.id, jobs: jobs.length, leaseMs: this.leaseMs, error: failure.message, stack: failure.stack });
    }
  }
}

function fieldsOf(job: Job) {
  return { jobId: job.id, kind: job.kind, key: job.job_key, attempt: job.attempts };
}
