import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import pRetry from 'p-retry';
import qs from 'qs';
import type { HealthSignal, ServiceHealth } from '../health/service-health.js';
import { HttpError, PermanentError, TransportError, parseRetryAfter } from '../lib/http-error.js';
import type { Logger } from '../logger.js';
import { callOutcomeOf, type PeerCallSink, routeTemplate } from '../db/peer-calls.js';
import { outcomeOf, type Metrics } from '../metrics.js';
import type { RateLimiter } from './rate-limiter.js';

/**
 * The HTTP layer under amocrm-js. amocrm-js 3.6.0's own DomainRequest cannot be used:
 *
 * - it always speaks HTTPS to `<domain>.amocrm.ru` (no base URL, no port), so neither
 *   AMO_BASE_URL nor a simulator can be reached;
 * - it has no timeout: a server that never answers hangs the caller forever;
 * - it joins the body with `chunks.join('')`, decoding every chunk on its own, so a
 *   multi-byte UTF-8 character cut between two chunks becomes U+FFFD (Cyrillic names in
 *   large responses come out corrupted);
 * - it decides success from the body (`'status' in data`), never from the status code:
 *   an empty 429 or 401 resolves as a success with `{}`.
 *
 * Here: node:http(s) against the configured base URL, one deadline for the whole exchange
 * (headers and body), the body collected as bytes and decoded once, the status code
 * deciding success (non-2xx → HttpError; no answer → AmoTransportError), and the rate
 * limiter and metrics around every single exchange.
 */

/** No answer at all. `notSent` when the connection was never made, so the server cannot have acted. */
export class AmoTransportError extends TransportError {
  constructor(
    method: string,
    path: string,
    reason: string,
    readonly kind: 'timeout' | 'network',
    readonly notSent: boolean,
  ) {
    super('amocrm', method, path, reason);
    this.name = 'AmoTransportError';
  }
}

/** A 2xx answer that is not what amoCRM's contract promises; retrying will not fix it. */
export class AmoResponseError extends PermanentError {
  override name = 'AmoResponseError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    reason: string,
  ) {
    super(`amocrm ${method} ${path} answered ${status} with an unexpected body: ${reason}`);
  }
}

export interface AmoHttpRequest {
  method: string;
  /** Path and query, e.g. `/api/v4/leads?filter[id][]=1`. Never a full URL. */
  path: string;
  /** Serialized body (JSON or form), if any. */
  body?: string;
  contentType?: string;
  /** Bearer token; absent for the OAuth token endpoint. */
  token?: string;
  headers?: Record<string, string>;
}

export interface AmoHttpResponse {
  status: number;
  /** The decoded body ('' when empty, as in a 204). */
  text: string;
  /** The response head (status, headers); its body has already been consumed into `text`. */
  message: http.IncomingMessage;
}

export interface AmoTransportOptions {
  /** e.g. https://company2.amocrm.ru or http://127.0.0.1:PORT; a path prefix is kept. */
  baseUrl: string;
  timeoutMs: number;
  limiter: RateLimiter;
  metrics: Metrics;
  logger: Logger;
  /** Told the outcome of every exchange (reachability; refusals come from the request pipeline). */
  health?: ServiceHealth;
  /** Told of every exchange, for GET /admin/quota (src/db/peer-calls.ts). */
  calls?: PeerCallSink;
}

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const brotli = promisify(zlib.brotliDecompress);

/** Errors that mean no connection was ever made: the request cannot have reached amoCRM. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** The metric label of a path: numbers become `:id`, the query is dropped. */
export function endpointOf(path: string): string {
  const pathname = path.split('?')[0];
  return pathname.replace(/\/\d+(?=\/|$)/g, '/:id');
}

/**
 * What one exchange says about amoCRM. A 401 or 403 from the API says nothing yet: with
 * OAuth a 401 is first answered by a refresh, so the request pipeline, which knows how
 * it ended, gives that verdict (see health.ts). Answers of the OAuth endpoint prove
 * amoCRM is there, not that the API accepts us.
 */
export function exchangeSignal(path: string, outcome: number | AmoTransportError): HealthSignal | undefined {
  if (typeof outcome !== 'number') return { kind: 'unreachable', reason: outcome.reason };
  if (outcome >= 500) return { kind: 'unreachable', reason: `answered ${outcome}` };
  if (path.startsWith('/oauth2/')) return { kind: 'reachable' };
  if (outcome === 401 || outcome === 403) return undefined;
  if (outcome === 408 || outcome === 429) return { kind: 'reachable' };
  return { kind: 'ok' };
}

