import { Client } from 'amocrm-js';
import type { z } from 'zod';
import type { Db } from '../db/connect.js';
import type { ServiceHealth } from '../health/service-health.js';
import type { Logger } from '../logger.js';
import type { PeerCallSink } from '../db/peer-calls.js';
import type { Metrics } from '../metrics.js';
import { LongLivedToken, OAuthTokens, type AccessTokenProvider } from './auth.js';
import { AmoConnection } from './connection.js';
import { createRateLimiter, type RateLimiter } from './rate-limiter.js';
import { tokenStoreFor } from './token-store.js';
import { AmoResponseError, AmoTransport, type RetryPolicy } from './transport.js';
import {
  accountSchema,
  complexLeadResultsSchema,
  contactSchema,
  customFieldSchema,
  leadSchema,
  pageSchema,
  pipelineSchema,
  webhookSchema,
  type ComplexLeadInput,
  type ComplexLeadResult,
  type Contact,
  type ContactFieldsUpdate,
  type CustomField,
  type Lead,
  type Pipeline,
} from './types.js';

export interface AmoClientOptions {
  /** e.g. https://company2.amocrm.ru or http://127.0.0.1:PORT (simulator). */
  baseUrl: string;
  subdomain: string;
  auth:
    | { kind: 'long-lived'; token: string }
    | { kind: 'oauth'; clientId: string; clientSecret: string; redirectUri: string };
  /** Token store and (PostgreSQL) shared rate limiter. */
  db: Db;
  rateLimitRps: number;
  /** Per HTTP exchange, headers and body included; default 15000. */
  timeoutMs?: number;
  /** Retries after the first attempt; default 6. */
  retries?: number;
  /** First retry delay (then doubling, randomized); default 500. */
  minRetryDelayMs?: number;
  logger: Logger;
  metrics: Metrics;
  /** Replaces the limiter chosen for `db` (tests). */
  rateLimiter?: RateLimiter;
  /** Told the outcome of every exchange and every refusal (readiness). */
  health?: ServiceHealth;
  /** Told of every exchange, for GET /admin/quota. */
  calls?: PeerCallSink;
}

/** amoCRM's page size ceiling for lists. */
const PAGE_LIMIT = 250;
/** Full-text searches stop after this many pages (1000 results): callers filter exactly anyway. */
const SEARCH_PAGE_CAP = 4;
/** POST /api/v4/leads/complex takes at most 50 deals. */
export const COMPLEX_BATCH_MAX = 50;
const NOTES_BATCH = 100;

/**
 * The amoCRM API v4 client of the bridge. Built on amocrm-js: its `Client`
 * is the client object, its `Token` holds the current OAuth pair and its `ClientRequest`
 * (`sdk.request`) is the request API every method here goes through. What amocrm-js
 * 3.6.0 gets wrong is replaced underneath it, in this module:
 *
 * - transport (no base URL/port, no timeout, chunk-split UTF-8, success decided by the
 *   body): `sdk.connection` and the connection inside `sdk.request` — the one every
 *   amocrm-js factory captured too — are an AmoConnection over AmoTransport (connection.ts,
 *   transport.ts);
 * - token lifecycle (parallel refreshes spending one single-use refresh token, no refresh
 *   on 401, nothing persisted): refreshes run in OAuthTokens (auth.ts) with one flight per
 *   process and, on PostgreSQL, an advisory lock across instances (token-store.ts);
 *   `sdk.token.refresh()`/`fetch()` are redirected there;
 * - its type declarations do not type-check on their own (TS2344 in
 *   api/activeRecords/common/EmbeddedEntityList.d.ts), so the project needs skipLibCheck
 *   (tsconfig has it); only this module imports amocrm-js types, and the rest of the
 *   bridge sees the zod-checked API below.
 *
 * Every HTTP exchange, token requests and retries included, takes a slot of one rate
 * limiter (rate-limiter.ts) and is counted in amobridge_amo_requests_total.
 */
export class AmoClient {
  private constructor(
    /** The amocrm-js client, with its transport and token refresh replaced (see above). */
    readonly sdk: Client,
    private readonly oauth: OAuthTokens | undefined,
    private readonly logger: Logger,
    private readonly transport: AmoTransport,
    private readonly connection: AmoConnection,
    private readonly limiter: RateLimiter,
  ) {}

