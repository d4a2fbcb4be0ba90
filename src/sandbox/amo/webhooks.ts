import type { AmoState, LeadChange, WebhookDelivery } from './state.js';
import type { CustomFieldType, Lead, Webhook, WebhookSetting } from './schemas.js';

/**
 * amoCRM's outgoing webhooks: `POST application/x-www-form-urlencoded` with PHP-style
 * bracketed keys, every value a string ("WebHook отправляется в формате x-www-form-urlencoded
 * … массив вида {"entity":{"action":{"0":{…}}}}", amocrm.ru/developers/content/crm_platform/webhooks-format).
 *
 * The shapes below are copied from bodies captured off real accounts (public code on GitHub):
 * - compact, what a status change sends today:
 *     leads[status][0][id], [status_id], [pipeline_id], [old_status_id], [old_pipeline_id],
 *     account[id], account[subdomain]
 * - full, what accounts send with the entity's data: id, name, status_id, old_status_id,
 *   price, responsible_user_id, last_modified, modified_user_id, created_user_id,
 *   date_create, pipeline_id, tags[N][id|name], account_id, custom_fields in the OLD shape
 *   (custom_fields[N][id|name|code], [values][M][value], [values][M][enum]; a date field is a
 *   bare `[values][0]=<unix time>`), created_at, updated_at, then account[subdomain],
 *   account[id], account[_links][self] (=https://<subdomain>.amocrm.ru)
 * - legacy: the full lead with only `account[subdomain]` (bodies from 2018 carry no
 *   account id).
 */

export type WebhookShape = 'compact' | 'full' | 'legacy';
export type LeadEvent = 'add' | 'update' | 'status' | 'delete';

/** A lead as a webhook describes it. */
export interface WebhookLead {
  id: number;
  name: string;
  price: number;
  status_id: number;
  pipeline_id: number;
  old_status_id?: number;
  old_pipeline_id?: number;
  responsible_user_id: number;
  created_user_id: number;
  modified_user_id: number;
  date_create: number;
  last_modified: number;
  account_id: number;
  tags: Array<{ id: number; name: string }>;
  custom_fields: Array<{
    id: number;
    name: string;
    code?: string | null;
    type: CustomFieldType;
    values: Array<{ value: string | number | boolean; enum_id?: number }>;
  }>;
}

export interface WebhookBodyInput {
  account: { id: number; subdomain: string; selfUrl?: string };
  /** Leads per event; one body may carry several events and several leads each. */
  leads: Partial<Record<LeadEvent, WebhookLead[]>>;
  shape?: WebhookShape;
  /** Shuffle the key order (amoCRM promises none); a function gives a seeded order. */
  shuffle?: boolean | (() => number);
}

const DATE_TYPES: ReadonlySet<CustomFieldType> = new Set(['date', 'date_time', 'birthday']);
const ENUM_TYPES: ReadonlySet<CustomFieldType> = new Set(['select', 'multiselect', 'radiobutton', 'multitext']);

function str(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

function leadPairs(prefix: string, lead: WebhookLead, event: LeadEvent, shape: WebhookShape): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  /** Adds `prefix[a][b]…=value`, skipping undefined values. */
  const put = (path: Array<string | number>, value: string | number | boolean | undefined): void => {
    if (value !== undefined) pairs.push([prefix + path.map((p) => `[${p}]`).join(''), str(value)]);
  };
  if (shape === 'compact' || event === 'delete') {
    put(['id'], lead.id);
    put(['status_id'], lead.status_id);
    put(['pipeline_id'], lead.pipeline_id);
    put(['old_status_id'], lead.old_status_id);
    put(['old_pipeline_id'], lead.old_pipeline_id);
    return pairs;
  }
  put(['id'], lead.id);
  put(['name'], lead.name);
  put(['status_id'], lead.status_id);
  put(['old_status_id'], lead.old_status_id);
  put(['price'], lead.price);
  put(['responsible_user_id'], lead.responsible_user_id);
  put(['last_modified'], lead.last_modified);
  put(['modified_user_id'], lead.modified_user_id);
  put(['created_user_id'], lead.created_user_id);
  put(['date_create'], lead.date_create);
  put(['pipeline_id'], lead.pipeline_id);
  put(['old_pipeline_id'], lead.old_pipeline_id);
  lead.tags.forEach((tag, i) => {
    put(['tags', i, 'id'], tag.id);
    put(['tags', i, 'name'], tag.name);
  });
  put(['account_id'], lead.account_id);
  lead.custom_fields.forEach((field, i) => {
    put(['custom_fields', i, 'id'], field.id);
    put(['custom_fields', i, 'name'], field.name);
    field.values.forEach((v, j) => {
      if (DATE_TYPES.has(field.type)) {
        put(['custom_fields', i, 'values', j], v.value); // a bare value, no [value] key
        return;
      }
      put(['custom_fields', i, 'values', j, 'value'], v.value);
      if (ENUM_TYPES.has(field.type)) put(['custom_fields', i, 'values', j, 'enum'], v.enum_id);
    });
    if (field.code) put(['custom_fields', i, 'code'], field.code);
  });
  put(['created_at'], lead.date_create);
  put(['updated_at'], lead.last_modified);
  return pairs;
}

