import express, { type Router } from 'express';
import { parseBatch, requestIdOf, type SimContext } from '../context.js';
import { baseUrl, idParam, queryIds, readPaging, selfLink, sendHal, sendPage } from '../http.js';
import { ErrorCollector } from '../problem.js';
import { renderNote } from '../render.js';
import { entityTypeSchema, noteInputSchema, type EntityType, type NoteInput } from '../schemas.js';
import { API_USER_ID } from '../seed.js';
import { filterObject } from './listing.js';
import { MAX_BATCH } from './contacts.js';

/**
 * Notes on leads and contacts (amocrm.ru/developers/content/crm_platform/events-and-notes):
 * POST /api/v4/{entity}/notes with `[{entity_id, note_type: "common", params: {text}}]`,
 * POST /api/v4/{entity}/:id/notes, GET /api/v4/{entity}/:id/notes and GET /api/v4/{entity}/notes.
 */
export function notesRouter(ctx: SimContext): Router {
  const router = express.Router();
  const { state } = ctx;

  const exists = (entity: EntityType, id: number): boolean => {
    const found = entity === 'leads' ? state.leads.get(id) : state.contacts.get(id);
    return found !== undefined && !found.is_deleted;
  };

  const addNotes = (entity: EntityType, items: NoteInput[], fixedEntityId: number | undefined) => {
    const errors = new ErrorCollector();
    const plans = items.map((item, i) => {
      const rid = requestIdOf(item, i);
      const entityId = fixedEntityId ?? item.entity_id;
      if (entityId === undefined) errors.add(rid, 'NotBlank', 'entity_id', 'This value should not be blank.');
      else if (!exists(entity, entityId)) errors.add(rid, 'NotFound', 'entity_id', 'Entity not found.');
      if (item.note_type === 'common' && (typeof item.params.text !== 'string' || item.params.text === '')) {
        errors.add(rid, 'NotBlank', 'params.text', 'This value should not be blank.');
      }
      return { rid, entityId: entityId ?? 0, item };
    });
    errors.throwIfAny();
    return plans.map(({ rid, entityId, item }) => ({ rid, note: state.addNote(entity, entityId, item, API_USER_ID) }));
  };

  const answer = (entity: EntityType, base: string, created: ReturnType<typeof addNotes>) => ({
    _links: selfLink(`${base}/api/v4/${entity}/notes`),
    _embedded: {
      notes: created.map(({ rid, note }) => ({
        id: note.id,
        entity_id: note.entity_id,
        request_id: rid,
        _links: selfLink(`${base}/api/v4/${entity}/${note.entity_id}/notes/${note.id}`),
      })),
    },
  });

  router.post('/api/v4/:entity/notes', (req, res, next) => {
    const entity = entityTypeSchema.safeParse(req.params.entity);
    if (!entity.success) return next();
    const created = addNotes(entity.data, parseBatch(req, noteInputSchema, MAX_BATCH), undefined);
    sendHal(req, res, 200, answer(entity.data, baseUrl(req), created));
  });

  router.post('/api/v4/:entity/:id/notes', (req, res, next) => {
    const entity = entityTypeSchema.safeParse(req.params.entity);
    const id = idParam(req.params.id);
    if (!entity.success || id === undefined) return next();
    const created = addNotes(entity.data, parseBatch(req, noteInputSchema, MAX_BATCH), id);
    sendHal(req, res, 200, answer(entity.data, baseUrl(req), created));
  });

  const list = (entity: EntityType, entityIds: number[] | undefined) =>
    [...state.notes.values()].filter(
      (n) => n.entity_type === entity && (entityIds === undefined || entityIds.includes(n.entity_id)),
    );

  router.get('/api/v4/:entity/notes', (req, res, next) => {
    const entity = entityTypeSchema.safeParse(req.params.entity);
    if (!entity.success) return next();
    const paging = readPaging(req.query);
    const entityIds = queryIds(filterObject(req).entity_id, 'filter.entity_id');
    const base = baseUrl(req);
    sendPage(req, res, 'notes', list(entity.data, entityIds), paging, (n) => renderNote(n, base));
  });

  router.get('/api/v4/:entity/:id/notes', (req, res, next) => {
    const entity = entityTypeSchema.safeParse(req.params.entity);
    const id = idParam(req.params.id);
    if (!entity.success || id === undefined) return next();
    const paging = readPaging(req.query);
    const base = baseUrl(req);
    sendPage(req, res, 'notes', list(entity.data, [id]), paging, (n) => renderNote(n, base));
  });

  return router;
}