  static create(options: AmoClientOptions): AmoClient {
    const { auth, db, logger, metrics } = options;
    const retry: RetryPolicy = { retries: options.retries ?? 6, minDelayMs: options.minRetryDelayMs ?? 500 };
    const timeoutMs = options.timeoutMs ?? 15_000;
    // A slot never handed back (a crash mid-request) frees itself after the longest a
    // request can run.
    const limiter = options.rateLimiter ?? createRateLimiter(db, { rps: options.rateLimitRps, holdMs: timeoutMs + 5_000 });
    const transport = new AmoTransport({
      baseUrl: options.baseUrl,
      timeoutMs,
      limiter,
      metrics,
      logger,
      health: options.health,
      calls: options.calls,
    });
    const sdk = new Client({
      domain: options.subdomain,
      auth:
        auth.kind === 'oauth'
          ? { client_id: auth.clientId, client_secret: auth.clientSecret, redirect_uri: auth.redirectUri }
          : { client_id: '', client_secret: '', redirect_uri: '', bearer: auth.token },
    });
    const oauth =
      auth.kind === 'oauth'
        ? new OAuthTokens({
            token: sdk.token,
            store: tokenStoreFor(db),
            transport,
            retry,
            logger,
            clientId: auth.clientId,
            clientSecret: auth.clientSecret,
            redirectUri: auth.redirectUri,
          })
        : undefined;
    const tokens: AccessTokenProvider = oauth ?? new LongLivedToken(auth.kind === 'long-lived' ? auth.token : '');
    const connection = new AmoConnection({
      transport,
      auth: tokens,
      retry,
      logger,
      isTokenExpired: () => oauth !== undefined && sdk.token.isExpired(),
      authKind: auth.kind,
      health: options.health,
    });
    installAdapter(sdk, connection, oauth);
    return new AmoClient(sdk, oauth, logger, transport, connection, limiter);
  }

  /** How long a request would wait for the rate limiter now (ms); reads, takes nothing. */
  limiterWaitMs(): Promise<number> {
    return this.limiter.currentWaitMs();
  }

  /** Destroys the keep-alive connections to amoCRM (shutdown): requests under way fail. */
  close(): void {
    this.transport.close();
  }

  /** Exchanges an OAuth authorization code (CLI) and stores the pair. */
  async exchangeAuthorizationCode(code: string): Promise<void> {
    if (!this.oauth) throw new Error('a long-lived token is configured: there is no code to exchange');
    await this.oauth.exchange(code);
  }

  /** A long-lived token is configured, or an OAuth pair is stored. */
  async hasCredentials(): Promise<boolean> {
    return this.oauth ? this.oauth.hasToken() : true;
  }

  /**
   * One read of the account, not retried: a health probe (the same read as at start,
   * through the same limiter and token handling, a 401 refresh included).
   */
  async probe(): Promise<void> {
    await this.connection.send('GET', '/api/v4/account', undefined, undefined, { retries: 0, minDelayMs: 0 });
  }

  async getAccount(): Promise<{ id: number; subdomain: string; name: string }> {
    const path = '/api/v4/account';
    const { data } = await this.get(path);
    return parse(accountSchema, data, 'GET', path);
  }

  /** Pipelines of deals, each with its statuses (`_embedded.statuses`). */
  async getPipelines(): Promise<Pipeline[]> {
    const path = '/api/v4/leads/pipelines';
    const { items } = await this.page(path, 'pipelines', pipelineSchema, {});
    // amoCRM always sends a status's sort; should one be missing, the listed order stands.
    return items.map((p) => ({
      ...p,
      _embedded: { statuses: p._embedded.statuses.map((s, i) => ({ ...s, sort: s.sort ?? (i + 1) * 10 })) },
    }));
  }

  /** Every custom field of deals or contacts (all pages). */
  getCustomFields(entity: 'leads' | 'contacts'): Promise<CustomField[]> {
    return this.allPages(`/api/v4/${entity}/custom_fields`, 'custom_fields', customFieldSchema, {}, 50, 100);
  }

  /**
   * Full-text search of contacts (`GET /api/v4/contacts?query=`): not an exact match, so
   * callers filter by the exact field value. 204 (nothing found) → []. Stops after
   * SEARCH_PAGE_CAP pages.
   */
  searchContacts(query: string): Promise<Contact[]> {
    if (!query.trim()) throw new TypeError('search query must not be empty');
    return this.allPages('/api/v4/contacts', 'contacts', contactSchema, { query }, PAGE_LIMIT, SEARCH_PAGE_CAP);
  }