function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/**
 * Builds a webhook body exactly as amoCRM sends it: form-urlencoded (brackets percent-encoded,
 * spaces as '+'), string values. Exported so tests can post real-shaped bodies themselves.
 */
export function buildWebhookBody(input: WebhookBodyInput): string {
  const shape = input.shape ?? 'compact';
  const pairs: Array<[string, string]> = [];
  const order: LeadEvent[] = ['add', 'update', 'status', 'delete'];
  for (const event of order) {
    (input.leads[event] ?? []).forEach((lead, i) => pairs.push(...leadPairs(`leads[${event}][${i}]`, lead, event, shape)));
  }
  const { account } = input;
  if (shape === 'compact') {
    pairs.push(['account[id]', String(account.id)], ['account[subdomain]', account.subdomain]);
  } else if (shape === 'full') {
    pairs.push(
      ['account[subdomain]', account.subdomain],
      ['account[id]', String(account.id)],
      ['account[_links][self]', account.selfUrl ?? `https://${account.subdomain}.amocrm.ru`],
    );
  } else {
    pairs.push(['account[subdomain]', account.subdomain]);
  }
  const random = typeof input.shuffle === 'function' ? input.shuffle : Math.random;
  const final = input.shuffle ? shuffled(pairs, random) : pairs;
  return new URLSearchParams(final).toString();
}

/** A stored lead as a webhook describes it; `before` supplies old_status_id/old_pipeline_id. */
export function webhookLeadOf(lead: Lead, before: Lead | null): WebhookLead {
  const moved = before !== null && (before.status_id !== lead.status_id || before.pipeline_id !== lead.pipeline_id);
  return {
    id: lead.id,
    name: lead.name,
    price: lead.price,
    status_id: lead.status_id,
    pipeline_id: lead.pipeline_id,
    ...(moved ? { old_status_id: before.status_id, old_pipeline_id: before.pipeline_id } : {}),
    responsible_user_id: lead.responsible_user_id,
    created_user_id: lead.created_by,
    modified_user_id: lead.updated_by,
    date_create: lead.created_at,
    last_modified: lead.updated_at,
    account_id: lead.account_id,
    tags: lead._embedded.tags.map((t) => ({ id: t.id, name: t.name })),
    custom_fields: (lead.custom_fields_values ?? []).map((entry) => ({
      id: entry.field_id,
      name: entry.field_name,
      code: entry.field_code,
      type: entry.field_type,
      values: entry.values.map((v) => ({ value: v.value, ...(v.enum_id !== undefined ? { enum_id: v.enum_id } : {}) })),
    })),
  };
}

const SETTING_OF: Record<LeadEvent, WebhookSetting> = {
  add: 'add_lead',
  update: 'update_lead',
  status: 'status_lead',
  delete: 'delete_lead',
};

/** amoCRM turns a webhook off after more than 100 failed answers within 2 hours (webhooks-format page). */
const DISABLE_AFTER_FAILURES = 100;
const FAILURE_WINDOW_MS = 2 * 3600_000;

export interface FireOptions {
  shape: WebhookShape;
  /** Limit which events fire (e.g. to play a `leads[status]` that never arrives). */
  events?: Array<'add_lead' | 'update_lead' | 'status_lead' | 'delete_lead'>;
  shuffleKeys?: boolean;
}

/**
 * Sends webhooks for lead changes to every registered destination subscribed to them, one
 * body per destination holding all its events, and records each attempt in
 * `state.deliveries`. amoCRM waits 2 seconds for an answer; so does this.
 */
export class WebhookDispatcher {
  private readonly inFlight = new Set<Promise<unknown>>();
  private aborter = new AbortController();

