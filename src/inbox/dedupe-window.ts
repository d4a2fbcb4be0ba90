/**
 * A partner webhook-id is accepted only within 5 minutes either side of its signed
 * timestamp (Standard Webhooks, standardwebhooks' WEBHOOK_TOLERANCE_IN_SECONDS), so a
 * repeat of it can arrive at most 10 minutes after the first.
 */
const PARTNER_REPEAT_SPAN_MS = 2 * 5 * 60_000;

/**
 * amoCRM redelivers a webhook it holds as failed after 5 min, 15 min, 15 min and 1 h
 * (amocrm.ru/developers/content/crm_platform/webhooks-format; src/sandbox/amo/webhooks.ts),
 * 95 minutes in all. A repeat is absorbed while the job of its first delivery waits
 * (src/inbox/accept-amo-event.ts), which needs that delivery's row and key: kept this long,
 * a repeat during an outage of the worker is still recognised.
 */
const AMO_REDELIVERY_SPAN_MS = (5 + 15 + 15 + 60) * 60_000;

/**
 * How long an inbox row's dedupe key must outlive its arrival for every repeat to be
 * absorbed, with a margin: retention keeps the row (its body emptied) at least this long,
 * however short RETENTION is.
 */
export const INBOX_KEY_WINDOW_MS = Math.max(PARTNER_REPEAT_SPAN_MS, AMO_REDELIVERY_SPAN_MS) + 25 * 60_000;