  /** Full-text search of deals, with their contacts; same rules as searchContacts. */
  searchLeads(query: string): Promise<Lead[]> {
    if (!query.trim()) throw new TypeError('search query must not be empty');
    return this.allPages('/api/v4/leads', 'leads', leadSchema, { query, with: 'contacts' }, PAGE_LIMIT, SEARCH_PAGE_CAP);
  }

  /** Deals by id, with contacts: one `GET /api/v4/leads?filter[id][]=…` per 250 ids. */
  getLeadsByIds(ids: number[]): Promise<Lead[]> {
    return this.byIds('/api/v4/leads', 'leads', leadSchema, ids, { with: 'contacts' });
  }

  /** Contacts by id: one `GET /api/v4/contacts?filter[id][]=…` per 250 ids. */
  getContactsByIds(ids: number[]): Promise<Contact[]> {
    return this.byIds('/api/v4/contacts', 'contacts', contactSchema, ids, {});
  }

  /**
   * Overwrites some fields of contacts: `PATCH /api/v4/contacts` with
   * `[{id, first_name?, last_name?, custom_fields_values?}]`, 50 a request. A phone or
   * e-mail replaces the field's values, named by field_code as on create (toContactFields).
   */
  async updateContacts(updates: ContactFieldsUpdate[]): Promise<void> {
    const path = '/api/v4/contacts';
    for (let i = 0; i < updates.length; i += COMPLEX_BATCH_MAX) {
      const body = updates.slice(i, i + COMPLEX_BATCH_MAX).map((u) => {
        const values = toContactFields(u);
        return {
          id: u.id,
          ...(u.firstName !== undefined ? { first_name: u.firstName } : {}),
          ...(u.lastName !== undefined ? { last_name: u.lastName } : {}),
          ...(values.length > 0 ? { custom_fields_values: values } : {}),
        };
      });
      await this.sdk.request.patch<unknown>(path, body);
    }
  }

  /**
   * One page of the deals of a pipeline updated at or after `fromUnix` (seconds), oldest
   * update first, with contacts (the sweep). `hasMore` when amoCRM links a next page.
   */
  async listLeadsUpdatedSince(params: {
    pipelineId: number;
    fromUnix: number;
    page: number;
    limit?: number;
  }): Promise<{ leads: Lead[]; hasMore: boolean }> {
    const limit = Math.min(params.limit ?? PAGE_LIMIT, PAGE_LIMIT);
    const { items, hasMore } = await this.page('/api/v4/leads', 'leads', leadSchema, {
      filter: { pipeline_id: params.pipelineId, updated_at: { from: Math.floor(params.fromUnix) } },
      order: { updated_at: 'asc' },
      with: 'contacts',
      page: params.page,
      limit,
    });
    return { leads: items, hasMore };
  }

  /** One page of the contacts created since a time, in id order (see listLeadsCreatedSince). */
  async listContactsCreatedSince(params: { fromUnix: number; page: number }): Promise<{ contacts: Contact[]; hasMore: boolean }> {
    const { items, hasMore } = await this.page('/api/v4/contacts', 'contacts', contactSchema, {
      filter: { created_at: { from: Math.floor(params.fromUnix) } },
      order: { id: 'asc' },
      page: params.page,
      limit: PAGE_LIMIT,
    });
    return { contacts: items, hasMore };
  }

  /**
   * One page of the deals created since a time, in every pipeline, each with its contacts,
   * in id order: a deal created meanwhile joins the end, so no page shifts under a reader.
   */
  async listLeadsCreatedSince(params: { fromUnix: number; page: number }): Promise<{ leads: Lead[]; hasMore: boolean }> {
    const { items, hasMore } = await this.page('/api/v4/leads', 'leads', leadSchema, {
      filter: { created_at: { from: Math.floor(params.fromUnix) } },
      order: { id: 'asc' },
      with: 'contacts',
      page: params.page,
      limit: PAGE_LIMIT,
    });
    return { leads: items, hasMore };
  }

