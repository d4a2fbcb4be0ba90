import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * The whole database in one interface; every query is checked against it.
 * Times are integer milliseconds since the epoch and flags are 0/1 integers, so the
 * same rows read the same on SQLite and PostgreSQL.
 */
export interface Database {
  inbox: InboxTable;
  jobs: JobsTable;
  orders: OrdersTable;
  contacts: ContactsTable;
  amo_creates: AmoCreatesTable;
  amo_tokens: AmoTokensTable;
  rate_slots: RateSlotsTable;
  kv: KvTable;
  api_keys: ApiKeysTable;
  webview_tokens: WebviewTokensTable;
  webview_sessions: WebviewSessionsTable;
  webview_orders: WebviewOrdersTable;
  deal_updates: DealUpdatesTable;
  webview_pending_signins: WebviewPendingSigninsTable;
  order_history: OrderHistoryTable;
  paused_users: PausedUsersTable;
  order_log: OrderLogTable;
  peer_calls: PeerCallsTable;
  admin_sessions: AdminSessionsTable;
}

/** Every accepted webhook, raw, before any work is done on it. */
export interface InboxTable {
  id: Generated<number>;
  source: 'partner' | 'amocrm';
  /** Unique: partner webhook-id, or a digest of an amoCRM event. A repeat is absorbed. */
  dedupe_key: string;
  received_at: number;
  /** The body as received; '' once retention emptied it (the key outlives it, for de-duplication). */
  body: string;
}

/**
 * A job's life: `queued` (waiting for its first run, or put back without spending an
 * attempt), `running` (leased), `retrying` (an attempt failed; waiting for the next),
 * then `done` or `dead` (the dead letter: attempts spent, or a permanent failure).
 */
