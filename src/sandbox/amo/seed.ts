import type { CustomField, CustomFieldType, EntityType, Pipeline, Status, Tag } from './schemas.js';

/**
 * The seeded account: what Company 2's amoCRM looks like to the bridge. The bridge resolves
 * names to ids at start-up, so only the ids docs/contracts.md pins are fixed here (142/143, the tag
 * 499278 and the fields 932790/932792); the rest are this simulator's choice.
 */

/** The user the integration's tokens act as (`current_user_id` of GET /api/v4/account). */
export const API_USER_ID = 8_100_001;
/** The salesperson who moves deals and creates contacts in the UI. */
export const STAFF_USER_ID = 8_100_002;

/** Shared by every pipeline, as in amoCRM ("Each pipeline has 3 system statuses: Incoming
 * Leads, Closed – Won (ID = 142), Closed – Lost (ID = 143)", kommo.com leads-pipelines docs). */
export const WON_STATUS_ID = 142;
export const LOST_STATUS_ID = 143;

export const MAIN_PIPELINE_NAME = 'Company 2';
export const SERVICES_TAG: Tag = { id: 499_278, name: 'Companies 1. Services', color: null };

export const FIELD_IDS = {
  contactPhone: 932_780,
  contactEmail: 932_782,
  detmirUserId: 932_790,
  detmirOrderId: 932_792,
  subscriptionStatus: 932_794,
  trialDate: 932_796,
  leadSource: 932_798,
} as const;

/** The open stages of pipeline "Company 2" after "Incoming leads", in order. */
export const MAIN_STAGES = [
  'New lead',
  'Recorded for trial',
  'Confirmed VU',
  'Lesson Passed',
  'Waiting for a solution',
  'Waiting for payment',
  'Payment received',
  'Submit Subscription Status',
  'Another lesson has passed',
];

const SALES_STAGES = ['Qualification', 'Proposal', 'Negotiation'];

const COLORS = ['#99ccff', '#ffff99', '#ffcc66', '#ccc8f9', '#deff81', '#87f2c0', '#f9deff', '#ffdbdb', '#d6eaff'];

function buildPipeline(
  accountId: number,
  pipelineId: number,
  name: string,
  sort: number,
  isMain: boolean,
  stages: string[],
): Pipeline {
  const status = (id: number, statusName: string, statusSort: number, extra: Partial<Status> = {}): Status => ({
    id,
    name: statusName,
    sort: statusSort,
    is_editable: true,
    pipeline_id: pipelineId,
    color: COLORS[statusSort / 10 % COLORS.length] ?? '#99ccff',
    type: 0,
    account_id: accountId,
    ...extra,
  });
  const statuses: Status[] = [
    status(pipelineId * 10, 'Incoming leads', 10, { type: 1, is_editable: false, color: '#c1c1c1' }),
    ...stages.map((stage, i) => status(pipelineId * 10 + i + 1, stage, 20 + i * 10)),
    status(WON_STATUS_ID, 'Closed - won', 10_000, { is_editable: false, color: '#CCFF66' }),
    status(LOST_STATUS_ID, 'Closed - lost', 11_000, { is_editable: false, color: '#D5D8DB' }),
  ];
  return {
    id: pipelineId,
    name,
    sort,
    is_main: isMain,
    is_unsorted_on: true,
    is_archive: false,
    account_id: accountId,
    statuses,
  };
}

export function seedPipelines(accountId: number): Pipeline[] {
  return [
    buildPipeline(accountId, 7_710_001, MAIN_PIPELINE_NAME, 1, true, MAIN_STAGES),
    buildPipeline(accountId, 7_710_002, 'Sales', 2, false, SALES_STAGES),
  ];
}

function field(
  accountId: number,
  entity: EntityType,
  id: number,
  name: string,
  type: CustomFieldType,
  sort: number,
  opts: { code?: string; enums?: string[]; firstEnumId?: number; predefined?: boolean } = {},
): CustomField {
  return {
    id,
    name,
    type,
    code: opts.code ?? null,
    sort,
    is_api_only: false,
    enums: opts.enums ? opts.enums.map((value, i) => ({ id: (opts.firstEnumId ?? id * 10) + i, value, sort: (i + 1) * 2 })) : null,
    group_id: null,
    required_statuses: [],
    is_deletable: !opts.predefined,
    is_predefined: Boolean(opts.predefined),
    entity_type: entity,
    remind: null,
    hidden_statuses: [],
    account_id: accountId,
  };
}

export function seedCustomFields(accountId: number): Record<EntityType, CustomField[]> {
  return {
    contacts: [
      // PHONE/EMAIL are amoCRM's predefined multitext fields; their enums are the phone and
      // e-mail kinds (WORK, WORKDD, MOB, FAX, HOME, OTHER / WORK, PRIV, OTHER).
      field(accountId, 'contacts', FIELD_IDS.contactPhone, 'Phone', 'multitext', 4, {
        code: 'PHONE',
        enums: ['WORK', 'WORKDD', 'MOB', 'FAX', 'HOME', 'OTHER'],
        firstEnumId: 1_100_001,
        predefined: true,
      }),
      field(accountId, 'contacts', FIELD_IDS.contactEmail, 'Email', 'multitext', 6, {
        code: 'EMAIL',
        enums: ['WORK', 'PRIV', 'OTHER'],
        firstEnumId: 1_100_011,
        predefined: true,
      }),
      field(accountId, 'contacts', FIELD_IDS.detmirUserId, 'detmirUserId', 'text', 500),
    ],
    leads: [
      field(accountId, 'leads', FIELD_IDS.detmirOrderId, 'detmirOrderId', 'text', 500),
      field(accountId, 'leads', FIELD_IDS.subscriptionStatus, 'Subscription status', 'text', 502),
      // Not used by the bridge: a date and a select field so that full-shape webhooks carry
      // the awkward old-style values (a bare `[values][0]=<unix>` and `[enum]`).
      field(accountId, 'leads', FIELD_IDS.trialDate, 'Trial date', 'date', 504),
      field(accountId, 'leads', FIELD_IDS.leadSource, 'Lead source', 'select', 506, {
        enums: ['Website', 'Marketplace', 'Referral'],
        firstEnumId: 1_100_021,
      }),
    ],
  };
}

export function seedTags(): Tag[] {
  return [{ ...SERVICES_TAG }];
}
