import type { AmoState } from './state.js';
import type { Contact, CustomField, Lead, Note, Pipeline, Status, Webhook } from './schemas.js';
import { selfLink } from './http.js';

/**
 * Entities as API v4 answers them: HAL `_links.self` on everything, related entities under
 * `_embedded`. Field sets follow the response examples of amoCRM's leads-api, contacts-api,
 * leads_pipelines, custom-fields, events-and-notes and webhooks-api pages.
 */

export function renderLead(lead: Lead, base: string, withContacts: boolean): Record<string, unknown> {
  const { _embedded: embedded, ...fields } = lead;
  return {
    ...fields,
    _links: selfLink(`${base}/api/v4/leads/${lead.id}`),
    _embedded: {
      tags: embedded.tags.map((t) => ({ ...t })),
      companies: embedded.companies.map((c) => ({ id: c.id, _links: selfLink(`${base}/api/v4/companies/${c.id}`) })),
      ...(withContacts
        ? {
            contacts: embedded.contacts.map((c) => ({
              id: c.id,
              is_main: c.is_main,
              _links: selfLink(`${base}/api/v4/contacts/${c.id}`),
            })),
          }
        : {}),
    },
  };
}

export function renderContact(state: AmoState, contact: Contact, base: string, withLeads: boolean): Record<string, unknown> {
  const { _embedded: embedded, is_deleted: isDeleted, ...fields } = contact;
  void isDeleted; // not among the contact fields v4 answers
  return {
    ...fields,
    _links: selfLink(`${base}/api/v4/contacts/${contact.id}`),
    _embedded: {
      tags: embedded.tags.map((t) => ({ ...t })),
      companies: embedded.companies.map((c) => ({ id: c.id, _links: selfLink(`${base}/api/v4/companies/${c.id}`) })),
      ...(withLeads
        ? {
            leads: state.leadsOfContact(contact.id).map((l) => ({
              id: l.id,
              _links: selfLink(`${base}/api/v4/leads/${l.id}`),
            })),
          }
        : {}),
    },
  };
}

export function renderStatus(status: Status, base: string): Record<string, unknown> {
  return {
    ...status,
    _links: selfLink(`${base}/api/v4/leads/pipelines/${status.pipeline_id}/statuses/${status.id}`),
  };
}

export function renderPipeline(pipeline: Pipeline, base: string): Record<string, unknown> {
  const { statuses, ...fields } = pipeline;
  return {
    ...fields,
    _links: selfLink(`${base}/api/v4/leads/pipelines/${pipeline.id}`),
    _embedded: { statuses: [...statuses].sort((a, b) => a.sort - b.sort).map((s) => renderStatus(s, base)) },
  };
}

export function renderCustomField(field: CustomField, base: string): Record<string, unknown> {
  return { ...field, _links: selfLink(`${base}/api/v4/${field.entity_type}/custom_fields/${field.id}`) };
}

export function renderNote(note: Note, base: string): Record<string, unknown> {
  return { ...note, _links: selfLink(`${base}/api/v4/${note.entity_type}/${note.entity_id}/notes/${note.id}`) };
}

export function renderWebhook(webhook: Webhook): Record<string, unknown> {
  return { ...webhook };
}
