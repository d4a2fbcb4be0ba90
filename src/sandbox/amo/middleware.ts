import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { requestMeta } from './http.js';
import { problem, sendProblem } from './problem.js';

/**
 * What stands between a client and the routes: the request log, amoCRM's rate limit, the
 * injectable faults and the bearer-token check.
 */

export interface RequestRecord {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Path with the query string, for checks on batch sizes and filters. */
  url: string;
  status: number;
  /** Epoch ms when the request arrived. */
  at: number;
  /** Content-Type of the answer, without parameters; null for a body-less one. */
  contentType: string | null;
}

export interface StatsFilter {
  method?: string;
  pathPrefix?: string;
  status?: number;
}

export interface AmoStats {
  requests: RequestRecord[];
  /**
   * Requests that arrived but were never answered (a hang, or a connection cut before the
   * answer): the client spent a call on each. `status` is 0.
   */
  unanswered: RequestRecord[];
  count(filter?: StatsFilter): number;
  reset(): void;
}

export function createStats(): AmoStats {
  const requests: RequestRecord[] = [];
  const unanswered: RequestRecord[] = [];
  return {
    requests,
    unanswered,
    count(filter = {}) {
      return requests.filter(
        (r) =>
          (filter.method === undefined || r.method === filter.method.toUpperCase()) &&
          (filter.pathPrefix === undefined || r.path.startsWith(filter.pathPrefix)) &&
          (filter.status === undefined || r.status === filter.status),
      ).length;
    },
    reset() {
      requests.length = 0; // in place: tests may hold the array
      unanswered.length = 0;
    },
  };
}

/**
 * Logs every answered request in `requests`; one left hanging or cut off goes to
 * `unanswered` once its connection closes.
 */
export function recordRequests(stats: AmoStats, now: () => number): RequestHandler {
  return (req, res, next) => {
    const at = now();
    const { method } = req;
    const url = req.originalUrl;
    const path = url.split('?')[0] ?? url;
    res.on('finish', () => {
      const type = res.getHeader('content-type');
      const contentType = typeof type === 'string' ? (type.split(';')[0] ?? type).trim() : null;
      stats.requests.push({ method, path, url, status: res.statusCode, at, contentType });
    });
    res.on('close', () => {
      if (!res.writableFinished) stats.unanswered.push({ method, path, url, status: 0, at, contentType: null });
    });
    next();
  };
}

export interface AmoFaults {
  /** Added to every API and OAuth answer. */
  latencyMs: number;
  /** Share (0..1) of requests answered 500 before anything is done. */
  errorRate: number;
  /** 503 (an HTML gateway page) for everything. */
  outage: boolean;
  /** Never answer (the client must time out). */
  hang: boolean;
  /**
   * amoCRM's 429 comes as problem+json, with no body, or as an HTML gateway page; by
   * default ('rotate') the three take turns, so a client cannot lean on any one of them.
   */
  rateLimit429Body: 'rotate' | 'json' | 'empty' | 'html';
  /** 403 with an HTML page for everything: amoCRM blocks an integration that keeps breaking the limit. */
  blocked: boolean;
  /**
   * Share (0..1) of POST/PATCH /api/v4 requests that are carried out but whose answer is
   * lost: answered 500 (`failAfterWriteMode: 'error'`), never answered (`'hang'`: the
   * client times out) or cut off by a TCP reset (`'reset'`). A create whose outcome the
   * client cannot know.
   */
  failAfterWriteRate: number;
  failAfterWriteMode: 'error' | 'hang' | 'reset';
  /**
   * Share (0..1) of /api/v4 requests that fail at random, each in one of `flakyModes`
   * drawn at random: `unavailable` (503, the gateway's HTML page, nothing done),
   * `timeout` (never answered) or `lostAfterWrite` (a write carried out, then its
   * connection cut before the answer; a read draws one of the other modes instead).
   */
  flakyRate: number;
  flakyModes: Array<'unavailable' | 'timeout' | 'lostAfterWrite'>;
  /** The methods `flakyRate` applies to (default all). */
  flakyMethods: string[] | null;
}

