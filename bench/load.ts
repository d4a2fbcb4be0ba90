import http from 'node:http';
import autocannon from 'autocannon';
import { childArgs, emitResult } from './lib/child.js';
import { type SignedRequest, signedOrderWebhooks } from './lib/signed-webhooks.js';
import { type LatencySummary, summarize } from './lib/stats.js';

/**
 * The load generator, run as its own process (`node --import tsx bench/load.ts <json>`)
 * against one server over loopback, cycling through pre-signed partner webhooks. Runs
 * share one pool and never reuse an entry until the pool is spent (`wrapped` counts
 * reuses; a bridge run must have none, or the inbox would absorb them as redeliveries).
 *
 * Two kinds of run:
 * - `autocannon`: closed loop, N connections each sending its next request as soon as
 *   the last was answered; with `overallRate`, autocannon's own pacing (each connection
 *   sends its share of every second back to back, at the start of the second);
 * - `paced`: open loop at a fixed rate, one request every 1/rate s whatever the answers
 *   (node:http, keep-alive), so a slow answer does not delay the next request.
 */

export type LoadRun =
  | { kind: 'autocannon'; name: string; connections: number; durationSec?: number; amount?: number; overallRate?: number }
  | { kind: 'paced'; name: string; rate: number; durationSec: number };

export interface LoadArgs {
  url: string;
  path: string;
  pool: { size: number; secret: string; prefix: string };
  runs: LoadRun[];
  /** Hard bound of one run, whatever its kind. */
  timeoutSec: number;
}

export interface LoadRunResult {
  name: string;
  /** Epoch ms: when the run started and finished (to cut a profile to it). */
  startedAt: number;
  finishedAt: number;
  durationSec: number;
  completed: number;
  ok2xx: number;
  /** 2xx answers per second over the run. */
  rps: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  /** Per-request latency in ms, from the request's write to its full answer. */
  latency: LatencySummary;
  /** Pool entries sent a second time during this run. */
  wrapped: number;
  /** Paced runs: the most a send left after its scheduled time, ms. */
  maxSendLagMs?: number;
  /** Paced runs: every latency, ms (to pool several runs' percentiles). */
  samples?: number[];
}

const args = childArgs<LoadArgs>();
const pool = signedOrderWebhooks(args.pool.size, { secret: args.pool.secret, prefix: args.pool.prefix });
let next = 0;
const take = (): SignedRequest => pool[next++ % pool.length]!;

async function autocannonRun(run: Extract<LoadRun, { kind: 'autocannon' }>): Promise<Omit<LoadRunResult, 'wrapped'>> {
  const latencies: number[] = [];
  let finish: (result: autocannon.Result) => void = () => undefined;
  let fail: (error: Error) => void = () => undefined;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const startedAt = Date.now();
  const instance = autocannon(
    {
      url: args.url,
      connections: run.connections,
      pipelining: 1,
      timeout: 10,
      ...(run.amount !== undefined ? { amount: run.amount } : { duration: run.durationSec ?? 5 }),
      ...(run.overallRate !== undefined ? { overallRate: run.overallRate } : {}),
      requests: [
        {
          method: 'POST',
          path: args.path,
          setupRequest: (request) => {
            const signed = take();
            return { ...request, headers: signed.headers, body: signed.body };
          },
        },
      ],
    },
    (error, result) => (error ? fail(error) : finish(result)),
  );
  instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  const guard = setTimeout(() => instance.stop(), args.timeoutSec * 1000);
  const result = await done.finally(() => clearTimeout(guard));
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0;
  return {
    name: run.name,
    startedAt,
    finishedAt: Date.now(),
    durationSec: result.duration,
    completed: result.requests.total,
    ok2xx: result['2xx'],
    rps: result['2xx'] / result.duration,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    latency: summarize(latencies),
  };
}

async function pacedRun(run: Extract<LoadRun, { kind: 'paced' }>): Promise<Omit<LoadRunResult, 'wrapped'>> {
  const target = new URL(args.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(run.rate * run.durationSec);
  const intervalMs = 1000 / run.rate;
  const latencies: number[] = [];
  const statusCodes: Record<string, number> = {};
  let errors = 0;
  let timeouts = 0;
  let answered = 0;
  let sent = 0;
  let maxSendLagMs = 0;
  const startedAt = Date.now();
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const settle = () => {
      if (++answered === total) resolve();
    };
    const fire = () => {
      const signed = take();
      const start = performance.now();
      const req = http.request(
        {
          host: target.hostname,
          port: target.port,
          path: args.path,
          method: 'POST',
          agent,
          timeout: 10_000,
          headers: { ...signed.headers, 'content-length': String(Buffer.byteLength(signed.body)) },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(performance.now() - start);
            const code = String(res.statusCode ?? 0);
            statusCodes[code] = (statusCodes[code] ?? 0) + 1;
            settle();
          });
        },
      );
      req.on('timeout', () => {
        timeouts++;
        req.destroy(new Error('timeout'));
      });
      req.on('error', () => {
        errors++;
        settle();
      });
      req.end(signed.body);
    };
    const tick = () => {
      const now = performance.now();
      // Whatever is due goes now: a late timer sends the overdue requests at once.
      while (sent < total && t0 + sent * intervalMs <= now) {
        maxSendLagMs = Math.max(maxSendLagMs, now - (t0 + sent * intervalMs));
        sent++;
        fire();
      }
      if (sent < total) setTimeout(tick, Math.max(0, t0 + sent * intervalMs - performance.now()));
    };
    tick();
    setTimeout(() => resolve(), args.timeoutSec * 1000).unref();
  });
  agent.destroy();
  const durationSec = (performance.now() - t0) / 1000;
  const ok2xx = Object.entries(statusCodes).reduce((s, [code, n]) => (code.startsWith('2') ? s + n : s), 0);
  return {
    name: run.name,
    startedAt,
    finishedAt: Date.now(),
    durationSec,
    completed: answered,
    ok2xx,
    rps: ok2xx / durationSec,
    statusCodes,
    errors,
    timeouts,
    latency: summarize(latencies),
    maxSendLagMs,
    samples: latencies.map((v) => Math.round(v * 1000) / 1000),
  };
}

const results: LoadRunResult[] = [];
for (const run of args.runs) {
  const startNext = next;
  const result = run.kind === 'paced' ? await pacedRun(run) : await autocannonRun(run);
  results.push({ ...result, wrapped: Math.max(0, next - Math.max(startNext, pool.length)) });
}
emitResult(results);