export const JOB_STATUSES = ['queued', 'running', 'retrying', 'done', 'dead'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface JobsTable {
  id: Generated<number>;
  kind: string;
  /** Serialization key: jobs with the same key run one at a time, in id order. */
  job_key: string;
  /**
   * JSON text, parsed by the worker with its kind's schema (src/queue/jobs.ts). A text
   * column, not JSONColumnType: both drivers hand it back as a string. Written once.
   */
  payload: ColumnType<string, string, never>;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  run_at: number;
  locked_by: string | null;
  locked_until: number | null;
  /** How many of its attempts ended with the lease running out (the worker died or hung). */
  lease_expiries: Generated<number>;
  /** The last failure: its message on the first line, then where it was thrown. */
  last_error: string | null;
  inbox_id: number | null;
  created_at: number;
  updated_at: number;
}

/** A partner order and what the bridge knows and has pushed about it. */
export interface OrdersTable {
  order_id: string;
  user_id: string;
  service_id: string;
  contact_id: number | null;
  deal_id: number | null;
  partner_status: string;
  /** JSON of the last partner order seen (from a webhook or a read). */
  snapshot: string;
  /** The snapshot's updatedAt (ms): a late, older event never overwrites a newer one. */
  partner_updated_at: number;
  /** Why the order needs a person, if it does (e.g. created outside the webview). */
  note: string | null;
  /** 'webhook' | 'webview': where the order came from. */
  origin: string;
  /** 1 when Company 1 closed the order itself (stage 1); the bridge then leaves it alone. */
  closed_by_partner: number;
  /** 1 once additionalInfo {contactId, externalId} was written to the partner order. */
  info_pushed: number;
  /** The last status the stage sync asked Company 1 for (set before the PATCH), if any. */
  status_by_bridge: string | null;
  created_at: number;
  updated_at: number;
  /**
   * When retention took the customer out of the snapshot of this final order (null: never).
   * A write after it (updated_at later) brings a new snapshot, due in its turn.
   */
  pii_purged_at: number | null;
  /** The customer's name, lower-cased (src/sync/order-search.ts), for the admin search; null once purged. */
  search_name: Generated<string | null>;
  /** The customer phone's digits, for the admin search; null once purged. */
  phone_digits: Generated<string | null>;
  /** When an admin paused the order (null: not paused): no writes to either side until resumed. */
  paused_at: Generated<number | null>;
}

/** The contact directory: Company 1 user id (detmirUserId) ↔ amoCRM contact id. */
export interface ContactsTable {
  user_id: string;
  contact_id: number;
  created_at: number;
  /**
   * JSON `{field: fingerprint}` of the fields Company 1 owns, as the bridge last wrote or
   * saw them (src/sync/contact-fields.ts); null or a field absent: not known.
   */
  synced_fields: string | null;
  /** createdAt (ms) of the order those values came from; null: seen in amoCRM, not from an order. */
  synced_order_at: number | null;
  /** The customer's name as Company 1 last sent it (src/sync/contact-directory.ts); null: not known. */
  name: string | null;
  /** `name` as the admin search matches it: lower case, ё as е. */
  name_key: string | null;
  /** The last four digits of the customer's phone; the whole phone is never kept here. */
  phone_last4: string | null;
  /** When an order last used this entry; retention drops entries unused for six months. */
  last_used_at: number | null;
}

/**
 * Creates whose outcome may be unknown. Written before a create is sent, cleared of doubt
 * when the id is recorded; a later attempt that finds a started create without an id
 * does not create again on the strength of one empty search (the search index trails).
 */
export interface AmoCreatesTable {
  /** 'contact:<userId>' or 'deal:<orderId>' */
  natural_key: string;
  /** When the create was claimed, or when its last attempt ended without an answer. */
  started_at: number;
  /** The job making the create: while it holds its lease, the create may be in flight. */
  job_id: number | null;
  entity_id: number | null;
}

export interface AmoTokensTable {
  id: string;
  access_token: string;
  refresh_token: string;
  expires_at: number;
  updated_at: number;
}

/** Start times of recent amoCRM requests, shared by every instance (the rate limiter). */
export interface RateSlotsTable {
  id: Generated<number>;
  bucket: string;
  at: number;
}

/** Small named values: sweep cursor, resolved mapping ids. */
export interface KvTable {
  key: string;
  value: string;
  updated_at: number;
}

/** Webview sign-in tokens already used (replay protection), kept until they expire. */
export interface WebviewTokensTable {
  /** `jti:<jti>`, or `sig:<hex>` (SHA-256 of the decoded signature) when it carries no jti. */
  token_id: string;
  user_id: string;
  used_at: number;
  expires_at: number;
}

/** Webview sessions; the cookie holds the id, this table only its SHA-256. */
export interface WebviewSessionsTable {
  id_hash: string;
  /** Company 1's user id (the token's sub; detmirUserId in amoCRM). */
  user_id: string;
  given_name: string;
  family_name: string;
  phone: string;
  created_at: number;
  expires_at: number;
}

/**
 * Orders created through the webview, by Idempotency-Key: written before the create is
 * sent (order_id null until Company 1 answers and the order is recorded).
 */
export interface WebviewOrdersTable {
  idempotency_key: string;
  user_id: string;
  service_id: string;
  /** The user's comment, sent to Company 1 and shown back on the order's page. */
  comment: string | null;
  started_at: number;
  order_id: string | null;
  recorded_at: number | null;
}

/**
 * What a deal was given for its order (src/sync/order-events.ts): a note, then a move,
 * per order event or for the user's comment. Notes' texts are not kept here.
 */
export interface DealUpdatesTable {
  order_id: string;
  /** An order event of the reverse table, or the user's comment. */
  kind: 'cancelled' | 'executedByPartner' | 'rejectedByPartner' | 'comment';
  deal_id: number;
  noted_at: number | null;
  moved_at: number | null;
}

/**
 * A sign-in link for another user, opened while a session exists ("Continue as …?"):
 * bound to that session (the hash of its id) until the user confirms or it expires.
 */
export interface WebviewPendingSigninsTable extends Omit<WebviewSessionsTable, 'id_hash'> {
  /** The session that must confirm: the hash of its id (webview_sessions.id_hash). */
  session_hash: string;
}

/** Who made a recorded change of an order: Company 1 (webhook), the stage table (bridge), the user (webview). */
export type OrderHistorySource = 'partner' | 'bridge' | 'webview';

/** Each picture of an order the bridge recorded, by Company 1's updatedAt: what the timeline diffs. */
export interface OrderHistoryTable {
  order_id: string;
  /** The order's updatedAt (ms). */
  partner_updated_at: number;
  recorded_at: number;
  source: OrderHistorySource;
  status: string;
  cost: number | null;
  paid: number;
  subscription_status: string | null;
}

/** Outside services the bridge calls. */
export const PEERS = ['amocrm', 'partner'] as const;
export type Peer = (typeof PEERS)[number];

/** How an exchange ended: the status class, a 429 apart, or no answer at all. */
export const CALL_OUTCOMES = ['2xx', '4xx', '429', '5xx', 'timeout', 'network'] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

/** Every HTTP exchange with amoCRM and Company 1 (src/admin/peer-calls.ts), kept 8 days, for GET /admin/quota. */
export interface PeerCallsTable {
  id: Generated<number>;
  peer: Peer;
  /** Method and route template, e.g. `GET /api/v4/leads/{id}`: never an id or a query. */
  endpoint: string;
  outcome: CallOutcome;
  /** The order the call was made for, when it was made for exactly one. */
  order_id: string | null;
  /** When the exchange ended. */
  at: number;
  duration_ms: number;
}

export type Job = Selectable<JobsTable>;
export type NewJob = Insertable<JobsTable>;
export type Order = Selectable<OrdersTable>;
export type OrderUpdate = Updateable<OrdersTable>;

/** Admin API keys (`amobridge apikey create`); the secret itself is never stored. */
export interface ApiKeysTable {
  id: string;
  name: string;
  /** sha256 of the secret part, hex. */
  secret_hash: string;
  /** Space-separated scopes, e.g. "jobs:read jobs:replay". */
  scopes: string;
  created_at: number;
  revoked_at: number | null;
}

/** Users an admin paused: none of their orders, present or future, gets writes until resumed. */
export interface PausedUsersTable {
  user_id: string;
  paused_at: number;
}

/** Who an order log entry is about: Company 1, amoCRM, the bridge's own decisions, an admin. */
export type OrderLogSource = 'partner' | 'amocrm' | 'bridge' | 'admin';

/**
 * Append-only: what the worker did and decided about an order (job attempts, calls and
 * what they changed, decisions), for its admin timeline. `detail` is JSON of ids,
 * statuses, costs and field names: never tokens, names or phones. Deleted after RETENTION.
 */
export interface OrderLogTable {
  id: Generated<number>;
  order_id: string;
  at: number;
  source: OrderLogSource;
  event: string;
  detail: string;
}

/** Sessions of the admin page (/admin/ui); the cookie holds the id, this table only its SHA-256. */
export interface AdminSessionsTable {
  id_hash: string;
  /** The API key signed in with (api_keys.id): its scopes, and whether it is still valid, are read on each request. */
  key_id: string;
  /** The synchronizer token every form of the session carries. */
  csrf_token: string;
  /** A one-time notice for the next page (post/redirect/get), as JSON; null when none. */
  flash: string | null;
  created_at: number;
  expires_at: number;
}