  constructor(
    private readonly state: AmoState,
    private readonly timeoutMs: number,
  ) {}

  /**
   * Events a change produces: a status move is both `status` and `update`; a create is
   * `add` alone. amoCRM's webhooks-format page lists adding, changing and a status change
   * as separate events (and a note as its own, note_lead, which is not sent here).
   */
  eventsOf(change: LeadChange): LeadEvent[] {
    if (change.kind === 'add') return ['add'];
    if (change.kind === 'delete') return ['delete'];
    if (!change.changed) return [];
    return change.statusChanged ? ['update', 'status'] : ['update'];
  }

  async fire(changes: LeadChange[], options: FireOptions): Promise<WebhookDelivery[]> {
    const hooks = [...this.state.webhooks.values()].filter((w) => !w.disabled).sort((a, b) => a.sort - b.sort);
    const attempts: Array<Promise<WebhookDelivery>> = [];
    for (const hook of hooks) {
      const leads: Partial<Record<LeadEvent, WebhookLead[]>> = {};
      for (const change of changes) {
        for (const event of this.eventsOf(change)) {
          const setting = SETTING_OF[event];
          if (!hook.settings.includes(setting)) continue;
          if (options.events && !(options.events as WebhookSetting[]).includes(setting)) continue;
          (leads[event] ??= []).push(webhookLeadOf(change.lead, change.before));
        }
      }
      if (Object.keys(leads).length === 0) continue;
      const body = buildWebhookBody({
        account: { id: this.state.account.id, subdomain: this.state.account.subdomain },
        leads,
        shape: options.shape,
        shuffle: options.shuffleKeys,
      });
      const events = (Object.keys(leads) as LeadEvent[]).map((e) => `leads[${e}]`);
      const leadIds = [...new Set(Object.values(leads).flatMap((list) => list.map((l) => l.id)))];
      attempts.push(this.track(this.deliver(hook, body, { events, leadIds, shape: options.shape, attempt: 1 })));
    }
    return Promise.all(attempts);
  }

  /** Sends the failed deliveries again, as amoCRM's retries (after 5 min, 15 min, …) would. */
  async redeliverFailed(): Promise<WebhookDelivery[]> {
    const latest = new Map<string, WebhookDelivery>();
    for (const d of this.state.deliveries) latest.set(`${d.webhookId}|${d.body}`, d);
    const failed = [...latest.values()].filter((d) => d.status === null || d.status >= 300);
    const attempts: Array<Promise<WebhookDelivery>> = [];
    for (const d of failed) {
      const hook = this.state.webhooks.get(d.webhookId);
      if (!hook || hook.disabled) continue;
      attempts.push(this.track(this.deliver(hook, d.body, { ...d, attempt: d.attempt + 1 })));
    }
    return Promise.all(attempts);
  }

  /** Resolves when no delivery is under way. */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /** Cancels the deliveries under way (the simulator is closing); later ones go out as usual. */
  abortAll(): void {
    this.aborter.abort();
    this.aborter = new AbortController();
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise);
    void promise.finally(() => this.inFlight.delete(promise)).catch(() => undefined);
    return promise;
  }

  private async deliver(
    hook: Webhook,
    body: string,
    meta: { events: string[]; leadIds: number[]; shape: string; attempt: number },
  ): Promise<WebhookDelivery> {
    const at = this.state.now();
    const started = performance.now();
    let status: number | null = null;
    let error: string | null = null;
    try {
      const response = await fetch(hook.destination, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'amoCRM-Webhooks/3.0' },
        body,
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.aborter.signal]),
      });
      status = response.status;
      await response.arrayBuffer().catch(() => undefined);
    } catch (e) {
      error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    const delivery: WebhookDelivery = {
      id: this.state.nextDeliveryId(),
      webhookId: hook.id,
      destination: hook.destination,
      events: meta.events,
      leadIds: meta.leadIds,
      shape: meta.shape,
      body,
      status,
      error,
      at,
      durationMs: Math.round(performance.now() - started),
      attempt: meta.attempt,
    };
    this.state.deliveries.push(delivery);
    this.maybeDisable(hook);
    return delivery;
  }

  private maybeDisable(hook: Webhook): void {
    const since = this.state.now() - FAILURE_WINDOW_MS;
    const failures = this.state.deliveries.filter(
      (d) => d.webhookId === hook.id && d.at >= since && (d.status === null || d.status >= 300),
    ).length;
    if (failures > DISABLE_AFTER_FAILURES) hook.disabled = true;
  }
}
