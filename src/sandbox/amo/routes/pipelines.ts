import express, { type Router } from 'express';
import type { SimContext } from '../context.js';
import { baseUrl, idParam, notFound, readPaging, selfLink, sendHal } from '../http.js';
import { renderCustomField, renderPipeline, renderStatus } from '../render.js';
import { entityTypeSchema } from '../schemas.js';

/**
 * Pipelines with their statuses (statuses under `_embedded.statuses`), and the custom field
 * definitions of leads and contacts.
 */
export function pipelinesRouter(ctx: SimContext): Router {
  const router = express.Router();
  const { state } = ctx;

  router.get('/api/v4/leads/pipelines', (req, res) => {
    const base = baseUrl(req);
    sendHal(req, res, 200, {
      _total_items: state.pipelines.length,
      _links: selfLink(`${base}/api/v4/leads/pipelines`),
      _embedded: { pipelines: [...state.pipelines].sort((a, b) => a.sort - b.sort).map((p) => renderPipeline(p, base)) },
    });
  });

  router.get('/api/v4/leads/pipelines/:id', (req, res, next) => {
    const id = idParam(req.params.id);
    if (id === undefined) return next();
    const pipeline = state.pipeline(id);
    // amoCRM: {"title":"Not Found","type":"https://httpstatus.es/404","status":404,"detail":"Pipeline not found"}
    // (amocrm/amocrm-api-php#92)
    if (!pipeline) throw notFound('Pipeline');
    sendHal(req, res, 200, renderPipeline(pipeline, baseUrl(req)));
  });

  router.get('/api/v4/leads/pipelines/:id/statuses', (req, res, next) => {
    const id = idParam(req.params.id);
    if (id === undefined) return next();
    const pipeline = state.pipeline(id);
    if (!pipeline) throw notFound('Pipeline');
    const base = baseUrl(req);
    sendHal(req, res, 200, {
      _total_items: pipeline.statuses.length,
      _links: selfLink(`${base}/api/v4/leads/pipelines/${id}/statuses`),
      _embedded: { statuses: pipeline.statuses.map((s) => renderStatus(s, base)) },
    });
  });

  router.get('/api/v4/leads/pipelines/:id/statuses/:statusId', (req, res, next) => {
    const id = idParam(req.params.id);
    const statusId = idParam(req.params.statusId);
    if (id === undefined || statusId === undefined) return next();
    const status = state.status(id, statusId);
    if (!status) throw notFound('Status');
    sendHal(req, res, 200, renderStatus(status, baseUrl(req)));
  });

  router.get('/api/v4/:entity/custom_fields', (req, res, next) => {
    const entity = entityTypeSchema.safeParse(req.params.entity);
    if (!entity.success) return next();
    // Custom field lists page by 50 at most.
    const { page, limit } = readPaging(req.query, 50);
    const all = [...state.customFields[entity.data]].sort((a, b) => a.sort - b.sort);
    const slice = all.slice((page - 1) * limit, page * limit);
    if (slice.length === 0) return sendHal(req, res, 204);
    const base = baseUrl(req);
    const href = (p: number): string => `${base}/api/v4/${entity.data}/custom_fields?page=${p}&limit=${limit}`;
    const pageCount = Math.ceil(all.length / limit);
    sendHal(req, res, 200, {
      _total_items: all.length,
      _page: page,
      _page_count: pageCount,
      _links: {
        self: { href: href(page) },
        ...(page < pageCount ? { next: { href: href(page + 1) } } : {}),
        last: { href: href(pageCount) },
      },
      _embedded: { custom_fields: slice.map((f) => renderCustomField(f, base)) },
    });
  });

  router.get('/api/v4/:entity/custom_fields/:id', (req, res, next) => {
    const entity = entityTypeSchema.safeParse(req.params.entity);
    const id = idParam(req.params.id);
    if (!entity.success || id === undefined) return next();
    const field = state.customFields[entity.data].find((f) => f.id === id);
    if (!field) throw notFound('Custom field');
    sendHal(req, res, 200, renderCustomField(field, baseUrl(req)));
  });

  return router;
}
