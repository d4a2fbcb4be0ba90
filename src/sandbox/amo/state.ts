import { applyCustomFieldOps, normalizeCustomFields, type CustomFieldOp } from './customFields.js';
import type { ErrorCollector } from './problem.js';
import {
  API_USER_ID,
  LOST_STATUS_ID,
  WON_STATUS_ID,
  seedCustomFields,
  seedPipelines,
  seedTags,
} from './seed.js';
import type {
  Contact,
  ContactPatch,
  CustomField,
  EntityType,
  Lead,
  LeadPatch,
  Note,
  NoteInput,
  Pipeline,
  Status,
  Tag,
  TagRef,
  Webhook,
  WebhookSetting,
} from './schemas.js';

/**
 * The simulated account's data, kept in memory and inspectable by tests. Writes go in two
 * steps, as amoCRM's batch endpoints behave all-or-nothing: `prepare*` validates an item
 * and collects errors without changing anything, `apply*` commits a prepared item.
 */

export interface AccountInfo {
  id: number;
  subdomain: string;
  name: string;
  created_at: number;
}

/** One attempt to deliver a webhook body to a destination. */
export interface WebhookDelivery {
  id: number;
  webhookId: number;
  destination: string;
  /** Top-level event keys in the body, e.g. `leads[status]`, `leads[update]`. */
  events: string[];
  leadIds: number[];
  shape: string;
  body: string;
  /** Status the destination answered, or null when none came (timeout, refused). */
  status: number | null;
  error: string | null;
  /** Epoch ms of the attempt. */
  at: number;
  durationMs: number;
  /** 1 for the first attempt, 2+ for redeliveries. */
  attempt: number;
}

/** What a write did to a lead: the copies before and after, for webhooks. */
export interface LeadChange {
  kind: 'add' | 'update' | 'delete';
  before: Lead | null;
  lead: Lead;
  changed: boolean;
  statusChanged: boolean;
}

export interface LeadWrite {
  requestId: string;
  name?: string;
  price?: number;
  placement?: { status_id: number; pipeline_id: number };
  responsible_user_id?: number;
  created_by?: number;
  updated_by?: number;
  created_at?: number;
  closed_at?: number | null;
  loss_reason_id?: number | null;
  fields: CustomFieldOp[];
  tagsSet?: TagRef[];
  tagsAdd: TagRef[];
  tagsDelete: TagRef[];
  contacts?: Array<{ id: number; is_main: boolean }>;
  company_id?: number | null;
}

export interface ContactWrite {
  requestId: string;
  name?: string;
  first_name?: string;
  last_name?: string;
  responsible_user_id?: number;
  created_by?: number;
  updated_by?: number;
  created_at?: number;
  fields: CustomFieldOp[];
  tagsSet?: TagRef[];
  tagsAdd: TagRef[];
  tagsDelete: TagRef[];
}

/** The lead fields `prepareLead` reads: the shared part of the create, patch and complex bodies. */
type LeadFieldsInput = Omit<LeadPatch, '_embedded' | 'id'> & {
  _embedded?: {
    tags?: TagRef[] | null;
    contacts?: Array<{ id?: number; is_main?: boolean }>;
    companies?: Array<{ id?: number }>;
  };
};

export interface AmoStateOptions {
  accountId: number;
  subdomain: string;
  /** Epoch milliseconds; injectable so tests can move time. */
  now: () => number;
  /** Contacts and leads younger than this are not found by `?query=`. */
  searchIndexDelayMs: number;
}

const CLOSED_STATUSES = new Set([WON_STATUS_ID, LOST_STATUS_ID]);

/** Where the id sequences of the account's records start (each id is one past the last). */
const FIRST_IDS = { contact: 40_100_000, lead: 20_100_000, note: 90_100_000 };

function copy<T>(value: T): T {
  return structuredClone(value);
}

