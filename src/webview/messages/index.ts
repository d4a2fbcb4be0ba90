import type { Brand, Locale, Messages } from './catalogue.js';
import { en } from './en.js';
import { ru } from './ru.js';

export type { Brand, Locale, Messages } from './catalogue.js';
export { LOCALES } from './catalogue.js';

const CATALOGUES: Record<Locale, (brand: Brand) => Messages> = { ru, en };

/** Every message of the locale, with the brand's names filled in (once, at start). */
export function messagesFor(locale: Locale, brand: Brand): Messages {
  return CATALOGUES[locale](brand);
}