/** GET parameters in the PHP bracket style amoCRM reads: `filter[id][]=1&filter[id][]=2`. */
export function encodeQuery(params: object | undefined): string {
  if (!params) return '';
  // Brackets stay literal (values are encoded): 250 ids fit a URL of ~6 KB instead of ~8 KB.
  return qs.stringify(params, { arrayFormat: 'brackets', encodeValuesOnly: true, skipNulls: true });
}

export class AmoTransport {
  private readonly base: URL;
  private readonly agent: http.Agent;

  constructor(private readonly options: AmoTransportOptions) {
    this.base = new URL(options.baseUrl);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new Error(`AMO_BASE_URL must be http(s), got ${this.base.protocol}`);
    }
    const agentOptions = { keepAlive: true, maxSockets: 32 };
    this.agent = this.base.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** Destroys the keep-alive sockets (shutdown): requests under way fail. */
  close(): void {
    this.agent.destroy();
  }

  /** The URL of a path under the base URL (its own path prefix kept). */
  urlOf(path: string): URL {
    const prefix = this.base.pathname.replace(/\/$/, '');
    return new URL(`${this.base.protocol}//${this.base.host}${prefix}${path.startsWith('/') ? path : `/${path}`}`);
  }

  /**
   * One HTTP exchange: waits for the rate limiter, then sends. Resolves only on 2xx;
   * throws HttpError for any other status (body kept raw, Retry-After parsed) and
   * AmoTransportError when no complete answer arrived within the timeout.
   */
  async send(request: AmoHttpRequest): Promise<AmoHttpResponse> {
    const { metrics } = this.options;
    const endpoint = endpointOf(request.path);
    const url = this.urlOf(request.path);
    // Errors name the path without its query: search terms and ids are not for log lines.
    const pathForErrors = url.pathname;

    const waitStarted = performance.now();
    const release = await this.options.limiter.acquire();
    metrics.amoRateLimitWaitSeconds.observe((performance.now() - waitStarted) / 1000);

    const stopTimer = metrics.amoRequestSeconds.startTimer({ endpoint });
    const started = performance.now();
    const recordCall = (status: number | 'timeout' | 'network') =>
      this.options.calls?.record({
        peer: 'amocrm',
        endpoint: routeTemplate(request.method, request.path),
        outcome: callOutcomeOf(status),
        durationMs: performance.now() - started,
      });
    let response: AmoHttpResponse;
    try {
      response = await this.exchange(url, request);
    } catch (error) {
      release();
      stopTimer();
      const failure = this.classify(error, request.method, pathForErrors);
      recordCall(failure.kind);
      metrics.amoRequests.inc({ endpoint, outcome: outcomeOf(failure.kind) });
      this.observe(endpoint, failure);
      this.options.logger.debug('amo.request.no_answer', { method: request.method, endpoint, reason: failure.reason });
      throw failure;
    }
    // The slot is handed back only now that the answer is in: amoCRM counted the
    // request at some moment before this one (see rate-limiter.ts).
    release();
    stopTimer();
    recordCall(response.status);
    metrics.amoRequests.inc({ endpoint, outcome: outcomeOf(response.status) });
    this.observe(endpoint, response.status);
    this.options.logger.debug('amo.request', { method: request.method, endpoint, status: response.status });
    if (response.status < 200 || response.status > 299) {
      const retryAfter = response.message.headers['retry-after'];
      throw new HttpError(
        'amocrm',
        request.method,
        pathForErrors,
        response.status,
        response.text,
        parseRetryAfter(typeof retryAfter === 'string' ? retryAfter : null),
      );
    }
    return response;
  }

  private observe(endpoint: string, outcome: number | AmoTransportError): void {
    const signal = exchangeSignal(endpoint, outcome);
    if (signal) this.options.health?.record(signal);
  }

  private classify(error: unknown, method: string, path: string): AmoTransportError {
    if (error instanceof AmoTransportError) return error;
    const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
    const message = error instanceof Error ? error.message : String(error);
    return new AmoTransportError(method, path, code ? `${code}: ${message}` : message, 'network', NOT_SENT_CODES.has(code));
  }

