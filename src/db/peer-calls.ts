import type { Insertable } from 'kysely';
import type { Logger } from '../logger.js';
import { currentOrderId } from '../lib/call-context.js';
import type { Db } from './connect.js';
import type { CallOutcome, Peer, PeerCallsTable } from './schema.js';

/** One finished exchange with amoCRM or Company 1, as a client reports it. */
export interface PeerCall {
  peer: Peer;
  /** Method and route template: `GET /api/v4/leads/{id}`. */
  endpoint: string;
  outcome: CallOutcome;
  durationMs: number;
}

/** Where the clients report their exchanges (PeerCallRecorder, or nothing in the CLI). */
export interface PeerCallSink {
  record(call: PeerCall): void;
}

/** A route template from a path: numeric segments become `{id}`, `:id` too, the query goes. */
export function routeTemplate(method: string, path: string): string {
  const pathname = path.split('?')[0]!;
  return `${method.toUpperCase()} ${pathname.replace(/\/(\d+|:id)(?=\/|$)/g, '/{id}')}`;
}

/**
 * The outcome of an exchange: a status code's class (429 apart) or no answer. amoCRM and
 * Company 1 send no 1xx or 3xx to the bridge; should one come, the clients refuse it as
 * they do a 4xx, and it is counted with them.
 */
export function callOutcomeOf(status: number | 'timeout' | 'network'): CallOutcome {
  if (typeof status === 'string') return status;
  if (status === 429) return '429';
  if (status >= 200 && status <= 299) return '2xx';
  return status >= 500 ? '5xx' : '4xx';
}

export interface PeerCallRecorderOptions {
  db: Db;
  logger: Logger;
  /** How often the buffer is written (default 1000 ms). */
  flushMs?: number;
  /** Rows per INSERT (default 200). */
  batchSize?: number;
  /** Rows kept while the database refuses them; beyond, new calls are not recorded (default 20 000). */
  maxBuffered?: number;
}

/** A row as written: the table's columns but its generated id. */
type Row = Insertable<PeerCallsTable>;

/**
 * peer_calls without a database round trip on the call path: `record` only appends to
 * memory (the order comes from the call context), and a timer writes the buffer in small
 * batches about once a second, and once more at stop. A failed write keeps the rows for
 * the next tick, up to a cap, and is logged once per streak, with how many calls went
 * unrecorded when it ends.
 */
export class PeerCallRecorder implements PeerCallSink {
  private buffer: Row[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failing = false;
  private dropped = 0;

  constructor(private readonly options: PeerCallRecorderOptions) {}

  record(call: PeerCall): void {
    // Full while the database refuses: the newest go, so a write under way still owns the buffer's head.
    if (this.buffer.length >= (this.options.maxBuffered ?? 20_000)) {
      this.dropped++;
      return;
    }
    this.buffer.push({
      peer: call.peer,
      endpoint: call.endpoint,
      outcome: call.outcome,
      order_id: currentOrderId(),
      at: Date.now(),
      duration_ms: Math.max(0, Math.round(call.durationMs)),
    });
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.options.flushMs ?? 1000);
    this.timer.unref();
  }

  /** Writes what is buffered; concurrent callers share one flush and then run another if rows came meanwhile. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.buffer.length === 0) return;
    this.flushing = this.write().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  /** Stops the timer and writes the rest (shutdown, before the database closes). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private async write(): Promise<void> {
    const size = this.options.batchSize ?? 200;
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, size);
      try {
        await this.options.db.kysely.insertInto('peer_calls').values(batch).execute();
      } catch (error) {
        if (!this.failing) this.options.logger.warn('peer_calls.write_failed', { rows: this.buffer.length, error: String(error) });
        this.failing = true;
        return;
      }
      this.buffer.splice(0, batch.length);
      if (this.failing || this.dropped > 0) {
        this.options.logger.info('peer_calls.write_recovered', { dropped: this.dropped });
        this.failing = false;
        this.dropped = 0;
      }
    }
  }
}
