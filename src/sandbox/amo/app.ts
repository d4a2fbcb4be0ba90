import express, { type ErrorRequestHandler, type Express } from 'express';
import type { SimContext } from './context.js';
import { parseQuery } from './http.js';
import {
  injectFaults,
  rateLimit,
  recordRequests,
  requireBearer,
  type AmoFaults,
  type AmoStats,
} from './middleware.js';
import { oauthRouter, type TokenStore } from './oauth.js';
import { ProblemError, ValidationError, problem, sendProblem } from './problem.js';
import { accountRouter } from './routes/account.js';
import { contactsRouter } from './routes/contacts.js';
import { leadsRouter } from './routes/leads.js';
import { notesRouter } from './routes/notes.js';
import { pipelinesRouter } from './routes/pipelines.js';
import { webhooksRouter } from './routes/webhooks.js';

export interface AppParts {
  ctx: SimContext;
  tokens: TokenStore;
  faults: AmoFaults;
  stats: AmoStats;
  rateLimitRps: number;
  now: () => number;
}

/**
 * amoCRM has no published request size limit; the simulator refuses bodies over 2 MB, far
 * above what 250 leads take.
 */
const BODY_LIMIT = '2mb';

function isBodyParserError(err: unknown): err is { type: string; status: number; message: string } {
  return typeof err === 'object' && err !== null && 'type' in err && 'status' in err;
}

const errorHandler: ErrorRequestHandler = (err: unknown, _req, res, next) => {
  if (res.headersSent) return next(err);
  if (err instanceof ValidationError) {
    res
      .status(400)
      .type('application/problem+json')
      .send(JSON.stringify(problem(400, 'Request validation failed', { 'validation-errors': err.requestErrors })));
    return;
  }
  if (err instanceof ProblemError) return sendProblem(res, err.status, err.detail);
  if (isBodyParserError(err)) {
    if (err.type === 'entity.parse.failed') return sendProblem(res, 400, 'Request body is not valid JSON');
    if (err.type === 'entity.too.large') return sendProblem(res, 413, 'Request body is too large');
    return sendProblem(res, err.status >= 400 && err.status < 500 ? err.status : 400, err.message);
  }
  sendProblem(res, 500, err instanceof Error ? err.message : 'Internal server error');
};

/**
 * The express app: request log → rate limit → faults → auth → routes, in that order, so a
 * throttled or faulted request never reaches (or changes) the data.
 */
export function createAmoApp(parts: AppParts): Express {
  const { ctx, tokens, faults, stats, now } = parts;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', parseQuery);

  app.use(recordRequests(stats, now));
  // amoCRM counts requests per real second, whatever the account's clock says: a test that
  // holds that clock still (to land changes in one second) must not freeze the window.
  app.use(['/api/v4', '/oauth2'], rateLimit(parts.rateLimitRps, faults, Date.now), injectFaults(faults));
  app.use(oauthRouter(tokens, BODY_LIMIT));
  // v4 takes JSON whatever the Content-Type says; a form or broken body fails to parse → 400.
  app.use('/api/v4', requireBearer((t) => tokens.isValidAccessToken(t)), express.json({ type: () => true, limit: BODY_LIMIT }));

  app.use(accountRouter(ctx));
  app.use(leadsRouter(ctx));
  app.use(contactsRouter(ctx));
  app.use(pipelinesRouter(ctx));
  app.use(notesRouter(ctx));
  app.use(webhooksRouter(ctx));

  app.use((req, res) => sendProblem(res, 404, `No route for ${req.method} ${req.path}`));
  app.use(errorHandler);
  return app;
}
