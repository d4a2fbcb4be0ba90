import express, { type Router } from 'express';
import { parseBatch, parseObject, requestIdOf, type SimContext } from '../context.js';
import { baseUrl, idParam, notFound, queryString, queryWith, readPaging, selfLink, sendHal, sendPage } from '../http.js';
import { ErrorCollector } from '../problem.js';
import { renderContact } from '../render.js';
import { contactInputSchema, contactPatchSchema } from '../schemas.js';
import { API_USER_ID } from '../seed.js';
import { commonFilter, filterObject, sortItems } from './listing.js';

/** Largest batch the simulator takes for POST/PATCH of contacts and leads. */
export const MAX_BATCH = 250;

/**
 * GET /api/v4/contacts (?query= full-text, filter[id][], with=leads, 204 when empty),
 * GET /api/v4/contacts/:id, POST /api/v4/contacts, PATCH /api/v4/contacts[/:id].
 */
export function contactsRouter(ctx: SimContext): Router {
  const router = express.Router();
  const { state } = ctx;

  router.get('/api/v4/contacts', (req, res) => {
    const paging = readPaging(req.query);
    const matchesFilter = commonFilter(filterObject(req));
    const query = queryString(req.query.query);
    const withLeads = queryWith(req.query).has('leads');
    const found = [...state.contacts.values()].filter(
      (c) =>
        !c.is_deleted &&
        matchesFilter(c) &&
        (query === undefined || (state.isSearchable('contact', c.id) && state.matchesQuery(c, query))),
    );
    const base = baseUrl(req);
    sendPage(req, res, 'contacts', sortItems(req, found), paging, (c) => renderContact(state, c, base, withLeads));
  });

  router.get('/api/v4/contacts/:id', (req, res, next) => {
    const id = idParam(req.params.id);
    if (id === undefined) return next();
    const contact = state.contacts.get(id);
    // amoCRM answers an unknown id with 204 No Content rather than 404.
    if (!contact || contact.is_deleted) return sendHal(req, res, 204);
    sendHal(req, res, 200, renderContact(state, contact, baseUrl(req), queryWith(req.query).has('leads')));
  });

  router.post('/api/v4/contacts', (req, res) => {
    const items = parseBatch(req, contactInputSchema, MAX_BATCH);
    const errors = new ErrorCollector();
    const writes = items.map((item, i) => state.prepareContact(item, errors, requestIdOf(item, i)));
    errors.throwIfAny();
    const base = baseUrl(req);
    const created = writes.map((w) => ({ contact: state.applyContact(null, w, API_USER_ID), requestId: w.requestId }));
    sendHal(req, res, 200, {
      _links: selfLink(`${base}/api/v4/contacts`),
      _embedded: {
        contacts: created.map(({ contact, requestId }) => ({
          id: contact.id,
          request_id: requestId,
          _links: selfLink(`${base}/api/v4/contacts/${contact.id}`),
        })),
      },
    });
  });

  router.patch('/api/v4/contacts', (req, res) => {
    const items = parseBatch(req, contactPatchSchema, MAX_BATCH);
    const errors = new ErrorCollector();
    const writes = items.map((item, i) => {
      const rid = requestIdOf(item, i);
      const current = item.id === undefined ? undefined : state.contacts.get(item.id);
      if (item.id === undefined) errors.add(rid, 'NotBlank', 'id', 'This value should not be blank.');
      else if (!current || current.is_deleted) errors.add(rid, 'NotFound', 'id', 'Contact not found.');
      return { current, write: state.prepareContact(item, errors, rid) };
    });
    errors.throwIfAny();
    const base = baseUrl(req);
    const updated = writes.map(({ current, write }) => ({
      contact: state.applyContact(current ?? null, write, API_USER_ID),
      requestId: write.requestId,
    }));
    sendHal(req, res, 200, {
      _links: selfLink(`${base}/api/v4/contacts`),
      _embedded: {
        contacts: updated.map(({ contact, requestId }) => ({
          id: contact.id,
          name: contact.name,
          updated_at: contact.updated_at,
          request_id: requestId,
          _links: selfLink(`${base}/api/v4/contacts/${contact.id}`),
        })),
      },
    });
  });

  router.patch('/api/v4/contacts/:id', (req, res, next) => {
    const id = idParam(req.params.id);
    if (id === undefined) return next();
    const current = state.contacts.get(id);
    if (!current || current.is_deleted) throw notFound('Contact');
    const item = parseObject(req, contactPatchSchema);
    const errors = new ErrorCollector();
    const write = state.prepareContact(item, errors, '0');
    errors.throwIfAny();
    const contact = state.applyContact(current, write, API_USER_ID);
    sendHal(req, res, 200, {
      id: contact.id,
      name: contact.name,
      updated_at: contact.updated_at,
      _links: selfLink(`${baseUrl(req)}/api/v4/contacts/${contact.id}`),
    });
  });

  return router;
}
