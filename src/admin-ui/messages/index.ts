import type { Locale } from '../../webview/messages/index.js';
import { en } from './en.js';
import { ru, type AdminMessages } from './ru.js';

export type { AdminMessages } from './ru.js';

const CATALOGUES: Record<Locale, () => AdminMessages> = { ru, en };

/** Every message of the admin page in the locale. */
export function adminMessagesFor(locale: Locale): AdminMessages {
  return CATALOGUES[locale]();
}
