import express, { type Router } from 'express';
import { parseObject, type SimContext } from '../context.js';
import { queryString, sendHal } from '../http.js';
import { ProblemError } from '../problem.js';
import { renderWebhook } from '../render.js';
import { webhookDeleteSchema, webhookInputSchema } from '../schemas.js';
import { filterObject } from './listing.js';

/**
 * Webhook subscriptions (amocrm.ru/developers/content/crm_platform/webhooks-api):
 * GET /api/v4/webhooks (`filter[destination]`), POST /api/v4/webhooks
 * `{destination, settings: ["status_lead", "update_lead", …], sort?}` (adding a destination
 * that exists updates its settings), DELETE /api/v4/webhooks `{destination}` → 204.
 */
export function webhooksRouter(ctx: SimContext): Router {
  const router = express.Router();
  const { state } = ctx;

  router.get('/api/v4/webhooks', (req, res) => {
    const destination = queryString(filterObject(req).destination);
    const hooks = [...state.webhooks.values()].filter((w) => destination === undefined || w.destination === destination);
    if (hooks.length === 0) return sendHal(req, res, 204);
    // The list has no `_links` or paging (see the webhooks-api response example).
    sendHal(req, res, 200, { _total_items: hooks.length, _embedded: { webhooks: hooks.map(renderWebhook) } });
  });

  router.post('/api/v4/webhooks', (req, res) => {
    const input = parseObject(req, webhookInputSchema);
    const hook = state.upsertWebhook(input.destination, input.settings, input.sort);
    sendHal(req, res, 201, renderWebhook(hook));
  });

  router.delete('/api/v4/webhooks', (req, res) => {
    const input = parseObject(req, webhookDeleteSchema);
    if (!state.deleteWebhook(input.destination)) throw new ProblemError(404, 'Webhook not found');
    sendHal(req, res, 204);
  });

  return router;
}
