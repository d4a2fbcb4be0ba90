import type { OrderStatus } from '../partner/schema.js';
import type { TimelineEntry } from '../sync/webview-orders.js';

/** How the webview words and formats things for people. Pure; used by the templates. */

export const STATUS_LABELS: Record<OrderStatus, string> = {
  // Company 1 shows on_approval to its users as "In processing" (docs/contracts.md).
  on_approval: 'In processing',
  approved: 'Approved',
  in_work: 'In work',
  executed: 'Completed',
  rejected: 'Declined',
  cancelled: 'Cancelled',
};

export function statusLabel(status: OrderStatus): string {
  return STATUS_LABELS[status];
}

/** Company 2's customers are in Russia: prices in roubles, times in Moscow time. */
const money = new Intl.NumberFormat('ru-RU', { style: 'currency', currency: 'RUB', maximumFractionDigits: 2 });
const dateTime = new Intl.DateTimeFormat('en-GB', {
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  timeZone: 'Europe/Moscow',
});

export function formatMoney(amount: number | null): string {
  return amount === null ? 'Not set yet' : money.format(amount);
}

export function formatDateTime(at: string | number): string {
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? '' : `${dateTime.format(date)} MSK`;
}

export function isoDateTime(at: string | number): string {
  const date = new Date(at);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

/** A timeline event in words. */
export function timelineText(entry: TimelineEntry): { title: string; detail?: string } {
  switch (entry.event) {
    case 'placed':
      return { title: 'Order placed', detail: entry.origin === 'webview' ? 'Here, in Company 2’s page' : 'In the Company 1 app' };
    case 'received':
      return { title: 'Received by Company 2' };
    case 'with_manager':
      return { title: 'Passed to a Company 2 manager' };
    case 'reported':
      return { title: `Status: ${statusLabel(entry.status)}`, detail: 'Reported by Company 1' };
    case 'manager_update':
      return { title: 'Updated by your Company 2 manager' };
    case 'now':
      return { title: `Now: ${statusLabel(entry.status)}`, ...(entry.changed ? { detail: 'Last change of the order' } : {}) };
  }
}

/** What the templates get as `it.fmt`. */
export const fmt = { statusLabel, money: formatMoney, dateTime: formatDateTime, iso: isoDateTime, timeline: timelineText };
export type Formatters = typeof fmt;
