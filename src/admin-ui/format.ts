import type { HealthState } from '../health/service-health.js';
import { createFormat, type Format } from '../webview/format.js';
import type { Locale } from '../webview/messages/index.js';
import type { AdminMessages } from './messages/index.js';

/**
 * How the admin page writes times and states, in its locale (Intl, CLDR data). Pure; the
 * templates get it as `it.fmt`. Dates as the webview writes them, in the mappings file's
 * time zone.
 */
export interface AdminFormat extends Pick<Format, 'dateTime' | 'iso'> {
  /** An age in its largest whole unit: "5 минут", "2 hours", "40 seconds". */
  age(seconds: number): string;
  /** A count with the locale's grouping: "12 345". */
  count(n: number): string;
  /** A service's health as a short phrase, and its detail (a fix or a reason) apart. */
  health(state: HealthState): { text: string; detail?: string; ok: boolean };
}

const INTL_LOCALE: Record<Locale, string> = { ru: 'ru-RU', en: 'en-GB' };

export function createAdminFormat(locale: Locale, timeZone: string, t: AdminMessages): AdminFormat {
  const tag = INTL_LOCALE[locale];
  const base = createFormat(locale, timeZone);
  const unit = (name: 'second' | 'minute' | 'hour' | 'day') => new Intl.NumberFormat(tag, { style: 'unit', unit: name, unitDisplay: 'long' });
  const units = { second: unit('second'), minute: unit('minute'), hour: unit('hour'), day: unit('day') };
  const counts = new Intl.NumberFormat(tag);
  return {
    dateTime: base.dateTime,
    iso: base.iso,
    count: (n) => counts.format(n),
    age: (seconds) => {
      const s = Math.max(0, Math.floor(seconds));
      if (s < 60) return units.second.format(s);
      if (s < 3600) return units.minute.format(Math.floor(s / 60));
      if (s < 86_400) return units.hour.format(Math.floor(s / 3600));
      return units.day.format(Math.floor(s / 86_400));
    },
    health: (state) => {
      switch (state.kind) {
        case 'ok':
          return { text: t.overview.health.ok, ok: true };
        case 'unknown':
          return { text: t.overview.health.unknown, ok: false };
        case 'unauthorized':
          return { text: t.overview.health.unauthorized, detail: state.fix, ok: false };
        case 'unreachable':
          return { text: t.overview.health.unreachable(base.dateTime(state.since)), detail: state.reason, ok: false };
      }
    },
  };
}
