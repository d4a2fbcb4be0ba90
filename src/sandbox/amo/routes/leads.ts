import express, { type Router } from 'express';
import type { ParsedQs } from 'qs';
import { fireForApiChanges, parseBatch, parseObject, requestIdOf, type SimContext } from '../context.js';
import { baseUrl, idParam, notFound, queryIds, queryString, queryWith, readPaging, selfLink, sendHal, sendPage } from '../http.js';
import { ErrorCollector, ValidationError } from '../problem.js';
import { renderLead } from '../render.js';
import { complexLeadSchema, leadInputSchema, leadPatchSchema, type Lead } from '../schemas.js';
import { API_USER_ID } from '../seed.js';
import type { ContactWrite, LeadChange, LeadWrite } from '../state.js';
import { MAX_BATCH } from './contacts.js';
import { commonFilter, filterObject, sortItems } from './listing.js';

/** "You can add no more than 50 leads per request" (developers.kommo.com/reference/complex-leads). */
export const MAX_COMPLEX = 50;

/** `filter[statuses][0][pipeline_id]=…&filter[statuses][0][status_id]=…` */
function statusPairs(value: ParsedQs[string]): Array<{ pipeline_id: number; status_id: number }> | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : typeof value === 'object' ? Object.values(value) : [];
  return list.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      throw ValidationError.single('InvalidType', `filter.statuses.${i}`, 'This value should be a pipeline and a status.');
    }
    const [pipelineId] = queryIds(entry.pipeline_id, `filter.statuses.${i}.pipeline_id`) ?? [];
    const [statusId] = queryIds(entry.status_id, `filter.statuses.${i}.status_id`) ?? [];
    if (pipelineId === undefined || statusId === undefined) {
      throw ValidationError.single('NotBlank', `filter.statuses.${i}`, 'Both pipeline_id and status_id are needed.');
    }
    return { pipeline_id: pipelineId, status_id: statusId };
  });
}

/**
 * GET /api/v4/leads (filter[id][], filter[pipeline_id], filter[statuses], filter[updated_at],
 * query, order, with=contacts; 204 when empty), GET /api/v4/leads/:id, POST /api/v4/leads,
 * PATCH /api/v4/leads[/:id] and POST /api/v4/leads/complex.
 */