  /**
   * Creates up to 50 deals, each with its contact (existing by id, or new), in one
   * `POST /api/v4/leads/complex`. The answer is a top-level array, one element per deal.
   * Not retried after a timeout or 5xx (outcome unknown: see transport.ts shouldRetry).
   */
  async createLeadsComplex(items: ComplexLeadInput[]): Promise<ComplexLeadResult[]> {
    if (items.length > COMPLEX_BATCH_MAX) {
      throw new RangeError(`leads/complex takes at most ${COMPLEX_BATCH_MAX} deals, got ${items.length}`);
    }
    if (items.length === 0) return [];
    const path = '/api/v4/leads/complex';
    const response = await this.sdk.request.post<unknown>(path, items.map(toComplexLead));
    return parse(complexLeadResultsSchema, response.data, 'POST', path);
  }

  /** Adds plain-text ("common") notes to deals. */
  async addLeadNotes(notes: Array<{ leadId: number; text: string }>): Promise<void> {
    const path = '/api/v4/leads/notes';
    for (let i = 0; i < notes.length; i += NOTES_BATCH) {
      const body = notes.slice(i, i + NOTES_BATCH).map((n) => ({
        entity_id: n.leadId,
        note_type: 'common',
        params: { text: n.text },
      }));
      await this.sdk.request.post<unknown>(path, body);
    }
  }

  /**
   * Moves deals to a stage: `PATCH /api/v4/leads` with `[{id, status_id, pipeline_id}]`,
   * 50 a request. Moving a deal where it already stands changes nothing, so a retry or a
   * repeat after a crash is harmless (and, the deal unchanged, fires no webhook).
   */
  async moveLeads(moves: Array<{ leadId: number; statusId: number; pipelineId: number }>): Promise<void> {
    const path = '/api/v4/leads';
    for (let i = 0; i < moves.length; i += COMPLEX_BATCH_MAX) {
      const body = moves.slice(i, i + COMPLEX_BATCH_MAX).map((m) => ({ id: m.leadId, status_id: m.statusId, pipeline_id: m.pipelineId }));
      await this.sdk.request.patch<unknown>(path, body);
    }
  }

  /** The account's webhooks (GET /api/v4/webhooks; 204 → []). */
  async listWebhooks(): Promise<Array<{ destination: string; settings: string[] }>> {
    const { items } = await this.page('/api/v4/webhooks', 'webhooks', webhookSchema, {});
    return items.map((w) => ({ destination: w.destination, settings: w.settings }));
  }

  /** Subscribes `destination` to the events in `settings` (e.g. status_lead, update_lead). */
  async registerWebhook(destination: string, settings: string[]): Promise<void> {
    await this.sdk.request.post<unknown>('/api/v4/webhooks', { destination, settings, sort: 10 });
  }

  private async byIds<S extends z.ZodType>(path: string, key: string, item: S, ids: number[], query: object): Promise<Array<z.infer<S>>> {
    const unique = [...new Set(ids)];
    for (const id of unique) {
      if (!Number.isSafeInteger(id) || id <= 0) throw new TypeError(`bad ${key} id ${id}`);
    }
    const out: Array<z.infer<S>> = [];
    for (let i = 0; i < unique.length; i += PAGE_LIMIT) {
      const chunk = unique.slice(i, i + PAGE_LIMIT);
      const { items } = await this.page(path, key, item, { ...query, filter: { id: chunk }, limit: PAGE_LIMIT });
      out.push(...items);
    }
    return out;
  }

  private async get(path: string, query?: object): Promise<{ status: number; data: unknown }> {
    const response = await this.sdk.request.get<unknown>(path, query);
    return { status: response.response.statusCode ?? 0, data: response.data };
  }

  private async page<S extends z.ZodType>(
    path: string,
    key: string,
    item: S,
    query: object,
  ): Promise<{ items: Array<z.infer<S>>; hasMore: boolean }> {
    const { status, data } = await this.get(path, query);
    if (status === 204) return { items: [], hasMore: false };
    const parsed = parse(pageSchema(key, item), data, 'GET', path);
    return { items: parsed._embedded[key], hasMore: parsed._links?.next !== undefined };
  }

  private async allPages<S extends z.ZodType>(
    path: string,
    key: string,
    item: S,
    query: object,
    limit: number,
    maxPages: number,
  ): Promise<Array<z.infer<S>>> {
    const out: Array<z.infer<S>> = [];
    for (let page = 1; page <= maxPages; page++) {
      const { items, hasMore } = await this.page(path, key, item, { ...query, page, limit });
      out.push(...items);
      if (!hasMore || items.length === 0) return out;
    }
    this.logger.warn('amo.list.capped', { path, pages: maxPages, items: out.length });
    return out;
  }
}

