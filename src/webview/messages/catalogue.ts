import type { ru } from './ru.js';

/**
 * The webview's message catalogue: one TypeScript module per locale (ru.ts, en.ts). A
 * typed catalogue rather than an i18n library: the texts are a hundred or so, their
 * parameters are few and typed, the compiler checks that every locale has every message
 * with the same parameters, and plural forms, money, dates and relative times come from
 * the platform's Intl (CLDR data), which is what an ICU-message library would add.
 * Russian is the reference; every other locale must match its shape.
 */

export const LOCALES = ['ru', 'en'] as const;
export type Locale = (typeof LOCALES)[number];

/** Names the messages use, from the mappings file's `webview:` section, for one locale. */
export interface Brand {
  /** Company 2 as the page names itself. */
  brand: string;
  /** The partner's app the page opens in (Company 1's). */
  app: string;
}

/** Every message of one locale. */
export type Messages = ReturnType<typeof ru>;

/** A limit's window unit (WEBVIEW_ORDER_LIMIT). */
export type WindowUnit = 's' | 'm' | 'h' | 'd';

/** The forms of a counted word; `other` is used for any category a locale lacks here. */
export type PluralForms = { one: string; other: string } & Partial<Record<'zero' | 'two' | 'few' | 'many', string>>;

/** The form of a counted word for `n`, by the locale's CLDR plural rules (ru: 1 заказ, 2 заказа, 5 заказов). */
export function pluralOf(locale: Locale): (n: number, forms: PluralForms) => string {
  const rules = new Intl.PluralRules(locale);
  return (n, forms) => forms[rules.select(n)] ?? forms.other;
}
