import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Db } from '../../db/connect.js';
import { acceptAmoEvents } from '../../inbox/accept-amo-event.js';
import { type AmoWebhookAccount, parseAmoWebhookBody } from '../../inbox/amo-webhook-body.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../metrics.js';
import { sendProblem } from '../problem.js';

export interface AmoWebhookDeps {
  db: Db;
  /** The path secret (`AMO_WEBHOOK_SECRET`): amoCRM signs nothing, so the URL is the credential. */
  secret: string;
  /** The configured account; `id` once the bridge has learnt it from the API. */
  account(): { id?: number; subdomain: string };
  logger: Logger;
  metrics: Metrics;
  /** Called after a commit, so the worker looks at once instead of at its next poll. */
  onAccepted(): void;
  /** How long stage events wait to gather into one batched read (tests shorten it). */
  gatherMs?: number;
}

/** A 1000-lead full-shape body is well under this; a body near it is not amoCRM's. */
export const AMO_WEBHOOK_MAX_BODY_BYTES = 1024 * 1024;

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** Equal-length digests, so neither the content nor the length of the secret leaks through timing. */
function secretMatches(expected: Buffer, given: string): boolean {
  return timingSafeEqual(expected, digest(given));
}

/** Why the body's account is not ours, or undefined when it is. */
function foreignAccount(body: AmoWebhookAccount, ours: { id?: number; subdomain: string }): string | undefined {
  // The id is authoritative when both sides know it (a subdomain can be renamed).
  if (body.id !== undefined && ours.id !== undefined) {
    return body.id === ours.id ? undefined : `account[id] ${body.id} is not this bridge's account`;
  }
  // Old bodies (2018 and earlier) name the account by subdomain only.
  if (body.subdomain !== undefined) {
    return body.subdomain.toLowerCase() === ours.subdomain.toLowerCase()
      ? undefined
      : `account[subdomain] "${body.subdomain}" is not this bridge's account`;
  }
  return 'the body names the account by account[id] only, and the bridge does not know its account id yet';
}

/**
 * POST /webhooks/amocrm/:secret. In order: the path secret (a wrong one is answered as an
 * unknown route, so the route's existence does not leak), the content type, the size, the
 * form body, the account; then one transaction, then 200. No outbound I/O: amoCRM waits
 * 2 s for the answer and switches the webhook off after 100 failures in 2 hours
 * (amocrm.ru/developers/content/crm_platform/webhooks-format). Rejections persist nothing.
 */
export function amoWebhookRouter(deps: AmoWebhookDeps): Router {
  const expectedSecret = digest(deps.secret);
  const readBody = express.raw({ type: () => true, limit: AMO_WEBHOOK_MAX_BODY_BYTES });
  const router = express.Router();

  const reject = (res: Response, status: number, title: string, detail: string, dealIds: number[] = []) => {
    deps.metrics.webhooksReceived.inc({ source: 'amocrm', result: 'rejected' });
    deps.logger.warn('webhook.amocrm.rejected', { status, reason: detail, ...(dealIds.length ? { dealIds } : {}) });
    sendProblem(res, status, title, detail);
  };

  router.post('/webhooks/amocrm/:secret', (req: Request<{ secret: string }>, res: Response, next: NextFunction) => {
    if (!secretMatches(expectedSecret, req.params.secret)) {
      deps.metrics.webhooksReceived.inc({ source: 'amocrm', result: 'rejected' });
      deps.logger.warn('webhook.amocrm.rejected', { status: 404, reason: 'wrong path secret' });
      // Leave the router: the app's own not-found handler answers, byte for byte as for any unknown path.
      return next('router');
    }
    if (!req.is('application/x-www-form-urlencoded')) {
      return reject(res, 415, 'Unsupported Media Type', 'send application/x-www-form-urlencoded, as amoCRM does');
    }
    readBody(req, res, (error?: unknown) => {
      if (error) {
        const type = (error as { type?: string }).type;
        if (type === 'entity.too.large') {
          return reject(res, 413, 'Payload Too Large', `the body exceeds ${AMO_WEBHOOK_MAX_BODY_BYTES} bytes`);
        }
        if (type === 'encoding.unsupported') return reject(res, 415, 'Unsupported Media Type', 'unsupported content encoding');
        return reject(res, 400, 'Malformed body', 'the body could not be read');
      }
      handle(req, res).catch(next);
    });
  });

  async function handle(req: Request, res: Response): Promise<void> {
    const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    const parsed = parseAmoWebhookBody(raw);
    if (!parsed.ok && parsed.tooLarge) return reject(res, 413, 'Payload Too Large', parsed.error);
    if (!parsed.ok) return reject(res, 400, 'Invalid amoCRM webhook', parsed.error);
    const { account, events, ignored } = parsed.body;
    const dealIds = [...new Set(events.map((e) => e.dealId))];

    const foreign = foreignAccount(account, deps.account());
    if (foreign) return reject(res, 403, 'Forbidden', foreign, dealIds);

    if (events.length === 0) {
      // Contact, company or task events, or lead events the bridge does not act on: nothing to do, and a 2xx keeps the hook alive.
      deps.metrics.webhooksReceived.inc({ source: 'amocrm', result: 'ignored' });
      deps.logger.info('webhook.amocrm.ignored', { ignored });
      res.status(200).json({ status: 'accepted', events: 0 });
      return;
    }

    const result = await acceptAmoEvents(deps.db, { events, rawBody: raw, account, gatherMs: deps.gatherMs }).catch((error: unknown) => {
      deps.metrics.webhooksReceived.inc({ source: 'amocrm', result: 'error' });
      throw error; // 500: amoCRM delivers again later, so the events are not lost
    });
    const outcome = result.accepted > 0 ? 'accepted' : 'duplicate';
    deps.metrics.webhooksReceived.inc({ source: 'amocrm', result: outcome });
    deps.logger.info(`webhook.amocrm.${outcome}`, {
      dealIds,
      events: events.map((e) => `${e.event}:${e.dealId}`),
      accepted: result.accepted,
      duplicates: result.duplicates,
      ...(ignored.length ? { ignored } : {}),
    });
    if (result.accepted > 0) deps.onAccepted();
    res.status(200).json({ status: 'accepted', events: events.length, ...result });
  }

  return router;
}