/**
 * Points amocrm-js at our pipeline. `sdk.request` stays the library's ClientRequest (the
 * factories captured that very object when the Client was built), but its connection,
 * and `sdk.connection`, become the AmoConnection; `sdk.token.refresh/fetch` (which would
 * call amocrm.ru directly) go through OAuthTokens.
 */
function installAdapter(sdk: Client, connection: AmoConnection, oauth: OAuthTokens | undefined): void {
  Object.defineProperty(sdk, 'connection', { value: connection });
  Object.defineProperty(sdk.request, 'connection', { value: connection });
  sdk.token.refresh = async () => {
    if (!oauth) throw new Error('a long-lived token cannot be refreshed');
    await oauth.refreshNow();
    return sdk.token.getValue();
  };
  sdk.token.fetch = async () => {
    const code = sdk.environment.get<string | undefined>('auth.code');
    if (!oauth || !code) throw new Error('NO_AUTH_CODE');
    await oauth.exchange(code);
    return sdk.token.getValue();
  };
}

function parse<S extends z.ZodType>(schema: S, data: unknown, method: string, path: string): z.infer<S> {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
  throw new AmoResponseError(method, path, 200, issues);
}

interface AmoFieldValues {
  field_id?: number;
  field_code?: string;
  values: Array<{ value: string; enum_code?: string }>;
}

interface AmoComplexLead {
  request_id: string;
  name: string;
  pipeline_id: number;
  status_id: number;
  price?: number;
  custom_fields_values?: AmoFieldValues[];
  _embedded: {
    tags?: Array<{ id: number }>;
    contacts: Array<
      | { id: number }
      | { first_name: string; last_name: string; name: string; custom_fields_values?: AmoFieldValues[] }
    >;
  };
}

/**
 * A contact's phone and e-mail go to the account's predefined PHONE and EMAIL fields by
 * code — `{field_code: "PHONE", values: [{value, enum_code: "WORK"}]}` — so no per-account
 * field id is needed (amoCRM docs, "Поля и группы полей": a field's `code` "can be used to
 * update the value of the field without passing the field ID"; WORK is a kind both fields
 * have; the complex add example of "Сделки" uses the same shape).
 */
function toContactFields(c: { phone?: string; email?: string }): AmoFieldValues[] {
  return [
    ...(c.phone ? [{ field_code: 'PHONE', values: [{ value: c.phone, enum_code: 'WORK' }] }] : []),
    ...(c.email ? [{ field_code: 'EMAIL', values: [{ value: c.email, enum_code: 'WORK' }] }] : []),
  ];
}

/**
 * ComplexLeadInput → the amoCRM v4 JSON of one deal of leads/complex: custom fields as
 * `custom_fields_values: [{field_id, values: [{value}]}]`, tags by id in `_embedded.tags`,
 * the contact in `_embedded.contacts` (one at most), its phone and e-mail by field code
 * (toContactFields).
 */
export function toComplexLead(input: ComplexLeadInput): AmoComplexLead {
  const fields = (list: Array<{ fieldId: number; value: string }>): AmoFieldValues[] =>
    list.map((f) => ({ field_id: f.fieldId, values: [{ value: f.value }] }));
  const contact =
    'id' in input.contact
      ? { id: input.contact.id }
      : (() => {
          const c = input.contact;
          const values: AmoFieldValues[] = [...toContactFields(c), ...fields(c.customFields)];
          return {
            first_name: c.firstName,
            last_name: c.lastName,
            name: c.name,
            ...(values.length > 0 ? { custom_fields_values: values } : {}),
          };
        })();
  return {
    request_id: input.requestId,
    name: input.name,
    pipeline_id: input.pipelineId,
    status_id: input.statusId,
    ...(input.price !== undefined ? { price: input.price } : {}),
    ...(input.customFields.length > 0 ? { custom_fields_values: fields(input.customFields) } : {}),
    _embedded: {
      ...(input.tagIds.length > 0 ? { tags: input.tagIds.map((id) => ({ id })) } : {}),
      contacts: [contact],
    },
  };
}
