import type { OrderChange } from '../sync/order-history.js';
import type { TimelineEntry } from '../sync/webview-orders.js';
import type { Locale, Messages } from './messages/index.js';

/**
 * How the webview formats numbers, money and times in its locale (the platform's Intl,
 * CLDR data), and words an order's timeline. Pure; the templates get it as `it.fmt`.
 */

/** BCP 47 tags Intl formats with: Russian as in Russia; English with day-month dates. */
const INTL_LOCALE: Record<Locale, string> = { ru: 'ru-RU', en: 'en-GB' };

export interface Format {
  /** Roubles: "4 900 ₽" (ru, with no-break spaces), "₽4,900" (en); kopecks only when there are some. */
  money(amount: number): string;
  /** "5 марта 2025 г. в 13:00 GMT+3" in the configured time zone. */
  dateTime(at: string | number): string;
  /** For <time datetime>. */
  iso(at: string | number): string;
  /** How long from now, as a phrase: "через 7 минут", "in 7 minutes" (rounded up). */
  inTime(ms: number): string;
}

export function createFormat(locale: Locale, timeZone: string): Format {
  const tag = INTL_LOCALE[locale];
  const roubles = (fractionDigits: number) =>
    new Intl.NumberFormat(tag, {
      style: 'currency',
      currency: 'RUB',
      currencyDisplay: 'narrowSymbol',
      minimumFractionDigits: fractionDigits,
      maximumFractionDigits: fractionDigits,
    });
  const whole = roubles(0);
  const kopecks = roubles(2);
  const dateTime = new Intl.DateTimeFormat(tag, {
    day: 'numeric',
    month: 'long',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZone,
    timeZoneName: 'short',
  });
  const relative = new Intl.RelativeTimeFormat(tag, { numeric: 'always' });
  const valid = (at: string | number) => {
    const date = new Date(at);
    return Number.isNaN(date.getTime()) ? undefined : date;
  };
  return {
    money: (amount) => (Number.isInteger(amount) ? whole : kopecks).format(amount),
    dateTime: (at) => {
      const date = valid(at);
      return date ? dateTime.format(date) : '';
    },
    iso: (at) => valid(at)?.toISOString() ?? '',
    inTime: (ms) => {
      const seconds = Math.max(1, Math.ceil(ms / 1000));
      if (seconds < 60) return relative.format(seconds, 'second');
      const minutes = Math.ceil(seconds / 60);
      if (minutes < 120) return relative.format(minutes, 'minute');
      const hours = Math.ceil(minutes / 60);
      if (hours < 48) return relative.format(hours, 'hour');
      return relative.format(Math.ceil(hours / 24), 'day');
    },
  };
}

/** A timeline entry in words: what happened, and where for the first one. */
export function timelineText(entry: TimelineEntry, t: Messages, fmt: Format): { title: string; detail?: string } {
  switch (entry.event) {
    case 'placed':
      return { title: t.timeline.placed, detail: entry.origin === 'webview' ? t.timeline.placedHere : t.timeline.placedInApp };
    case 'with_manager':
      return { title: t.timeline.withManager };
    case 'changed':
      return { title: changeText(entry.change, t, fmt) };
  }
}

/** What changed, as the timeline says it: "Заказ подтверждён", "Стоимость: 4 900 ₽", "Заказ оплачен". */
export function changeText(change: OrderChange, t: Messages, fmt: Format): string {
  switch (change.field) {
    case 'status':
      return t.timeline.status[change.status];
    case 'cost':
      return change.cost === null ? t.timeline.costRemoved : t.timeline.cost(fmt.money(change.cost));
    case 'paid':
      return change.paid ? t.timeline.paid : t.timeline.unpaid;
    case 'subscriptionStatus':
      return change.subscriptionStatus === null ? t.timeline.subscriptionRemoved : t.timeline.subscription(change.subscriptionStatus);
  }
}
