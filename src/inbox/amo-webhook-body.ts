import qs from 'qs';
import { z } from 'zod';

/**
 * amoCRM's outgoing webhook body, reduced to what the bridge trusts: "lead N changed".
 *
 * amoCRM posts `application/x-www-form-urlencoded` with PHP-style bracketed keys and only
 * string values ("WebHook отправляется в формате x-www-form-urlencoded",
 * amocrm.ru/developers/content/crm_platform/webhooks-format). Keys come in no promised
 * order, one body may carry several events (`leads[add|update|status|delete]`) and several
 * leads each, and the shape differs by account age (compact: ids only; full: the lead with
 * custom fields in the pre-v4 shape; legacy: no `account[id]`). See docs/contracts.md and
 * src/sandbox/amo/webhooks.ts for captured shapes.
 *
 * Nothing is signed, so nothing here beyond the lead id is acted on: the worker re-reads
 * the deal through the API. The per-event fragment is kept only for the inbox record and
 * the duplicate check.
 */

export const AMO_LEAD_EVENTS = ['add', 'update', 'status', 'delete'] as const;
export type AmoLeadEvent = (typeof AMO_LEAD_EVENTS)[number];

export interface AmoWebhookAccount {
  id?: number;
  subdomain?: string;
}

export interface AmoWebhookEvent {
  dealId: number;
  event: AmoLeadEvent;
  statusId?: number;
  pipelineId?: number;
  /** The lead's part of the body as parsed (all values strings). Not trusted. */
  fragment: Record<string, unknown>;
}

export interface AmoWebhookBody {
  account: AmoWebhookAccount;
  events: AmoWebhookEvent[];
  /**
   * Lead events the bridge does not act on (`leads[responsible]`, `leads[restore]`,
   * `leads[note]`…), named for the log. They are tolerated, not refused: a 4xx counts as a
   * failed delivery, and amoCRM switches the whole webhook off after 100 of them in 2 hours.
   */
  ignored: string[];
}

export type AmoWebhookParseResult =
  | { ok: true; body: AmoWebhookBody }
  /** `tooLarge`: refused by size alone, before parsing (an HTTP 413). */
  | { ok: false; error: string; tooLarge?: true };

/**
 * qs options. Its default depth (5) would fold the 7-deep
 * `leads[status][0][custom_fields][0][values][0][value]` into one odd key, and its default
 * arrayLimit (20) turns longer lists into index-keyed objects; both are raised, and index
 * objects are accepted anyway (a list past arrayLimit still arrives as one).
 */
/**
 * The most leads (distinct ids) one amoCRM webhook body may name. Each costs an inbox row
 * and a job in the answer's transaction, inside amoCRM's 2 s. On a shared 2-core machine
 * 500 took 0.1–0.8 s on SQLite and 0.3–2.5 s on PostgreSQL (idle to load 12); 9,999 took
 * 1.2–1.9 s on SQLite, all of it with the event loop blocked, and 7 s on PostgreSQL.
 * A bigger body is refused with a 413; the sweep of recently updated deals still finds
 * its deals.
 */
export const AMO_WEBHOOK_MAX_LEADS = 500;

export const QS_OPTIONS = { depth: 10, arrayLimit: 1000, parameterLimit: 10_000 } as const;

/** Ids are decimal strings of positive integers that fit a JS number; nothing else. */
const idString = z
  .string()
  .regex(/^[1-9][0-9]{0,15}$/, 'must be a positive integer')
  .transform(Number)
  .refine(Number.isSafeInteger, 'is too large');

const accountSchema = z
  .object({
    id: idString.optional(),
    subdomain: z
      .string()
      .regex(/^[a-z0-9-]{1,63}$/i, 'must be an account subdomain')
      .optional(),
  })
  .refine((a) => a.id !== undefined || a.subdomain !== undefined, {
    message: 'needs account[id] or account[subdomain]',
  });

const leadSchema = z.looseObject({
  id: idString,
  // Informational only (the worker reads the deal's real stage); a bad one is dropped, not refused.
  status_id: idString.optional().catch(undefined),
  pipeline_id: idString.optional().catch(undefined),
});

const objectSchema = z.record(z.string(), z.unknown());
type PlainObject = z.infer<typeof objectSchema>;

function isObject(value: unknown): value is PlainObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function issuesText(issues: z.core.$ZodIssue[], prefix: string): string {
  return issues
    .map((i) => `${prefix}${i.path.map((p) => `[${String(p)}]`).join('')}: ${i.message}`)
    .join('; ');
}