export class AmoState {
  readonly account: AccountInfo;
  readonly pipelines: Pipeline[];
  readonly customFields: Record<EntityType, CustomField[]>;
  /** One pool for lead and contact tags (amoCRM keeps them per entity type; nothing here needs that). */
  readonly tags = new Map<number, Tag>();
  readonly contacts = new Map<number, Contact>();
  readonly leads = new Map<number, Lead>();
  readonly notes = new Map<number, Note>();
  readonly webhooks = new Map<number, Webhook>();
  readonly deliveries: WebhookDelivery[] = [];

  private readonly seq = { ...FIRST_IDS, webhook: 830_000, tag: 500_000, delivery: 0 };
  /** Epoch ms from which an entity is visible to `?query=` search (amoCRM's index trails creates). */
  private readonly searchableFrom = new Map<string, number>();

  constructor(private readonly options: AmoStateOptions) {
    const now = this.nowSec();
    this.account = { id: options.accountId, subdomain: options.subdomain, name: 'Company 2', created_at: now - 86_400 * 365 };
    this.pipelines = seedPipelines(options.accountId);
    this.customFields = seedCustomFields(options.accountId);
    for (const tag of seedTags()) this.tags.set(tag.id, tag);
  }

  now(): number {
    return this.options.now();
  }

  nowSec(): number {
    return Math.floor(this.options.now() / 1000);
  }

  /**
   * Forgets every contact, deal and note and starts their ids again from the first: the
   * simulator restarted without its data, or an account restored from an old backup, so
   * ids the bridge recorded may come back on other records. The settings (pipelines,
   * fields, tags) and the webhook subscriptions stay.
   */
  forgetRecords(): void {
    this.contacts.clear();
    this.leads.clear();
    this.notes.clear();
    this.searchableFrom.clear();
    Object.assign(this.seq, FIRST_IDS);
  }

  nextDeliveryId(): number {
    return ++this.seq.delivery;
  }

  // -------------------------------------------------------------------------------------------
  // Look-ups by name, for tests and the simulator's own hooks
  // -------------------------------------------------------------------------------------------

  mainPipeline(): Pipeline {
    const main = this.pipelines.find((p) => p.is_main);
    if (!main) throw new Error('amo simulator: no main pipeline');
    return main;
  }

  pipeline(id: number): Pipeline | undefined {
    return this.pipelines.find((p) => p.id === id);
  }

  status(pipelineId: number, statusId: number): Status | undefined {
    return this.pipeline(pipelineId)?.statuses.find((s) => s.id === statusId);
  }

  pipelineIdByName(name: string): number {
    const pipeline = this.pipelines.find((p) => p.name === name);
    if (!pipeline) throw new Error(`amo simulator: no pipeline named "${name}"`);
    return pipeline.id;
  }

  /** The status's name; 142/143 are looked up in the main pipeline unless one is given. */
  statusNameById(statusId: number, pipelineId?: number): string {
    const pipelines = pipelineId === undefined ? [this.mainPipeline(), ...this.pipelines] : this.pipelines.filter((p) => p.id === pipelineId);
    for (const p of pipelines) {
      const status = p.statuses.find((s) => s.id === statusId);
      if (status) return status.name;
    }
    throw new Error(`amo simulator: no status ${statusId}`);
  }

  statusIdByName(name: string, pipelineName?: string): number {
    const pipeline = pipelineName === undefined ? this.mainPipeline() : this.pipeline(this.pipelineIdByName(pipelineName));
    const status = pipeline?.statuses.find((s) => s.name === name);
    if (!status) throw new Error(`amo simulator: no status "${name}" in pipeline "${pipeline?.name}"`);
    return status.id;
  }

  fieldIdByName(entity: EntityType, name: string): number {
    const def = this.customFields[entity].find((f) => f.name === name) ?? this.customFields[entity].find((f) => f.code === name);
    if (!def) throw new Error(`amo simulator: no ${entity} field named "${name}"`);
    return def.id;
  }

  tagsOf(ids: number[]): Tag[] {
    return ids.map((id) => this.tags.get(id)).filter((t): t is Tag => t !== undefined);
  }

  // -------------------------------------------------------------------------------------------
  // Search
  // -------------------------------------------------------------------------------------------