export function leadsRouter(ctx: SimContext): Router {
  const router = express.Router();
  const { state } = ctx;

  router.get('/api/v4/leads', (req, res) => {
    const paging = readPaging(req.query);
    const filter = filterObject(req);
    const matchesCommon = commonFilter(filter);
    const pipelineIds = queryIds(filter.pipeline_id, 'filter.pipeline_id');
    const statuses = statusPairs(filter.statuses);
    const query = queryString(req.query.query);
    const withContacts = queryWith(req.query).has('contacts');
    const found = [...state.leads.values()].filter(
      (l) =>
        !l.is_deleted &&
        matchesCommon(l) &&
        (pipelineIds === undefined || pipelineIds.includes(l.pipeline_id)) &&
        (statuses === undefined || statuses.some((s) => s.pipeline_id === l.pipeline_id && s.status_id === l.status_id)) &&
        (query === undefined || (state.isSearchable('lead', l.id) && state.matchesQuery(l, query))),
    );
    const base = baseUrl(req);
    sendPage(req, res, 'leads', sortItems(req, found), paging, (l) => renderLead(l, base, withContacts));
  });

  router.get('/api/v4/leads/:id', (req, res, next) => {
    const id = idParam(req.params.id);
    if (id === undefined) return next();
    const lead = state.leads.get(id);
    // amoCRM answers an unknown (or deleted) id with 204 No Content rather than 404.
    if (!lead || lead.is_deleted) return sendHal(req, res, 204);
    sendHal(req, res, 200, renderLead(lead, baseUrl(req), queryWith(req.query).has('contacts')));
  });

  router.post('/api/v4/leads', (req, res) => {
    const items = parseBatch(req, leadInputSchema, MAX_BATCH);
    const errors = new ErrorCollector();
    const writes = items.map((item, i) => state.prepareLead(item, null, errors, requestIdOf(item, i)));
    errors.throwIfAny();
    const changes = writes.map((w) => state.applyLead(null, w, API_USER_ID));
    const base = baseUrl(req);
    sendHal(req, res, 200, {
      _links: selfLink(`${base}/api/v4/leads`),
      _embedded: {
        leads: changes.map((c, i) => ({
          id: c.lead.id,
          request_id: writes[i]?.requestId,
          _links: selfLink(`${base}/api/v4/leads/${c.lead.id}`),
        })),
      },
    });
    fireForApiChanges(ctx, changes);
  });

  const patchOne = (current: Lead, write: LeadWrite): LeadChange => state.applyLead(current, write, API_USER_ID);

  router.patch('/api/v4/leads', (req, res) => {
    const items = parseBatch(req, leadPatchSchema, MAX_BATCH);
    const errors = new ErrorCollector();
    const writes = items.map((item, i) => {
      const rid = requestIdOf(item, i);
      const current = item.id === undefined ? undefined : state.leads.get(item.id);
      if (item.id === undefined) errors.add(rid, 'NotBlank', 'id', 'This value should not be blank.');
      else if (!current || current.is_deleted) errors.add(rid, 'NotFound', 'id', 'Lead not found.');
      return { current, write: state.prepareLead(item, current ?? null, errors, rid) };
    });
    errors.throwIfAny();
    const changes = writes.map(({ current, write }) => patchOne(current as Lead, write));
    const base = baseUrl(req);
    sendHal(req, res, 200, {
      _links: selfLink(`${base}/api/v4/leads`),
      _embedded: {
        leads: changes.map((c, i) => ({
          id: c.lead.id,
          updated_at: c.lead.updated_at,
          request_id: writes[i]?.write.requestId,
          _links: selfLink(`${base}/api/v4/leads/${c.lead.id}`),
        })),
      },
    });
    fireForApiChanges(ctx, changes);
  });

  router.patch('/api/v4/leads/:id', (req, res, next) => {
    const id = idParam(req.params.id);
    if (id === undefined) return next();
    const current = state.leads.get(id);
    if (!current || current.is_deleted) throw notFound('Lead');
    const item = parseObject(req, leadPatchSchema);
    const errors = new ErrorCollector();
    const write = state.prepareLead(item, current, errors, '0');
    errors.throwIfAny();
    const change = patchOne(current, write);
    sendHal(req, res, 200, {
      id: change.lead.id,
      updated_at: change.lead.updated_at,
      _links: selfLink(`${baseUrl(req)}/api/v4/leads/${change.lead.id}`),
    });
    fireForApiChanges(ctx, [change]);
  });

  /**
   * Leads with their contact in one call. The answer is a top-level ARRAY, not HAL, and
   * `request_id` in it is an array of strings:
   *   [{"id": 9774766, "contact_id": 12117258, "company_id": 12117260, "request_id": ["1"], "merged": false}]
   * (developers.kommo.com/reference/complex-leads). Companies are not simulated: company_id
   * is null. Duplicate control is off, so `merged` is always false.
   */
  router.post('/api/v4/leads/complex', (req, res) => {
    const items = parseBatch(req, complexLeadSchema, MAX_COMPLEX);
    const errors = new ErrorCollector();
    const plans = items.map((item, i) => {
      const rid = requestIdOf(item, i);
      const contactIn = item._embedded?.contacts?.[0];
      let contact: { existing: number } | { create: ContactWrite } | undefined;
      if (contactIn?.id !== undefined) {
        const found = state.contacts.get(contactIn.id);
        if (!found || found.is_deleted) {
          errors.add(rid, 'NotSupportedChoice', '_embedded.contacts.0.id', 'The value you selected is not a valid choice.');
        }
        contact = { existing: contactIn.id };
      } else if (contactIn) {
        contact = { create: state.prepareContact(contactIn, errors, rid) };
      }
      // The contact is linked below, once it exists.
      const write = state.prepareLead({ ...item, _embedded: { tags: item._embedded?.tags } }, null, errors, rid);
      return { rid, contact, write };
    });
    errors.throwIfAny();
    const changes: LeadChange[] = [];
    const answer = plans.map(({ rid, contact, write }) => {
      let contactId: number | null = null;
      if (contact && 'existing' in contact) contactId = contact.existing;
      else if (contact) contactId = state.applyContact(null, contact.create, API_USER_ID).id;
      const change = state.applyLead(null, { ...write, contacts: contactId === null ? undefined : [{ id: contactId, is_main: true }] }, API_USER_ID);
      changes.push(change);
      return { id: change.lead.id, contact_id: contactId, company_id: null, request_id: [rid], merged: false };
    });
    sendHal(req, res, 200, answer);
    fireForApiChanges(ctx, changes);
  });

  return router;
}