export function defaultFaults(): AmoFaults {
  return {
    latencyMs: 0,
    errorRate: 0,
    outage: false,
    hang: false,
    rateLimit429Body: 'rotate',
    blocked: false,
    failAfterWriteRate: 0,
    failAfterWriteMode: 'error',
    flakyRate: 0,
    flakyModes: ['unavailable', 'timeout', 'lostAfterWrite'],
    flakyMethods: null,
  };
}

function nginxPage(status: number, title: string): string {
  return `<html>\r\n<head><title>${status} ${title}</title></head>\r\n<body>\r\n<center><h1>${status} ${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

const BODIES_429 = ['empty', 'html', 'json'] as const;

/**
 * At most `rps` requests are let through in any sliding one-second window (by arrival time
 * here); the rest get 429. Only requests let through fill the window, so a client that
 * exceeds the limit loses exactly the excess rather than being locked out.
 */
export function rateLimit(rps: number, faults: AmoFaults, now: () => number): RequestHandler {
  const passed: number[] = [];
  let refused = 0;
  return (_req, res, next) => {
    const t = now();
    while (passed.length && (passed[0] ?? 0) <= t - 1000) passed.shift();
    if (passed.length < rps) {
      passed.push(t);
      next();
      return;
    }
    res.status(429);
    const body = faults.rateLimit429Body === 'rotate' ? BODIES_429[refused % BODIES_429.length] : faults.rateLimit429Body;
    refused++;
    switch (body) {
      case 'empty':
        // amoCRM's own PHP client has a path for a 429 with no body apart from one whose body
        // is not JSON (amocrm/amocrm-api-php, AmoCRMApiRequest::parseResponse, checkHttpStatus).
        res.end();
        return;
      case 'html':
        // amoCRM's gateway answers 429 with HTML ("почему 429 отдает html, а не json",
        // amocrm/amocrm-api-php#526; #517 added an exception for it).
        res.type('text/html').send(nginxPage(429, 'Too Many Requests'));
        return;
      default:
        // Kommo's documented 429 body (developers.kommo.com, "HTTP status codes").
        res
          .type('application/problem+json')
          .send(
            JSON.stringify(
              problem(429, 'You have sent too many requests in a given amount of time. Please try again later.'),
            ),
          );
    }
  };
}

export function injectFaults(faults: AmoFaults): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    if (faults.hang) return; // leave the request open; close() drops the socket
    if (faults.latencyMs > 0) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.blocked) {
      res.status(403).type('text/html').send(nginxPage(403, 'Forbidden'));
      return;
    }
    if (faults.outage) {
      res.status(503).type('text/html').send(nginxPage(503, 'Service Temporarily Unavailable'));
      return;
    }
    if (faults.errorRate > 0 && Math.random() < faults.errorRate) {
      sendProblem(res, 500, 'Internal server error');
      return;
    }
    // Only API writes: an OAuth answer lost this way would strand the client for good.
    const writes = (req.method === 'POST' || req.method === 'PATCH') && req.originalUrl.startsWith('/api/v4/');
    const flaky = faults.flakyRate > 0 && req.originalUrl.startsWith('/api/v4/') && (faults.flakyMethods?.includes(req.method) ?? true);
    if (flaky && Math.random() < faults.flakyRate) {
      const modes = faults.flakyModes.filter((m) => writes || m !== 'lostAfterWrite');
      const mode = modes[Math.floor(Math.random() * modes.length)];
      if (mode === 'timeout') return; // left open, as faults.hang
      if (mode === 'unavailable') {
        res.status(503).type('text/html').send(nginxPage(503, 'Service Temporarily Unavailable'));
        return;
      }
      if (mode === 'lostAfterWrite') requestMeta(req).failAfterWrite = 'reset';
    }
    if (writes && faults.failAfterWriteRate > 0 && Math.random() < faults.failAfterWriteRate) {
      requestMeta(req).failAfterWrite = faults.failAfterWriteMode;
    }
    next();
  };
}

/**
 * Bearer auth for /api/v4. amoCRM's answer to a missing or bad token:
 * `{"title":"Unauthorized","type":"https://httpstatus.es/401","status":401,"detail":"Invalid user name or password"}`
 * (as captured from Kommo, amoCRM's international twin).
 */
export function requireBearer(isValid: (token: string) => boolean): RequestHandler {
  return (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match?.[1] || !isValid(match[1])) {
      sendProblem(res, 401, 'Invalid user name or password');
      return;
    }
    next();
  };
}
