import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { createAmoApp } from './app.js';
import type { SimContext } from './context.js';
import { createStats, defaultFaults, type AmoFaults, type AmoStats } from './middleware.js';
import { TokenStore, type TokenPair } from './oauth.js';
import { ErrorCollector } from './problem.js';
import { FIELD_IDS, STAFF_USER_ID } from './seed.js';
import type { Contact, Lead, TagRef } from './schemas.js';
import { AmoState, type WebhookDelivery } from './state.js';
import { WebhookDispatcher, type FireOptions, type WebhookShape } from './webhooks.js';

/**
 * A faithful in-process amoCRM API v4 simulator for tests, the demo and standalone use.
 * See docs/contracts.md, "amoCRM facts the code relies on".
 */

export { buildWebhookBody, webhookLeadOf } from './webhooks.js';
export type { WebhookBodyInput, WebhookLead, WebhookShape, LeadEvent } from './webhooks.js';
export { AmoState } from './state.js';
export type { WebhookDelivery, LeadChange, AccountInfo } from './state.js';
export type { AmoFaults, AmoStats, RequestRecord, StatsFilter } from './middleware.js';
export type { TokenPair } from './oauth.js';
export type {
  Contact,
  Lead,
  Note,
  Webhook,
  Pipeline,
  Status,
  Tag,
  CustomField,
  CustomFieldValue,
  CustomFieldValuesEntry,
} from './schemas.js';
export { API_USER_ID, STAFF_USER_ID, FIELD_IDS, SERVICES_TAG, WON_STATUS_ID, LOST_STATUS_ID, MAIN_PIPELINE_NAME } from './seed.js';

/**
 * How long a new contact or deal stays out of `?query=` search. amoCRM documents `query`
 * only as a search over the entity's filled fields (amocrm.ru/developers/content/
 * crm_platform/contacts-api) and promises nothing about when a new entity becomes
 * findable; its matching of new data against old runs after the create (duplicate
 * control's "BIG DATA" check is asynchronous: message.help/faq/amo, "Duplicate Checking").
 * The real lag is not published; two seconds is enough that code which trusts one empty
 * search right after a create makes a duplicate here, as it would there.
 */
export const SEARCH_INDEX_DELAY_MS = 2000;

export interface AmoSimulatorOptions {
  /** Default 'company2'. */
  subdomain?: string;
  /** Default 31234567. */
  accountId?: number;
  /** Default 7: more requests than this in any one-second window (API and OAuth alike) get 429. */
  rateLimitRps?: number;
  /** The OAuth app: defaults 'sim-client-id', 'sim-client-secret', 'https://bridge.example/oauth'. */
  clientId?: string;
  clientSecret?: string;
  redirectUri?: string;
  /** When set, this bearer token is always accepted. */
  longLivedToken?: string;
  /** Default 86400. */
  accessTokenTtlSec?: number;
  /**
   * Contacts and leads younger than this are not found by `?query=`; default
   * SEARCH_INDEX_DELAY_MS. 0 makes them findable at once, for tests about something else.
   */
  searchIndexDelayMs?: number;
  /** Shape of the webhooks moveLead sends unless told otherwise; default 'compact'. */
  webhookShape?: WebhookShape;
  /** How long a webhook delivery waits for an answer; default 2000 (amoCRM's 2 s). */
  webhookTimeoutMs?: number;
  /**
   * Whether lead writes through the API (POST/PATCH leads, leads/complex) fire the
   * subscribed webhooks, as real amoCRM does: default true. A create is `leads[add]` only
   * (add_lead), a change `leads[update]`, a move `leads[update]` and `leads[status]`; a
   * write that changes nothing fires nothing (see webhooks.ts). False plays an account
   * whose API writes are never announced.
   */
  apiChangesFireWebhooks?: boolean;
  /** The account's clock in epoch ms (timestamps, token expiry, search index); default Date.now. The rate limit counts real time. */
  now?: () => number;
}