  /** Whether `?query=` finds the entity yet: amoCRM's search index trails creates by seconds. */
  isSearchable(kind: 'lead' | 'contact', id: number): boolean {
    return this.now() >= (this.searchableFrom.get(`${kind}:${id}`) ?? 0);
  }

  /**
   * amoCRM's `query` is a full-text search over the entity's filled fields, not an exact
   * match: a substring anywhere matches (so "u1" also finds "u10"), case-insensitively;
   * phones also match on their digits alone.
   */
  matchesQuery(entity: Contact | Lead, query: string): boolean {
    const needle = query.trim().toLowerCase();
    if (!needle) return true;
    const haystack: string[] = [entity.name];
    if ('first_name' in entity) haystack.push(entity.first_name, entity.last_name);
    const digits = needle.replace(/\D/g, '');
    const phoneLike = /^[\d\s()+-]+$/.test(needle) && digits.length >= 3;
    for (const entry of entity.custom_fields_values ?? []) {
      for (const v of entry.values) {
        const text = String(v.value);
        haystack.push(text);
        if (phoneLike && entry.field_code === 'PHONE' && text.replace(/\D/g, '').includes(digits)) return true;
      }
    }
    return haystack.some((h) => h.toLowerCase().includes(needle));
  }

  // -------------------------------------------------------------------------------------------
  // Shared validation
  // -------------------------------------------------------------------------------------------

  private checkTags(refs: TagRef[] | null | undefined, path: string, errors: ErrorCollector, rid: string): TagRef[] {
    const ok: TagRef[] = [];
    (refs ?? []).forEach((ref, i) => {
      if (ref.id !== undefined) {
        if (this.tags.has(ref.id)) ok.push({ id: ref.id });
        else errors.add(rid, 'NotSupportedChoice', `${path}.${i}.id`, 'The value you selected is not a valid choice.');
      } else if (ref.name !== undefined) {
        ok.push({ name: ref.name });
      } else {
        errors.add(rid, 'NotBlank', `${path}.${i}`, 'A tag needs an id or a name.');
      }
    });
    return ok;
  }

  /** Tag ids for validated refs, creating the tags given by a new name. */
  private materializeTags(refs: TagRef[]): number[] {
    const ids: number[] = [];
    for (const ref of refs) {
      if (ref.id !== undefined) {
        ids.push(ref.id);
        continue;
      }
      const name = ref.name ?? '';
      const existing = [...this.tags.values()].find((t) => t.name.toLowerCase() === name.toLowerCase());
      if (existing) {
        ids.push(existing.id);
      } else {
        const tag: Tag = { id: ++this.seq.tag, name, color: null };
        this.tags.set(tag.id, tag);
        ids.push(tag.id);
      }
    }
    return [...new Set(ids)];
  }

  private applyTags(current: Tag[], set: TagRef[] | undefined, add: TagRef[], del: TagRef[]): Tag[] {
    let ids = set ? this.materializeTags(set) : current.map((t) => t.id);
    ids = [...new Set([...ids, ...this.materializeTags(add)])];
    const remove = new Set(
      del
        .map((r) => r.id ?? [...this.tags.values()].find((t) => t.name.toLowerCase() === (r.name ?? '').toLowerCase())?.id)
        .filter((x): x is number => x !== undefined),
    );
    return this.tagsOf(ids.filter((id) => !remove.has(id))).map((t) => ({ ...t }));
  }

