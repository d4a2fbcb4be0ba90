import express, { type Router } from 'express';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { Db } from '../../db/connect.js';
import { createPartnerAcceptor } from '../../inbox/accept-partner-event.js';
import type { Logger } from '../../logger.js';
import type { Metrics } from '../../metrics.js';
import { orderWebhookSchema } from '../../partner/schema.js';
import { sendProblem } from '../problem.js';

export interface PartnerWebhookDeps {
  db: Db;
  secret: string;
  logger: Logger;
  metrics: Metrics;
  /** Called after a commit, so the worker looks at once instead of at its next poll. */
  onAccepted(): void;
}

/**
 * The two answers, serialized once: res.json would stringify each and hash it for an
 * ETag, which no webhook sender reads (a few percent of the CPU per webhook).
 */
const JSON_TYPE = 'application/json; charset=utf-8';
const ACCEPTED = JSON.stringify({ status: 'accepted' });
const DUPLICATE = JSON.stringify({ status: 'duplicate' });

/** Company 1's order webhooks are small; anything near this is not one of them. */
const MAX_BODY = '256kb';

/**
 * POST /webhooks/partner: Standard Webhooks verification over the raw bytes (the
 * reference library: HMAC-SHA256, constant-time compare, 5-minute timestamp window),
 * then the zod schema, then one transaction (shared with the webhooks that arrive alongside,
 * see createPartnerAcceptor; the answer still follows its commit). Rejections persist nothing.
 */
export function partnerWebhookRouter(deps: PartnerWebhookDeps): Router {
  const verifier = new Webhook(deps.secret);
  const acceptor = createPartnerAcceptor(deps.db, { onCommit: (size) => deps.metrics.webhooksPerCommit.observe(size) });
  const router = express.Router();

  router.post('/webhooks/partner', express.raw({ type: () => true, limit: MAX_BODY }), async (req, res) => {
    const reject = (status: number, title: string, detail?: string) => {
      deps.metrics.webhooksReceived.inc({ source: 'partner', result: 'rejected' });
      deps.logger.warn('webhook.partner.rejected', { status, reason: detail ?? title, webhookId: req.get('webhook-id') });
      sendProblem(res, status, title, detail);
    };

    if (!req.is('application/json')) return reject(415, 'Unsupported Media Type', 'send application/json');
    const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const headers = {
      'webhook-id': req.get('webhook-id') ?? '',
      'webhook-timestamp': req.get('webhook-timestamp') ?? '',
      'webhook-signature': req.get('webhook-signature') ?? '',
    };
    try {
      verifier.verify(raw, headers, { jsonParse: false });
    } catch (error) {
      const detail = error instanceof WebhookVerificationError ? error.message : 'signature check failed';
      return reject(401, 'Invalid webhook signature', detail);
    }

    const text = raw.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text, refuseNul);
    } catch (error) {
      if (error instanceof NulCharacterError) return reject(400, 'Invalid order webhook', error.message);
      return reject(400, 'Malformed body', 'the body is not JSON');
    }
    const parsed = orderWebhookSchema.safeParse(json);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
      return reject(400, 'Invalid order webhook', detail);
    }

    const result = await acceptor.accept({ webhookId: headers['webhook-id'], rawBody: text, event: parsed.data });
    const order = parsed.data.data;
    if (!result.accepted) {
      deps.metrics.webhooksReceived.inc({ source: 'partner', result: 'duplicate' });
      deps.logger.info('webhook.partner.duplicate', { webhookId: headers['webhook-id'], orderId: order.id });
      return res.status(200).set('content-type', JSON_TYPE).end(DUPLICATE);
    }
    deps.metrics.webhooksReceived.inc({ source: 'partner', result: 'accepted' });
    deps.logger.info('webhook.partner.accepted', {
      webhookId: headers['webhook-id'],
      type: parsed.data.type,
      orderId: order.id,
      inboxId: result.inboxId,
    });
    deps.onAccepted();
    return res.status(202).set('content-type', JSON_TYPE).end(ACCEPTED);
  });

  return router;
}

/**
 * JSON may spell U+0000 as `\u0000`, but PostgreSQL text cannot hold it: such a webhook
 * would fail at the database on every retry. It is refused up front as bad input instead.
 */
class NulCharacterError extends Error {}
function refuseNul(key: string, value: unknown): unknown {
  if (typeof value === 'string' && value.includes('\u0000')) {
    throw new NulCharacterError(`${key || '(body)'}: text must not contain the NUL character (U+0000)`);
  }
  return value;
}