export interface MoveLeadOptions {
  /** Default true: send the webhooks registered for the change. */
  fire?: boolean;
  /** Default: the simulator's webhookShape. */
  shape?: WebhookShape;
  price?: number;
  customFields?: Array<{ field_id: number; values: Array<{ value: string | number | boolean }> }>;
  /** Only these events fire, e.g. ['update_lead'] to play a status webhook amoCRM lost. */
  events?: FireOptions['events'];
  /** Send the body's keys in a random order. */
  shuffleKeys?: boolean;
}

export interface LeadFieldsPatch {
  name?: string;
  price?: number;
  statusId?: number;
  pipelineId?: number;
  customFields?: Array<{ field_id: number; values: Array<{ value: string | number | boolean }> | null }>;
  tags?: TagRef[];
}

export interface AmoSimulator {
  app: Express;
  /** Starts on 127.0.0.1 (port 0 = any free one); resolves to the base URL, e.g. http://127.0.0.1:PORT. */
  listen(port?: number): Promise<string>;
  close(): Promise<void>;
  /** The base URL while listening. */
  readonly url: string | undefined;
  state: AmoState;
  stats: AmoStats;
  faults: AmoFaults;
  /** A code accepted once by POST /oauth2/access_token with grant_type=authorization_code. */
  issueAuthorizationCode(): string;
  /** A token pair as a code exchange would answer it, without the HTTP round trip. */
  issueTokenPair(): TokenPair;
  /** Makes the access tokens issued so far invalid (401) so clients must refresh. */
  revokeAccessTokens(): void;
  /**
   * Staff revoke the long-lived token and issue `token` instead (undefined: none at all):
   * from now on only it is accepted.
   */
  setLongLivedToken(token: string | undefined): void;
  /** A contact a salesperson made in the UI. */
  createContactAsStaff(input: { firstName: string; lastName: string; phone?: string; detmirUserId?: string }): Contact;
  /** A salesperson edits a contact in the UI; a phone given replaces the contact's phones. */
  editContactAsStaff(contactId: number, input: { firstName?: string; lastName?: string; phone?: string }): Contact;
  /** A deal a salesperson made in the UI (fires add_lead webhooks unless fire is false). */
  createLeadAsStaff(
    input: { name: string; statusName?: string; pipelineName?: string; price?: number; contactId?: number; detmirOrderId?: string },
    opts?: { fire?: boolean; shape?: WebhookShape },
  ): Promise<Lead>;
  /**
   * Staff moves a deal; fires the registered webhooks (status_lead → leads[status],
   * update_lead → leads[update]) and resolves when their deliveries were attempted.
   */
  moveLead(
    leadId: number,
    to: { statusId: number; pipelineId?: number } | { statusName: string },
    opts?: MoveLeadOptions,
  ): Promise<void>;
  /** Changes a deal's fields silently: no webhook fires (as when amoCRM loses them). updated_at still advances. */
  setLeadFields(leadId: number, patch: LeadFieldsPatch): Lead;
  /** Staff deletes a deal; fires delete_lead webhooks unless fire is false. */
  deleteLead(leadId: number, opts?: { fire?: boolean; shape?: WebhookShape }): Promise<void>;
  /** Sends the failed webhook deliveries again (amoCRM retries after 5 min, 15 min, 15 min, 1 h). */
  redeliverFailedWebhooks(): Promise<WebhookDelivery[]>;
  /** Resolves when no webhook delivery is under way. */
  webhooksIdle(): Promise<void>;
  statusIdByName(name: string, pipelineName?: string): number;
  /** A status's name (142/143 answer the main pipeline's names unless a pipeline is given). */
  statusNameById(statusId: number, pipelineId?: number): string;
  pipelineIdByName(name: string): number;
  fieldIdByName(entity: 'leads' | 'contacts', name: string): number;
}