  /**
   * Where a lead goes for a given status_id/pipeline_id. 142 and 143 exist in every pipeline,
   * so with no pipeline_id they stay in the lead's current one (or the main one); any other
   * status names its pipeline; a pipeline alone means its first stage.
   */
  private resolvePlacement(
    statusId: number | undefined,
    pipelineId: number | undefined,
    current: Lead | null,
    errors: ErrorCollector,
    rid: string,
  ): LeadWrite['placement'] {
    if (statusId === undefined && pipelineId === undefined) {
      if (current) return undefined;
      const main = this.mainPipeline();
      const first = main.statuses.find((s) => s.type === 0);
      return first ? { status_id: first.id, pipeline_id: main.id } : undefined;
    }
    if (pipelineId !== undefined && !this.pipeline(pipelineId)) {
      errors.add(rid, 'NotSupportedChoice', 'pipeline_id', 'The value you selected is not a valid choice.');
      return undefined;
    }
    if (statusId === undefined) {
      if (current && current.pipeline_id === pipelineId) return undefined;
      const first = this.pipeline(pipelineId as number)?.statuses.find((s) => s.type === 0);
      return first ? { status_id: first.id, pipeline_id: pipelineId as number } : undefined;
    }
    let pid = pipelineId;
    if (pid === undefined) {
      if (CLOSED_STATUSES.has(statusId)) pid = current?.pipeline_id ?? this.mainPipeline().id;
      else pid = this.pipelines.find((p) => p.statuses.some((s) => s.id === statusId))?.id;
    }
    const status = pid === undefined ? undefined : this.status(pid, statusId);
    if (!status || pid === undefined) {
      errors.add(rid, 'NotSupportedChoice', 'status_id', 'The value you selected is not a valid choice.');
      return undefined;
    }
    if (status.type === 1) {
      // "Incoming leads" is filled through /api/v4/leads/unsorted, not by setting status_id.
      errors.add(rid, 'NotSupportedChoice', 'status_id', 'A lead cannot be put into "Incoming leads" this way.');
      return undefined;
    }
    return { status_id: statusId, pipeline_id: pid };
  }

  // -------------------------------------------------------------------------------------------
  // Leads
  // -------------------------------------------------------------------------------------------

  prepareLead(input: LeadFieldsInput, current: Lead | null, errors: ErrorCollector, rid: string): LeadWrite {
    const write: LeadWrite = {
      requestId: rid,
      name: input.name,
      price: input.price,
      placement: this.resolvePlacement(input.status_id, input.pipeline_id, current, errors, rid),
      responsible_user_id: input.responsible_user_id,
      created_by: input.created_by,
      updated_by: input.updated_by,
      created_at: input.created_at,
      closed_at: input.closed_at,
      loss_reason_id: input.loss_reason_id,
      fields: normalizeCustomFields(this.customFields.leads, input.custom_fields_values ?? [], errors, rid),
      tagsAdd: this.checkTags(input.tags_to_add, 'tags_to_add', errors, rid),
      tagsDelete: this.checkTags(input.tags_to_delete, 'tags_to_delete', errors, rid),
    };
    const embedded = input._embedded;
    if (embedded?.tags !== undefined) write.tagsSet = this.checkTags(embedded.tags, '_embedded.tags', errors, rid);
    if (embedded?.contacts !== undefined) {
      write.contacts = [];
      embedded.contacts.forEach((c, i) => {
        if (c.id === undefined) return; // new contacts of a complex lead are linked by the caller
        if (!this.contacts.has(c.id)) {
          errors.add(rid, 'NotSupportedChoice', `_embedded.contacts.${i}.id`, 'The value you selected is not a valid choice.');
        } else {
          write.contacts?.push({ id: c.id, is_main: c.is_main ?? i === 0 });
        }
      });
    }
    if (embedded?.companies !== undefined) write.company_id = embedded.companies[0]?.id ?? null;
    return write;
  }

