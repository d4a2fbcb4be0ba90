import type { MappingsFile } from '../mappings/schema.js';
import { type Brand, type Locale, type Messages, messagesFor } from './messages/index.js';
import { createFormat, type Format } from './format.js';

/**
 * Everything the pages say, for the configured locale: the catalogue's messages with the
 * brand's names filled in, the formatters, and the names the mappings file gives the
 * brand, the support contact and each service (its `webview:` section). Built once.
 */
export interface WebviewTexts {
  locale: Locale;
  t: Messages;
  fmt: Format;
  brand: Brand;
  support: MappingsFile['webview']['support'];
  /** The services a user can order, named in the locale, in the file's order. */
  services: Array<{ id: string; name: string }>;
  serviceName(id: string): string;
}

export function webviewTexts(file: Pick<MappingsFile, 'services' | 'webview'>, locale: Locale): WebviewTexts {
  const section = file.webview;
  const brand: Brand = { brand: section.brand[locale], app: section.partnerApp[locale] };
  const names = new Map(file.services.map((s) => [s.id, section.services[s.id]?.[locale] ?? s.name]));
  return {
    locale,
    t: messagesFor(locale, brand),
    fmt: createFormat(locale, section.timeZone),
    brand,
    support: section.support,
    services: file.services.map((s) => ({ id: s.id, name: names.get(s.id) ?? s.id })),
    // An order of a service the file no longer lists is named by its id.
    serviceName: (id) => names.get(id) ?? id,
  };
}