/** The entries of a qs list, which is an array, or an object keyed by index past arrayLimit. */
function listEntries(value: unknown, where: string): Array<[string, unknown]> | string {
  if (Array.isArray(value)) return value.map((v, i): [string, unknown] => [String(i), v]);
  if (!isObject(value)) return `${where}: expected a list of leads`;
  const entries = Object.entries(value);
  const bad = entries.find(([k]) => !/^(0|[1-9][0-9]*)$/.test(k));
  if (bad) return `${where}[${bad[0]}]: expected a numeric index`;
  return entries.sort(([a], [b]) => Number(a) - Number(b));
}

/** `leads[<event>][<n>][id]`, the one key per lead of every shape; the event is checked apart. */
const LEAD_ID_KEY = /^leads\[([a-z_]+)\]\[[^\]]*\]\[id\]$/;

function decodeFormPart(part: string): string {
  if (!part.includes('%') && !part.includes('+')) return part;
  try {
    return decodeURIComponent(part.replace(/\+/g, ' '));
  } catch {
    return part; // qs keeps a malformed escape as it is, and so does the count
  }
}

/**
 * Parameters and leads (distinct ids) of a raw form body, counted in one linear pass
 * without building anything: a body too big to accept is refused before qs.parse, whose
 * cost grows with the body (0.2 s for 9,999 leads, 0.4 s for 27,000 parameters).
 */
export function countAmoWebhookBody(text: string): { parameters: number; leads: number } {
  let parameters = 0;
  const ids = new Set<string>();
  for (const part of text.split('&')) {
    if (part === '') continue;
    parameters++;
    const eq = part.indexOf('=');
    if (eq < 0 || !part.startsWith('leads')) continue;
    const key = LEAD_ID_KEY.exec(decodeFormPart(part.slice(0, eq)));
    if (key && (AMO_LEAD_EVENTS as readonly string[]).includes(key[1]!)) ids.add(decodeFormPart(part.slice(eq + 1)));
  }
  return { parameters, leads: ids.size };
}

/** Why a body is too big to parse, or undefined. */
function tooLarge(text: string): string | undefined {
  const { parameters, leads } = countAmoWebhookBody(text);
  if (leads > AMO_WEBHOOK_MAX_LEADS) return `the body names ${leads} leads; amoCRM bodies of at most ${AMO_WEBHOOK_MAX_LEADS} are taken`;
  // qs silently drops parameters past its limit; a truncated body must not pass as whole.
  if (parameters > QS_OPTIONS.parameterLimit) return `more than ${QS_OPTIONS.parameterLimit} parameters`;
  return undefined;
}

/** Parses a raw webhook body; any error message names the offending key. */
export function parseAmoWebhookBody(text: string): AmoWebhookParseResult {
  const oversize = tooLarge(text);
  if (oversize) return { ok: false, error: oversize, tooLarge: true };
  let parsed: PlainObject;
  try {
    parsed = qs.parse(text, { ...QS_OPTIONS, strictDepth: true });
  } catch (error) {
    return { ok: false, error: `not a form body amoCRM sends: ${(error as Error).message}` };
  }

  if (parsed.account === undefined) return { ok: false, error: 'account: missing (account[id] or account[subdomain])' };
  if (!isObject(parsed.account)) return { ok: false, error: 'account: expected account[id] / account[subdomain]' };
  const account = accountSchema.safeParse(parsed.account);
  if (!account.success) return { ok: false, error: issuesText(account.error.issues, 'account') };

  const events: AmoWebhookEvent[] = [];
  const ignored: string[] = [];
  const leads = parsed.leads;
  if (leads !== undefined) {
    if (!isObject(leads)) return { ok: false, error: 'leads: expected leads[<event>][<n>][…]' };
    for (const [event, list] of Object.entries(leads)) {
      if (!(AMO_LEAD_EVENTS as readonly string[]).includes(event)) {
        ignored.push(`leads[${event}]`);
        continue;
      }
      const where = `leads[${event}]`;
      const entries = listEntries(list, where);
      if (typeof entries === 'string') return { ok: false, error: entries };
      for (const [index, entry] of entries) {
        const at = `${where}[${index}]`;
        if (!isObject(entry)) return { ok: false, error: `${at}: expected a lead (${at}[id]=…)` };
        const lead = leadSchema.safeParse(entry);
        if (!lead.success) return { ok: false, error: issuesText(lead.error.issues, at) };
        events.push({
          dealId: lead.data.id,
          event: event as AmoLeadEvent,
          ...(lead.data.status_id !== undefined ? { statusId: lead.data.status_id } : {}),
          ...(lead.data.pipeline_id !== undefined ? { pipelineId: lead.data.pipeline_id } : {}),
          fragment: entry,
        });
      }
    }
  }
  // A fixed order (event kind, then as listed) so that the same body always yields the same list.
  events.sort((a, b) => AMO_LEAD_EVENTS.indexOf(a.event) - AMO_LEAD_EVENTS.indexOf(b.event));
  return { ok: true, body: { account: account.data, events, ignored } };
}