  /** Creates (current = null) or updates a lead from a prepared write. */
  applyLead(current: Lead | null, write: LeadWrite, by: number): LeadChange {
    const before = current ? copy(current) : null;
    const now = this.nowSec();
    const lead: Lead = current ?? {
      id: ++this.seq.lead,
      name: '',
      price: 0,
      responsible_user_id: write.responsible_user_id ?? by,
      group_id: 0,
      status_id: write.placement?.status_id ?? this.mainPipeline().statuses[1]?.id ?? WON_STATUS_ID,
      pipeline_id: write.placement?.pipeline_id ?? this.mainPipeline().id,
      loss_reason_id: null,
      created_by: write.created_by ?? by,
      updated_by: write.updated_by ?? by,
      created_at: write.created_at ?? now,
      updated_at: Math.max(now, write.created_at ?? now),
      closed_at: null,
      closest_task_at: null,
      is_deleted: false,
      custom_fields_values: null,
      score: null,
      account_id: this.account.id,
      labor_cost: null,
      _embedded: { tags: [], contacts: [], companies: [] },
    };
    if (!current) lead.name = `Сделка #${lead.id}`; // amoCRM's default name for an unnamed deal

    if (write.name !== undefined) lead.name = write.name;
    if (write.price !== undefined) lead.price = write.price;
    if (write.responsible_user_id !== undefined) lead.responsible_user_id = write.responsible_user_id;
    if (write.loss_reason_id !== undefined) lead.loss_reason_id = write.loss_reason_id;
    if (write.placement) {
      lead.status_id = write.placement.status_id;
      lead.pipeline_id = write.placement.pipeline_id;
    }
    lead.custom_fields_values = applyCustomFieldOps(lead.custom_fields_values, write.fields);
    lead._embedded.tags = this.applyTags(lead._embedded.tags, write.tagsSet, write.tagsAdd, write.tagsDelete);
    if (write.contacts) {
      const links = [...lead._embedded.contacts];
      for (const link of write.contacts) if (!links.some((l) => l.id === link.id)) links.push({ ...link });
      if (!links.some((l) => l.is_main) && links[0]) links[0].is_main = true;
      lead._embedded.contacts = links;
    }
    if (write.company_id !== undefined) lead._embedded.companies = write.company_id === null ? [] : [{ id: write.company_id }];

    const statusChanged = before !== null && (before.status_id !== lead.status_id || before.pipeline_id !== lead.pipeline_id);
    const closedNow = CLOSED_STATUSES.has(lead.status_id);
    const changed = before === null || JSON.stringify(before) !== JSON.stringify(lead);
    if (before && changed) {
      this.touch(lead);
      lead.updated_by = write.updated_by ?? by;
    }
    if (write.closed_at !== undefined) lead.closed_at = write.closed_at;
    else if (closedNow && (before === null || !CLOSED_STATUSES.has(before.status_id))) lead.closed_at = lead.updated_at;
    else if (!closedNow) lead.closed_at = null;

    if (!current) {
      this.leads.set(lead.id, lead);
      this.searchableFrom.set(`lead:${lead.id}`, this.now() + this.options.searchIndexDelayMs);
    }
    return { kind: current ? 'update' : 'add', before, lead: copy(lead), changed, statusChanged };
  }

  /** Marks a lead deleted (staff did it in the UI; API v4 has no lead delete). */
  deleteLead(id: number, by: number): LeadChange {
    const lead = this.leads.get(id);
    if (!lead || lead.is_deleted) throw new Error(`amo simulator: no lead ${id}`);
    const before = copy(lead);
    lead.is_deleted = true;
    lead.updated_by = by;
    this.touch(lead);
    return { kind: 'delete', before, lead: copy(lead), changed: true, statusChanged: false };
  }

  /**
   * Stamps a change. amoCRM's updated_at is a Unix time in whole seconds ("Дата изменения
   * сделки, передается в Unix Timestamp", amocrm.ru/developers/content/crm_platform/leads-api),
   * so changes within one second share it; it never goes back.
   */
  private touch(entity: { updated_at: number }): void {
    entity.updated_at = Math.max(this.nowSec(), entity.updated_at);
  }

  // -------------------------------------------------------------------------------------------
  // Contacts
  // -------------------------------------------------------------------------------------------

  prepareContact(input: ContactPatch, errors: ErrorCollector, rid: string): ContactWrite {
    const write: ContactWrite = {
      requestId: rid,
      name: input.name,
      first_name: input.first_name,
      last_name: input.last_name,
      responsible_user_id: input.responsible_user_id,
      created_by: input.created_by,
      updated_by: input.updated_by,
      created_at: input.created_at,
      fields: normalizeCustomFields(this.customFields.contacts, input.custom_fields_values ?? [], errors, rid),
      tagsAdd: this.checkTags(input.tags_to_add, 'tags_to_add', errors, rid),
      tagsDelete: this.checkTags(input.tags_to_delete, 'tags_to_delete', errors, rid),
    };
    if (input._embedded?.tags !== undefined) write.tagsSet = this.checkTags(input._embedded.tags, '_embedded.tags', errors, rid);
    return write;
  }