  private exchange(url: URL, request: AmoHttpRequest): Promise<AmoHttpResponse> {
    const { timeoutMs } = this.options;
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'Accept-Encoding': 'gzip, deflate, br',
      'User-Agent': 'amobridge',
      ...request.headers,
    };
    if (request.token) headers.Authorization = `Bearer ${request.token}`;
    if (request.body !== undefined) {
      headers['Content-Type'] = request.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(request.body));
    }
    const lib = url.protocol === 'https:' ? https : http;

    return new Promise<AmoHttpResponse>((resolve, reject) => {
      let settled = false;
      const finish = (error: unknown, value?: AmoHttpResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (value) resolve(value);
        else reject(error);
      };
      // One deadline for the whole exchange: a server that sends headers and then
      // stalls mid-body times out too.
      const timer = setTimeout(() => {
        finish(new AmoTransportError(request.method, url.pathname, `no complete answer within ${timeoutMs} ms`, 'timeout', false));
        req.destroy();
      }, timeoutMs);

      const req = lib.request(url, { method: request.method, headers, agent: this.agent }, (message) => {
        // Bytes, not strings: decoding each chunk on its own would cut multi-byte
        // characters at chunk boundaries (the amocrm-js defect this replaces).
        const chunks: Buffer[] = [];
        message.on('data', (chunk: Buffer) => chunks.push(chunk));
        message.on('error', (error) => finish(error));
        message.on('close', () => {
          if (!message.complete) finish(new Error('connection closed before the answer was complete'));
        });
        message.on('end', () => {
          decodeBody(Buffer.concat(chunks), message.headers['content-encoding']).then(
            (text) => finish(undefined, { status: message.statusCode ?? 0, text, message }),
            (error: unknown) => finish(error),
          );
        });
      });
      req.on('error', (error) => finish(error));
      req.end(request.body);
    });
  }
}

async function decodeBody(raw: Buffer, encoding: string | undefined): Promise<string> {
  let bytes = raw;
  if (raw.length > 0) {
    const coding = (encoding ?? '').trim().toLowerCase();
    if (coding === 'gzip' || coding === 'x-gzip') bytes = await gunzip(raw);
    else if (coding === 'deflate') bytes = await inflate(raw);
    else if (coding === 'br') bytes = await brotli(raw);
  }
  // amoCRM answers UTF-8; the whole body is decoded at once (a leading BOM is dropped).
  return new TextDecoder('utf-8').decode(bytes);
}

export interface RetryPolicy {
  /** Retries after the first attempt (default 6). */
  retries: number;
  /** Delay before the first retry; doubles (randomized ×1–2) up to 30 s. */
  minDelayMs: number;
  /** A Retry-After longer than this is not waited for here: the error goes to the caller (job queue). */
  maxRetryAfterMs?: number;
}

/**
 * Whether another attempt is safe and useful. 429, 5xx, 408 and transport failures are
 * transient. A POST (a create) is retried only when amoCRM certainly did not act on it
 * (429, or no connection at all): after a timeout or a 5xx its outcome is unknown, and
 * since amoCRM has no idempotency keys a blind retry could create a second deal
 * (docs/contracts.md: one empty search does not prove a lost create did not happen); the caller's
 * find-or-create owns that decision.
 */
export function shouldRetry(error: unknown, idempotent: boolean, maxRetryAfterMs: number): boolean {
  if (error instanceof HttpError) {
    if (error.retryAfterMs !== undefined && error.retryAfterMs > maxRetryAfterMs) return false;
    if (error.status === 429) return true;
    if (error.status === 408 || error.status >= 500) return idempotent;
    return false;
  }
  if (error instanceof AmoTransportError) return idempotent || error.notSent;
  return false;
}

/** Runs `attempt` under p-retry with the amoCRM policy, waiting out any Retry-After. */
export function withRetries<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  context: { idempotent: boolean; logger: Logger; method: string; endpoint: string },
): Promise<T> {
  const maxRetryAfterMs = policy.maxRetryAfterMs ?? 60_000;
  return pRetry(attempt, {
    retries: policy.retries,
    minTimeout: policy.minDelayMs,
    maxTimeout: 30_000,
    factor: 2,
    randomize: true,
    shouldRetry: ({ error }) => shouldRetry(error, context.idempotent, maxRetryAfterMs),
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (retriesLeft <= 0 || !shouldRetry(error, context.idempotent, maxRetryAfterMs)) return;
      const retryAfterMs = error instanceof HttpError ? error.retryAfterMs : undefined;
      context.logger.warn('amo.request.retry', {
        method: context.method,
        endpoint: context.endpoint,
        attempt: attemptNumber,
        retriesLeft,
        error: error.message.slice(0, 300),
        retryAfterMs,
      });
      // p-retry's own backoff follows; together they never wait less than the server asked.
      if (retryAfterMs) await sleep(retryAfterMs);
    },
  });
}
