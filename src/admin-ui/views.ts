import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';
import type { Scope } from '../admin/api-keys.js';
import type { AdminFormat } from './format.js';
import type { AdminMessages } from './messages/index.js';

/**
 * Server-side rendering with Eta, as the webview does: `<%= %>` escapes, and only the
 * layout uses the raw `<%~ %>`, for the already-rendered body and included partials.
 */

/**
 * The templates and the stylesheet sit next to this module: in src/admin-ui under tsx,
 * and in dist/admin-ui in a build (scripts/build.js copies them there).
 */
export function adminAssetDir(name: 'views' | 'static'): string {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), name);
  if (!fs.existsSync(dir)) throw new Error(`admin page ${name} not found in ${dir}; \`npm run build\` copies them into dist/`);
  return dir;
}

/** Data every page gets: the layout's needs. */
export interface AdminPageData {
  title: string;
  /** Which section the navigation marks as current. */
  section?: 'overview' | 'dead' | 'orders';
  /** Within a session: the key's name and scopes (for the navigation), and the CSRF token of the page's forms. */
  session?: { keyName: string; scopes: ReadonlySet<Scope>; csrf: string };
}

export type AdminRender = (view: string, data: AdminPageData & Record<string, unknown>) => string;

/** Every template gets its page's data, `it.t` (the catalogue) and `it.fmt` (counts, times, health). */
export function createAdminRenderer(t: AdminMessages, fmt: AdminFormat): AdminRender {
  const eta = new Eta({ views: adminAssetDir('views'), cache: true, autoEscape: true });
  return (view, data) => eta.render(view, { ...data, t, fmt });
}

/** The stylesheet, read once: served at /admin/ui/static/admin.css. */
export function adminStylesheet(): string {
  return fs.readFileSync(path.join(adminAssetDir('static'), 'admin.css'), 'utf8');
}