export function createAmoSimulator(options: AmoSimulatorOptions = {}): AmoSimulator {
  const now = options.now ?? Date.now;
  const state = new AmoState({
    accountId: options.accountId ?? 31_234_567,
    subdomain: options.subdomain ?? 'company2',
    now,
    searchIndexDelayMs: options.searchIndexDelayMs ?? SEARCH_INDEX_DELAY_MS,
  });
  const tokens = new TokenStore(
    {
      clientId: options.clientId ?? 'sim-client-id',
      clientSecret: options.clientSecret ?? 'sim-client-secret',
      redirectUri: options.redirectUri ?? 'https://bridge.example/oauth',
    },
    options.accessTokenTtlSec ?? 86_400,
    options.longLivedToken,
    now,
  );
  const faults = defaultFaults();
  const stats = createStats();
  const dispatcher = new WebhookDispatcher(state, options.webhookTimeoutMs ?? 2000);
  const defaultShape = options.webhookShape ?? 'compact';
  const ctx: SimContext = {
    state,
    dispatcher,
    apiChangesFireWebhooks: options.apiChangesFireWebhooks ?? true,
    webhookShape: defaultShape,
  };
  const app = createAmoApp({ ctx, tokens, faults, stats, rateLimitRps: options.rateLimitRps ?? 7, now });

  let server: Server | undefined;
  let url: string | undefined;

  const requireLead = (leadId: number): Lead => {
    const lead = state.leads.get(leadId);
    if (!lead || lead.is_deleted) throw new Error(`amo simulator: no lead ${leadId}`);
    return lead;
  };

  /** Runs a simulator-side write through the API's validation; a bad one is a test bug. */
  const checked = <T>(what: string, prepare: (errors: ErrorCollector) => T): T => {
    const errors = new ErrorCollector();
    const result = prepare(errors);
    const error = errors.toError();
    if (error) throw new Error(`amo simulator: ${what}: ${JSON.stringify(error.requestErrors)}`);
    return result;
  };

  const statusIn = (name: string, pipelineId: number): number | undefined =>
    state.pipeline(pipelineId)?.statuses.find((s) => s.name === name)?.id;

  return {
    app,
    state,
    stats,
    faults,
    get url() {
      return url;
    },

    async listen(port = 0) {
      if (url) return url;
      const srv = createServer(app);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(port, '127.0.0.1', () => resolve());
      });
      server = srv;
      url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
      return url;
    },

    async close() {
      dispatcher.abortAll();
      const srv = server;
      server = undefined;
      url = undefined;
      if (srv) {
        // Hanging requests (faults.hang) would otherwise keep close() waiting forever.
        srv.closeAllConnections();
        await new Promise<void>((resolve) => srv.close(() => resolve()));
      }
      await dispatcher.idle();
    },

    issueAuthorizationCode: () => tokens.issueAuthorizationCode(),
    issueTokenPair: () => tokens.issuePair(),
    revokeAccessTokens: () => tokens.revokeAccessTokens(),
    setLongLivedToken: (token) => tokens.setLongLivedToken(token),

    createContactAsStaff(input) {
      const write = checked('createContactAsStaff', (errors) =>
        state.prepareContact(
          {
            first_name: input.firstName,
            last_name: input.lastName,
            custom_fields_values: [
              ...(input.phone ? [{ field_id: FIELD_IDS.contactPhone, values: [{ value: input.phone, enum_code: 'MOB' }] }] : []),
              ...(input.detmirUserId ? [{ field_id: FIELD_IDS.detmirUserId, values: [{ value: input.detmirUserId }] }] : []),
            ],
          },
          errors,
          '0',
        ),
      );
      return structuredClone(state.applyContact(null, write, STAFF_USER_ID));
    },

    editContactAsStaff(contactId, input) {
      const current = state.contacts.get(contactId);
      if (!current || current.is_deleted) throw new Error(`amo simulator: no contact ${contactId}`);
      const write = checked('editContactAsStaff', (errors) =>
        state.prepareContact(
          {
            first_name: input.firstName,
            last_name: input.lastName,
            custom_fields_values: input.phone ? [{ field_id: FIELD_IDS.contactPhone, values: [{ value: input.phone, enum_code: 'MOB' }] }] : [],
          },
          errors,
          '0',
        ),
      );
      return structuredClone(state.applyContact(current, write, STAFF_USER_ID));
    },

    async createLeadAsStaff(input, opts = {}) {
      const pipelineId = input.pipelineName ? state.pipelineIdByName(input.pipelineName) : state.mainPipeline().id;
      const statusId = input.statusName ? state.statusIdByName(input.statusName, state.pipeline(pipelineId)?.name) : undefined;
      const write = checked('createLeadAsStaff', (errors) =>
        state.prepareLead(
          {
            name: input.name,
            price: input.price,
            pipeline_id: pipelineId,
            status_id: statusId,
            custom_fields_values: input.detmirOrderId
              ? [{ field_id: FIELD_IDS.detmirOrderId, values: [{ value: input.detmirOrderId }] }]
              : undefined,
            _embedded: input.contactId ? { contacts: [{ id: input.contactId }] } : undefined,
          },
          null,
          errors,
          '0',
        ),
      );
      const change = state.applyLead(null, write, STAFF_USER_ID);
      if (opts.fire !== false) await dispatcher.fire([change], { shape: opts.shape ?? defaultShape });
      return change.lead;
    },

    async moveLead(leadId, to, opts = {}) {
      const lead = requireLead(leadId);
      let statusId: number;
      let pipelineId: number | undefined;
      if ('statusName' in to) {
        // The name is looked up in the deal's own pipeline first (stage names repeat across pipelines).
        const main = state.mainPipeline().id;
        pipelineId = statusIn(to.statusName, lead.pipeline_id) !== undefined ? lead.pipeline_id : main;
        const found = statusIn(to.statusName, pipelineId);
        if (found === undefined) throw new Error(`amo simulator: no status named "${to.statusName}"`);
        statusId = found;
      } else {
        statusId = to.statusId;
        pipelineId = to.pipelineId;
      }
      const write = checked(`moveLead(${leadId})`, (errors) =>
        state.prepareLead(
          { status_id: statusId, pipeline_id: pipelineId, price: opts.price, custom_fields_values: opts.customFields },
          lead,
          errors,
          '0',
        ),
      );
      const change = state.applyLead(lead, write, STAFF_USER_ID);
      if (opts.fire === false) return;
      await dispatcher.fire([change], { shape: opts.shape ?? defaultShape, events: opts.events, shuffleKeys: opts.shuffleKeys });
    },

    setLeadFields(leadId, patch) {
      const lead = requireLead(leadId);
      const write = checked(`setLeadFields(${leadId})`, (errors) =>
        state.prepareLead(
          {
            name: patch.name,
            price: patch.price,
            status_id: patch.statusId,
            pipeline_id: patch.pipelineId,
            custom_fields_values: patch.customFields,
            _embedded: patch.tags ? { tags: patch.tags } : undefined,
          },
          lead,
          errors,
          '0',
        ),
      );
      return state.applyLead(lead, write, STAFF_USER_ID).lead;
    },

    async deleteLead(leadId, opts = {}) {
      requireLead(leadId);
      const change = state.deleteLead(leadId, STAFF_USER_ID);
      if (opts.fire !== false) await dispatcher.fire([change], { shape: opts.shape ?? defaultShape });
    },

    redeliverFailedWebhooks: () => dispatcher.redeliverFailed(),
    webhooksIdle: () => dispatcher.idle(),
    statusIdByName: (name, pipelineName) => state.statusIdByName(name, pipelineName),
    statusNameById: (statusId, pipelineId) => state.statusNameById(statusId, pipelineId),
    pipelineIdByName: (name) => state.pipelineIdByName(name),
    fieldIdByName: (entity, name) => state.fieldIdByName(entity, name),
  };
}
