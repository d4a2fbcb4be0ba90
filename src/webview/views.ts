import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import { timelineText } from './format.js';
import type { WebviewTexts } from './texts.js';

/**
 * Server-side rendering with Eta: escaping is on by default (`<%= %>` escapes, and no
 * template uses the raw `<%~ %>` except the layout for the already-rendered body), so
 * whatever a user or Company 1 typed is shown as text.
 */

/**
 * The templates and static files sit next to this module: in src/webview under tsx, and
 * in dist/webview in a build (scripts/build.js copies them there).
 */
export function webviewAssetDir(name: 'views' | 'static'): string {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), name);
  if (!fs.existsSync(dir)) throw new Error(`webview ${name} not found in ${dir}; \`npm run build\` copies them into dist/`);
  return dir;
}

/** Data every page gets: the layout's needs. */
export interface PageData {
  title: string;
  /** The signed-in user's first name, for the header; absent on pages outside a session. */
  userName?: string;
  /** CSRF token for the header's sign-out form (and the page's own forms). */
  csrf?: string;
}

export type Render = (view: string, data: PageData & Record<string, unknown>) => string;

/**
 * Every template gets the page's data and, for its words, `it.t` (the catalogue), `it.fmt`
 * (money, dates), `it.site` (brand, support, service names) and `it.describe` (a timeline entry in words).
 */
export function createRenderer(texts: WebviewTexts): Render {
  const eta = new Eta({ views: webviewAssetDir('views'), cache: true, autoEscape: true });
  const { t, fmt } = texts;
  const shared = { t, fmt, site: texts, describe: (entry: Parameters<typeof timelineText>[0]) => timelineText(entry, t, fmt) };
  return (view, data) => eta.render(view, { ...data, ...shared });
}