  applyContact(current: Contact | null, write: ContactWrite, by: number): Contact {
    const before = current ? JSON.stringify(current) : null;
    const now = this.nowSec();
    const contact: Contact = current ?? {
      id: ++this.seq.contact,
      name: '',
      first_name: '',
      last_name: '',
      responsible_user_id: write.responsible_user_id ?? by,
      group_id: 0,
      created_by: write.created_by ?? by,
      updated_by: write.updated_by ?? by,
      created_at: write.created_at ?? now,
      updated_at: Math.max(now, write.created_at ?? now),
      closest_task_at: null,
      is_deleted: false,
      is_unsorted: false,
      custom_fields_values: null,
      account_id: this.account.id,
      _embedded: { tags: [], companies: [] },
    };
    if (write.first_name !== undefined) contact.first_name = write.first_name;
    if (write.last_name !== undefined) contact.last_name = write.last_name;
    if (write.name !== undefined) {
      contact.name = write.name;
      // A contact created with a bare name shows it as the first name too.
      if (!current && write.first_name === undefined && write.last_name === undefined) contact.first_name = write.name;
    } else if (write.first_name !== undefined || write.last_name !== undefined) {
      contact.name = `${contact.first_name} ${contact.last_name}`.trim();
    }
    if (write.responsible_user_id !== undefined) contact.responsible_user_id = write.responsible_user_id;
    contact.custom_fields_values = applyCustomFieldOps(contact.custom_fields_values, write.fields);
    contact._embedded.tags = this.applyTags(contact._embedded.tags, write.tagsSet, write.tagsAdd, write.tagsDelete);
    if (current && before !== JSON.stringify(contact)) {
      this.touch(contact);
      contact.updated_by = write.updated_by ?? by;
    }
    if (!current) {
      this.contacts.set(contact.id, contact);
      this.searchableFrom.set(`contact:${contact.id}`, this.now() + this.options.searchIndexDelayMs);
    }
    return contact;
  }

  /** Leads linked to a contact (`with=leads`). */
  leadsOfContact(contactId: number): Lead[] {
    return [...this.leads.values()].filter((l) => !l.is_deleted && l._embedded.contacts.some((c) => c.id === contactId));
  }

  // -------------------------------------------------------------------------------------------
  // Notes and webhooks
  // -------------------------------------------------------------------------------------------

  addNote(entityType: EntityType, entityId: number, input: NoteInput, by: number): Note {
    const now = this.nowSec();
    const note: Note = {
      id: ++this.seq.note,
      entity_id: entityId,
      entity_type: entityType,
      created_by: input.created_by ?? by,
      updated_by: input.created_by ?? by,
      created_at: now,
      updated_at: now,
      responsible_user_id: input.responsible_user_id ?? by,
      group_id: 0,
      note_type: input.note_type,
      params: input.params,
      account_id: this.account.id,
    };
    this.notes.set(note.id, note);
    return note;
  }

  /** Adds a webhook, or updates the settings of the one already at that destination. */
  upsertWebhook(destination: string, settings: WebhookSetting[], sort: number | undefined): Webhook {
    const now = this.nowSec();
    const existing = [...this.webhooks.values()].find((w) => w.destination === destination);
    if (existing) {
      existing.settings = [...new Set(settings)];
      existing.disabled = false;
      if (sort !== undefined) existing.sort = sort;
      existing.updated_at = now;
      return existing;
    }
    const webhook: Webhook = {
      id: ++this.seq.webhook,
      destination,
      settings: [...new Set(settings)],
      sort: sort ?? 1,
      disabled: false,
      created_at: now,
      updated_at: now,
      created_by: API_USER_ID,
      account_id: this.account.id,
    };
    this.webhooks.set(webhook.id, webhook);
    return webhook;
  }

  deleteWebhook(destination: string): boolean {
    const hook = [...this.webhooks.values()].find((w) => w.destination === destination);
    if (!hook) return false;
    this.webhooks.delete(hook.id);
    return true;
  }
}

